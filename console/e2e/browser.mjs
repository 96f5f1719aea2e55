// Shared by the browser scenarios: Debian's Chromium through playwright-core, a page on the
// hub under test, screenshots at the widths a person uses, and a step log that says where a
// scenario failed. Driven by tests/api/test_console_browser.py (environment: CHROMIUM,
// HUB_URL, USERNAME, PASSWORD, SCREENSHOTS). A scenario that needs the test to act on the
// hub or a vehicle (cut a link, revoke a session) asks it with `ask`: a line `ask {...}` on
// stdout, the answer a JSON line on stdin.
import { readFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { createInterface } from "node:readline";
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
    answers?.close();
    process.stdin.destroy();
  }
}

let answers = null;
let answerLines = null;

/** Ask the test to do `what` (it answers with a JSON object; `error` in it fails the step). */
export async function ask(what, details = {}) {
  if (answers === null) {
    answers = createInterface({ input: process.stdin });
    answerLines = answers[Symbol.asyncIterator]();
  }
  process.stdout.write(`ask ${JSON.stringify({ what, ...details })}\n`);
  const { value, done } = await answerLines.next();
  if (done) throw new Error(`the test gave no answer to "${what}"`);
  const answer = JSON.parse(value);
  if (answer.error) throw new Error(`the test could not ${what}: ${answer.error}`);
  return answer;
}

/** Poll `check` (async, returns a truthy value when done) until it holds; its last value. */
export async function until(what, check, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    last = await check();
    if (last) return last;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

let axeSource = null;

/** axe-core on the page as it is: its violations, and how many rules it checked. */
export async function axe(page, name) {
  // Evaluated over the DevTools protocol: the hub's CSP (script-src 'self') refuses a script tag.
  axeSource ??= await readFile(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
  await page.evaluate(axeSource);
  const found = await page.evaluate(async () => {
    const result = await window.axe.run(document, { resultTypes: ["violations"] });
    return {
      rules: result.passes.length + result.violations.length + result.incomplete.length,
      violations: result.violations.map((v) => ({
        id: v.id,
        impact: v.impact,
        help: v.help,
        nodes: v.nodes.length,
        targets: v.nodes.slice(0, 3).map((n) => n.target.join(" ")),
      })),
    };
  });
  return { rules: found.rules, violations: found.violations.map((v) => ({ page: name, ...v })) };
}

/** Press Tab until `target` (a locator) has the focus; how many presses it took. */
export async function tabTo(page, target, most = 40) {
  for (let presses = 1; presses <= most; presses += 1) {
    await page.keyboard.press("Tab");
    if (await target.evaluate((element) => element === document.activeElement)) return presses;
  }
  throw new Error(`${most} presses of Tab never reached ${target}`);
}

/** The access token of the page's login session (from sessionStorage). */
export async function accessToken(page) {
  return page.evaluate(() => JSON.parse(sessionStorage.getItem("sovd-hub.session")).tokens.accessToken);
}

/** The total a table's pagination shows ("1–4 of 4"). */
export async function paginationTotal(page) {
  const text = await page.locator(".MuiTablePagination-displayedRows").innerText();
  const found = /of\s+(\d+)/.exec(text);
  if (found === null) throw new Error(`no total in the pagination text ${JSON.stringify(text)}`);
  return Number(found[1]);
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

/** On a vehicle's page: choose `name` in the composer's Command select. */
export async function pickCommand(page, name) {
  await page.getByRole("combobox", { name: /^Command/ }).click();
  await page.getByRole("option", { name, exact: true }).click();
}

/** Press Send in the composer and wait for the POST's 202; the id of the new command. */
export async function sendCommand(page) {
  const submitted = page.waitForResponse(
    (r) => r.url().endsWith("/api/v1/commands") && r.request().method() === "POST",
  );
  await page.getByRole("button", { name: "Send" }).click();
  const answer = await submitted;
  if (answer.status() !== 202) throw new Error(`POST /api/v1/commands answered ${answer.status()}`);
  const { id } = await answer.json();
  return id;
}
