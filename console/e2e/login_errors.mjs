// A wrong password: the login page shows the hub's message and stays; the right one then
// gets in (the message goes).
import { env, scenario, shoot } from "./browser.mjs";

await scenario(async (page, step) => {
  step("open the console");
  await page.goto(`${env.HUB_URL}/fleet`);
  await page.waitForURL(/\/login/);
  step("log in with a wrong password");
  await page.getByLabel("Username").fill(env.USERNAME);
  await page.getByLabel("Password").fill(`${env.PASSWORD} but wrong`);
  const answered = page.waitForResponse((r) => r.url().endsWith("/api/v1/auth/login"));
  await page.getByRole("button", { name: "Log in" }).click();
  const status = (await answered).status();
  const alert = page.getByRole("alert");
  await alert.waitFor();
  const message = await alert.innerText();
  const stayed = new URL(page.url()).pathname;
  await shoot(page, "login-error");
  step("log in with the right one");
  await page.getByLabel("Password").fill(env.PASSWORD);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByRole("heading", { name: "Fleet" }).waitFor();
  const alertsAfter = await page.getByRole("alert").count();
  return { status, message, stayed, alerts_after: alertsAfter };
});
