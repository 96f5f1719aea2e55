// The fleet view follows a vehicle's link live: the test cuts it (the row turns offline and
// says why), then the vehicle reconnects (the row is connected again), with no page reload.
import { ask, env, logIn, scenario, shoot, until } from "./browser.mjs";

await scenario(async (page, step) => {
  step("log in");
  await logIn(page, env.USERNAME);
  const row = page.getByRole("row").filter({ hasText: env.VIN });
  const connection = row.getByRole("cell").nth(3);
  const reason = row.getByRole("cell").nth(5);
  const connectedCount = page.getByText(/^connected: \d+$/);
  const seen = [];
  step("the vehicle is connected");
  await row.getByText("connected", { exact: true }).waitFor();
  seen.push({ status: await connection.innerText(), count: await connectedCount.innerText() });
  // Set in this document only: a reload, or a navigation, would lose it.
  await page.evaluate(() => { window.notReloaded = true; });
  step("the test cuts the vehicle's link");
  await ask("cut");
  step("the row turns offline, live");
  await row.getByText("disconnected", { exact: true }).waitFor({ timeout: 10000 });
  await until("the connected count to drop", async () => (await connectedCount.innerText()) === "connected: 0");
  seen.push({
    status: await connection.innerText(),
    reason: await reason.innerText(),
    count: await connectedCount.innerText(),
  });
  await shoot(page, "fleet-offline");
  step("the vehicle reconnects");
  await ask("reconnect");
  await row.getByText("connected", { exact: true }).waitFor({ timeout: 10000 });
  await until("the connected count to rise", async () => (await connectedCount.innerText()) === "connected: 1");
  seen.push({ status: await connection.innerText(), count: await connectedCount.innerText() });
  await shoot(page, "fleet-online");
  const reloaded = !(await page.evaluate(() => window.notReloaded === true));
  return { seen, reloaded, url: new URL(page.url()).pathname };
});
