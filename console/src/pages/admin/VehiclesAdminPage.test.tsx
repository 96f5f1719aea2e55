import { screen, waitFor, within } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { FakeWebSocket, json } from "../../test/fakes";
import { calls, forbidden, loggedIn, renderApp } from "../../test/renderApp";

const VIN = "1SVDHB00000000001";
const NEW_VIN = "1SVDHB00000000009";
const vehicle = (vin: string, enabled = true) => ({
  vin, make: "BMW", model: "i4", year: 2024, metadata: {}, enabled, created_at: "2026-01-01T00:00:00Z",
  connection: { status: "disconnected", since: null, last_seen_at: null },
});
const page = (items: unknown[]) => ({ items, total: items.length, limit: 25, offset: 0 });
const users = { items: [], total: 1, limit: 1, offset: 0 };

beforeEach(() => vi.stubGlobal("WebSocket", FakeWebSocket));
afterEach(() => vi.unstubAllGlobals());

describe("vehicle administration", () => {
  it("shows a new vehicle's token once, and nowhere after the dialog is closed", async () => {
    loggedIn("admin");
    const { user, fetchImpl, queryClient } = renderApp("/admin/vehicles", {
      "GET /api/v1/users": () => json(200, users),
      "GET /api/v1/vehicles": () => json(200, page([vehicle(VIN)])),
      "POST /api/v1/vehicles": () => json(201, { ...vehicle(NEW_VIN), token: "vt-secret-once" }),
    });
    expect(await screen.findByRole("link", { name: VIN })).toBeInTheDocument();
    await user.type(screen.getByLabelText(/^VIN/), NEW_VIN.toLowerCase());
    await user.type(screen.getByLabelText(/^Make/), "BMW");
    await user.type(screen.getByLabelText(/^Model/), "iX");
    await user.type(screen.getByLabelText(/^Year/), "2025");
    await user.type(screen.getByLabelText(/^Metadata/), '{{"fleet": "north"}');
    await user.click(screen.getByRole("button", { name: "Register" }));

    const dialog = await screen.findByRole("dialog", { name: `Token of ${NEW_VIN}` });
    expect(within(dialog).getByLabelText("Vehicle token")).toHaveValue("vt-secret-once");
    expect(dialog).toHaveTextContent("only time the token");
    expect(dialog).toHaveTextContent("cannot show it again");
    const [post] = calls(fetchImpl, "/api/v1/vehicles", "POST");
    expect(JSON.parse(post!.init.body as string)).toEqual({
      vin: NEW_VIN, make: "BMW", model: "iX", year: 2025, metadata: { fleet: "north" },
    });

    await user.click(within(dialog).getByRole("button", { name: /close/i }));
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
    expect(screen.queryByDisplayValue("vt-secret-once")).toBeNull();
    expect(document.body.textContent).not.toContain("vt-secret-once");
    // nor kept in React Query's caches, from where a later render could show it again
    const cached = JSON.stringify([
      queryClient.getQueryCache().getAll().map((q) => q.state.data),
      queryClient.getMutationCache().getAll().map((m) => m.state.data),
    ]);
    expect(cached).not.toContain("vt-secret-once");
  });

  it("rotates a token after confirmation and shows the new one once", async () => {
    loggedIn("admin");
    const { user, fetchImpl } = renderApp("/admin/vehicles", {
      "GET /api/v1/users": () => json(200, users),
      "GET /api/v1/vehicles": () => json(200, page([vehicle(VIN)])),
      [`POST /api/v1/vehicles/${VIN}/token`]: () => json(200, { vin: VIN, token: "vt-rotated" }),
    });
    await user.click(await screen.findByRole("button", { name: `Rotate the token of ${VIN}` }));
    const confirm = screen.getByRole("dialog", { name: `Rotate the token of ${VIN}?` });
    expect(calls(fetchImpl, `/api/v1/vehicles/${VIN}/token`, "POST")).toHaveLength(0);
    await user.click(within(confirm).getByRole("button", { name: "Rotate" }));
    const dialog = await screen.findByRole("dialog", { name: `New token of ${VIN}` });
    expect(within(dialog).getByLabelText("Vehicle token")).toHaveValue("vt-rotated");
    await user.click(within(dialog).getByRole("button", { name: /close/i }));
    await waitFor(() => expect(screen.queryByRole("dialog")).toBeNull());
    expect(document.body.textContent).not.toContain("vt-rotated");
    expect(calls(fetchImpl, `/api/v1/vehicles/${VIN}/token`, "POST")).toHaveLength(1);
  });

  it("disables a vehicle through the API", async () => {
    loggedIn("admin");
    let enabled = true;
    const { user } = renderApp("/admin/vehicles", {
      "GET /api/v1/users": () => json(200, users),
      "GET /api/v1/vehicles": () => json(200, page([vehicle(VIN, enabled)])),
      [`POST /api/v1/vehicles/${VIN}/disable`]: () => { enabled = false; return json(200, vehicle(VIN, false)); },
    });
    await user.click(await screen.findByRole("button", { name: `Disable ${VIN}` }));
    expect(await screen.findByRole("button", { name: `Enable ${VIN}` })).toBeInTheDocument();
  });

  it("shows a viewer the API's 403 and no registration form", async () => {
    loggedIn("viewer");
    renderApp("/admin/vehicles", {
      "GET /api/v1/users": () => json(403, forbidden("viewer")),
      "GET /api/v1/vehicles": () => json(200, page([vehicle(VIN)])),
    });
    expect(await screen.findByRole("alert")).toHaveTextContent("role admin or higher required; you are viewer");
    expect(screen.queryByRole("form", { name: "register vehicle" })).toBeNull();
    expect(screen.queryByRole("link", { name: "Admin" })).toBeNull();
  });
});
