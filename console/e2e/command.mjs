// An engineer logs in, finds the connected vehicle in the fleet, sends ReadDTC from its page
// and watches the events and the final status arrive.
import { env, logIn, pickCommand, scenario, sendCommand, shoot } from "./browser.mjs";

await scenario(async (page, step) => {
  step("log in");
  await logIn(page, env.USERNAME);
  step("the fleet shows the vehicle connected");
  const row = page.getByRole("row").filter({ hasText: env.VIN });
  await row.getByText("connected", { exact: true }).waitFor();
  await shoot(page, "fleet");
  step("open the vehicle");
  await row.getByRole("link", { name: env.VIN }).click();
  await page.getByRole("heading", { name: env.VIN }).waitFor();
  step("compose ReadDTC");
  await pickCommand(page, "ReadDTC");
  await page.getByRole("combobox", { name: /ecuAddress/i }).click();  // an enum: a select
  await page.getByRole("option", { name: "0x10", exact: true }).click();
  step("send it");
  const id = await sendCommand(page);
  step("the final status arrives live");
  const live = page.getByRole("heading", { name: "ReadDTC" }).locator("xpath=ancestor::div[contains(@class,'MuiPaper')][1]");
  await live.getByText("succeeded", { exact: true }).waitFor({ timeout: 15000 });
  // What the page shows, for the test to compare with what the hub stored.
  const items = live.getByRole("list", { name: "events" }).getByRole("listitem");
  const events = (await items.allInnerTexts()).map((text) => text.split("\n")[0].trim());
  await shoot(page, "command");
  return { events, command_id: id };
});
