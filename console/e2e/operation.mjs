// An engineer starts the selftest operation from the vehicle page, watches its progress
// arrive and cancels it from the page: the final status says cancelled.
import { env, logIn, pickCommand, scenario, sendCommand, shoot } from "./browser.mjs";

await scenario(async (page, step) => {
  step("log in");
  await logIn(page, env.USERNAME);
  step("open the vehicle");
  await page.goto(`${env.HUB_URL}/vehicles/${env.VIN}`);
  await page.getByRole("heading", { name: env.VIN }).waitFor();
  step("compose StartOperation");
  await pickCommand(page, "StartOperation");
  await page.getByRole("combobox", { name: /^component/ }).click();
  await page.getByRole("option", { name: "engine", exact: true }).click();
  await page.getByRole("textbox", { name: /^durationMs/ }).fill(env.DURATION_MS);
  await page.getByRole("textbox", { name: /^timeout_s/ }).fill("30");
  step("send it");
  const id = await sendCommand(page);
  const live = page.getByRole("heading", { name: "StartOperation" }).locator("xpath=ancestor::div[contains(@class,'MuiPaper')][1]");
  const events = live.getByRole("list", { name: "events" }).getByRole("listitem");
  step("progress arrives");
  await events.filter({ hasText: /"progress": 25/ }).waitFor({ timeout: 10000 });
  await page.getByRole("progressbar").waitFor();  // the bar of a running operation
  // The vehicle's active counts follow, without a reload.
  await page.getByRole("table", { name: "identity and connection" }).getByText(/running 1\b/).waitFor();
  const running = await live.getByText("running", { exact: true }).count();
  const progress = await events.filter({ hasText: /"progress": \d+/ }).count();
  await shoot(page, "operation-running");
  step("cancel it from the page");
  const cancelled = page.waitForResponse((r) => r.url().endsWith(`/api/v1/commands/${id}/cancel`));
  await live.getByRole("button", { name: "Cancel" }).click();
  const cancelAnswer = await cancelled;
  if (cancelAnswer.status() !== 202) throw new Error(`cancel answered ${cancelAnswer.status()}`);
  step("the final status says cancelled");
  await live.getByText("cancelled", { exact: true }).waitFor({ timeout: 10000 });
  const error = await live.getByRole("alert").first().innerText().catch(() => null);
  const cancelButtons = await live.getByRole("button", { name: "Cancel" }).count();
  await shoot(page, "operation-cancelled");
  return {
    command_id: id,
    running_shown: running > 0,
    progress_events: progress,
    final_status: "cancelled",
    error,
    cancel_buttons_after: cancelButtons,
  };
});
