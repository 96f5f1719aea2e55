// Shared by the browser scenarios: Debian's Chromium through playwright-core, a page on the
// hub under test, screenshots at the widths a person uses, and a step log that says where a
// scenario failed. Driven by tests/api/test_console_browser.py (environment: CHROMIUM,
// HUB_URL, USERNAME, PASSWORD, SCREENSHOTS).
import { chromium } from "playwright-core";

export const env = process.env;
export const WIDTHS = [1280, 768];

export async function openBrowser() {
  return chromium.launch({
    executablePath: env.CHROMIUM,
    headless: true,
    // Chromium refuses WebSockets to 127.0.0.1 from a page without this; --no-sandbox: CI runs as root.
    args: ["--disable-features=LocalNetworkAccessChecks", "--no-sandbox"],
  });
}

/** Run `steps(page, step)`; print one JSON line with what it returned, exit 1 on a failed step. */
export async function scenario(steps) {
  const browser = await openBrowser();
  const page = await browser.newPage({ viewport: { width: WIDTHS[0], height: 900 } });
  const problems = [];
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  let current = "start";
  const step = (name) => {
    current = name;
    process.stderr.write(`step: ${name}\n`);
  };
  try {
    const seen = await steps(page, step);
    if (problems.length > 0) throw new Error(problems.join("; "));
    process.stdout.write(`${JSON.stringify({ ...seen, screenshots: env.SCREENSHOTS })}\n`);
  } catch (error) {
    await page.screenshot({ path: `${env.SCREENSHOTS}/failed.png`, fullPage: true }).catch(() => {});
    process.stdout.write(`failed at step "${current}": ${error.stack ?? error}\n`);
    process.exitCode = 1;
  } finally {
    await browser.close();
  }
}

/** Screenshots of the page as it is, at each of WIDTHS. */
export async function shoot(page, name) {
  for (const width of WIDTHS) {
    await page.setViewportSize({ width, height: 900 });
    await page.screenshot({ path: `${env.SCREENSHOTS}/${name}-${width}.png`, fullPage: true });
  }
  await page.setViewportSize({ width: WIDTHS[0], height: 900 });
}

export async function logIn(page, username) {
  await page.goto(`${env.HUB_URL}/fleet`);
  await page.waitForURL(/\/login/);
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(env.PASSWORD);
  await page.getByRole("button", { name: "Log in" }).click();
  await page.getByRole("heading", { name: "Fleet" }).waitFor();
}
