// A viewer opens a connected vehicle's page: it shows the vehicle but no way to send a
// command (no Send button, no composer), and says why.
import { env, logIn, scenario, shoot } from "./browser.mjs";

await scenario(async (page, step) => {
  step("log in as a viewer");
  await logIn(page, env.USERNAME);
  step("open the vehicle from the fleet");
  const row = page.getByRole("row").filter({ hasText: env.VIN });
  await row.getByText("connected", { exact: true }).waitFor();
  await shoot(page, "fleet-viewer");
  await row.getByRole("link", { name: env.VIN }).click();
  await page.getByRole("heading", { name: env.VIN }).waitFor();
  // The page is all there (identity, recent commands) before anything is counted.
  await page.getByRole("table", { name: "identity and connection" }).waitFor();
  await page.getByRole("table", { name: "recent commands" }).waitFor();
  step("it says why there is nothing to send");
  const notice = await page.getByText(/may view this vehicle but not send commands/).innerText();
  const seen = {
    notice,
    send_buttons: await page.getByRole("button", { name: "Send" }).count(),
    composers: await page.getByRole("heading", { name: "Send a command" }).count(),
    command_pickers: await page.getByRole("combobox", { name: /^Command/ }).count(),
  };
  await shoot(page, "vehicle-viewer");
  return seen;
});
