// axe-core on the login, fleet, vehicle and history pages (their violations are returned for
// the test to judge), and the keyboard: Tab reaches the login fields and button (and logs in
// with Enter) and, on a vehicle page, the Send button.
import { axe, env, scenario, shoot, tabTo } from "./browser.mjs";

await scenario(async (page, step) => {
  const violations = [];
  const rules = {};
  const presses = {};
  const check = async (name) => {
    const found = await axe(page, name);
    rules[name] = found.rules;
    violations.push(...found.violations);
  };
  step("the login page");
  await page.goto(`${env.HUB_URL}/login`);
  await page.getByRole("button", { name: "Log in" }).waitFor();
  await check("login");
  await shoot(page, "login");
  step("Tab to the username, the password and the button, and log in with Enter");
  const username = page.getByLabel("Username");
  presses.username_autofocus = await username.evaluate((element) => element === document.activeElement);
  // A click on the page's corner takes the focus away and starts Tab from the top.
  await page.mouse.click(2, 2);
  presses.username = await tabTo(page, username);
  await page.keyboard.type(env.USERNAME);
  presses.password = await tabTo(page, page.getByLabel("Password"));
  await page.keyboard.type(env.PASSWORD);
  presses.login_button = await tabTo(page, page.getByRole("button", { name: "Log in" }));
  await page.keyboard.press("Enter");
  await page.getByRole("heading", { name: "Fleet" }).waitFor();
  step("the fleet page");
  const row = page.getByRole("row").filter({ hasText: env.VIN });
  await row.getByText("connected", { exact: true }).waitFor();
  await check("fleet");
  await shoot(page, "fleet");
  step("the vehicle page");
  await page.goto(`${env.HUB_URL}/vehicles/${env.VIN}`);
  const send = page.getByRole("button", { name: "Send" });
  await send.waitFor();
  await check("vehicle");
  await shoot(page, "vehicle");
  step("Tab to the Send button");  // from the top: nothing has the focus after a load
  presses.send = await tabTo(page, send, 60);
  step("the history page");
  await page.goto(`${env.HUB_URL}/history`);
  await page.getByRole("heading", { name: "Command history" }).waitFor();
  await page.getByRole("table", { name: "commands" }).locator("tbody tr").first().waitFor();
  await check("history");
  await shoot(page, "history");
  return { violations, rules, presses };
});
