// The history page's filters: status, then command, each change the rows listed and the
// total shown; what the page showed is returned for the test to hold against the API.
import { env, logIn, paginationTotal, scenario, shoot, until } from "./browser.mjs";

await scenario(async (page, step) => {
  step("log in");
  await logIn(page, env.USERNAME);
  step("open the history");
  await page.getByRole("navigation", { name: "main" }).getByRole("link", { name: "History" }).click();
  await page.getByRole("heading", { name: "Command history" }).waitFor();
  const table = page.getByRole("table", { name: "commands" });
  const rows = table.locator("tbody tr");
  const expected = JSON.parse(env.EXPECTED);

  async function listing(what, total) {
    step(`the history lists ${what}`);
    await until(`${total} commands (${what})`, async () =>
      (await paginationTotal(page)) === total && (await rows.count()) === Math.min(total, 25)
        ? true
        : false);
    const items = [];
    for (const row of await rows.all()) {
      const cells = row.getByRole("cell");
      items.push({ command: await cells.nth(2).innerText(), status: await cells.nth(3).innerText() });
    }
    return { total: await paginationTotal(page), items };
  }

  const seen = {};
  seen.all = await listing("everything", expected.all);
  await shoot(page, "history");
  step("filter by status failed");
  await page.getByRole("combobox", { name: /^Status/ }).click();
  await page.getByRole("option", { name: "failed", exact: true }).click();
  seen.failed = await listing("the failed commands", expected.failed);
  await shoot(page, "history-failed");
  step("back to any status, filter by command ReadDTC");
  await page.getByRole("combobox", { name: /^Status/ }).click();
  await page.getByRole("option", { name: "any", exact: true }).click();
  await page.getByRole("textbox", { name: "Command" }).fill("ReadDTC");
  seen.readdtc = await listing("the ReadDTC commands", expected.readdtc);
  step("both filters");
  await page.getByRole("combobox", { name: /^Status/ }).click();
  await page.getByRole("option", { name: "succeeded", exact: true }).click();
  seen.readdtc_succeeded = await listing("the ReadDTC commands that succeeded", expected.readdtc_succeeded);
  await shoot(page, "history-filtered");
  return seen;
});
