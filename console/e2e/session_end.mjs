// A session revoked elsewhere (the test logs it out with its own access token) sends the
// open console back to the login page, unprompted, with a message saying why.
import { accessToken, ask, env, logIn, scenario, shoot } from "./browser.mjs";

await scenario(async (page, step) => {
  step("log in");
  await logIn(page, env.USERNAME);
  await page.getByRole("row").filter({ hasText: env.VIN }).waitFor();
  await shoot(page, "fleet");
  step("the test revokes the session");
  await ask("revoke", { token: await accessToken(page) });
  step("the console returns to the login page by itself");
  await page.waitForURL(/\/login$/, { timeout: 15000 });
  const notice = await page.getByRole("alert").filter({ hasText: /session/i }).innerText({ timeout: 5000 });
  await page.getByLabel("Username").waitFor();
  const stored = await page.evaluate(() => sessionStorage.getItem("sovd-hub.session"));
  await shoot(page, "login-session-ended");
  return { url: new URL(page.url()).pathname, notice, session_kept: stored !== null };
});
