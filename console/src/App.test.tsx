import { act, render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { MemoryRouter } from "react-router-dom";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { App } from "./App";
import { ROUTER_FUTURE } from "./router";
import { AppProviders, makeQueryClient } from "./AppProviders";
import { saveSession, tokensFromResponse } from "./session/tokens";
import { fakeFetch, FakeWebSocket, json, type Route } from "./test/fakes";

const VIN = "1SVDHB00000000001";
const tokenBody = {
  access_token: "access-1", refresh_token: "refresh-1", token_type: "bearer",
  expires_in: 900, refresh_expires_in: 3600, session_id: "s1",
};
const vehicle = {
  vin: VIN, make: "BMW", model: "i4", year: 2024, metadata: {}, enabled: true,
  created_at: "2026-01-01T00:00:00Z",
  connection: { status: "connected", since: "2026-01-01T00:00:00Z", last_seen_at: null, node_id: "n1" },
};
const page = (items: unknown[]) => ({ items, total: items.length, limit: 25, offset: 0 });

function renderApp(path: string, routes: Record<string, Route>) {
  const fetchImpl = fakeFetch(routes);
  render(
    <MemoryRouter initialEntries={[path]} future={ROUTER_FUTURE}>
      <AppProviders queryClient={makeQueryClient()} fetchImpl={fetchImpl}>
        <App />
      </AppProviders>
    </MemoryRouter>,
  );
  return { fetchImpl, user: userEvent.setup() };
}

function loggedIn(role: "viewer" | "engineer" | "admin") {
  saveSession(sessionStorage, {
    tokens: tokensFromResponse(tokenBody as never, Date.now()),
    user: { username: role, role },
  });
}

beforeEach(() => {
  FakeWebSocket.instances = [];
  vi.stubGlobal("WebSocket", FakeWebSocket);
});
afterEach(() => vi.unstubAllGlobals());

describe("session", () => {
  it("logs in, keeps the tokens in sessionStorage and shows the fleet", async () => {
    const { user, fetchImpl } = renderApp("/fleet", {
      "POST /api/v1/auth/login": () => json(200, tokenBody),
      "GET /api/v1/auth/me": () => json(200, { id: 1, username: "eng", role: "engineer", enabled: true, created_at: "" }),
      "GET /api/v1/vehicles": () => json(200, page([vehicle])),
    });
    await user.type(screen.getByLabelText(/Username/), "eng");
    await user.type(screen.getByLabelText(/Password/), "secret");
    await user.click(screen.getByRole("button", { name: "Log in" }));
    expect(await screen.findByRole("heading", { name: "Fleet" })).toBeInTheDocument();
    expect(await screen.findByRole("link", { name: VIN })).toBeInTheDocument();
    expect(sessionStorage.getItem("sovd-hub.session")).toContain("access-1");
    const loginCall = fetchImpl.mock.calls.find(([url]) => url === "/api/v1/auth/login")!;
    expect(JSON.parse(loginCall[1]!.body as string)).toEqual({ username: "eng", password: "secret" });
    // the WebSocket authenticates first, then subscribes to the fleet
    const socket = FakeWebSocket.instances[0]!;
    expect(socket.url).toMatch(/\/api\/v1\/ws$/);
    act(() => socket.open());
    await waitFor(() => expect(socket.sent[0]).toEqual({ type: "auth", token: "access-1" }));
    act(() => socket.receive({ type: "authenticated", username: "eng", role: "engineer" }));
    expect(socket.sent).toContainEqual({ type: "subscribe", topic: "fleet" });
  });

  it("shows the hub's message and the wait of a 429", async () => {
    const { user } = renderApp("/login", {
      "POST /api/v1/auth/login": () =>
        json(429, { error: { code: "too_many_failed_logins", message: "5 failed logins for user 'eng'", correlation_id: "c" } }, { "Retry-After": "30" }),
    });
    await user.type(screen.getByLabelText(/Username/), "eng");
    await user.type(screen.getByLabelText(/Password/), "bad");
    await user.click(screen.getByRole("button", { name: "Log in" }));
    const alert = await screen.findByRole("alert");
    expect(alert).toHaveTextContent("5 failed logins for user 'eng'");
    expect(alert).toHaveTextContent(/Try again in (30|29) s/);
    expect(screen.getByRole("button", { name: /Wait/ })).toBeDisabled();
  });

  it("shows the message of a 401 at login", async () => {
    const { user } = renderApp("/login", {
      "POST /api/v1/auth/login": () =>
        json(401, { error: { code: "invalid_credentials", message: "invalid username or password", correlation_id: "c" } }),
    });
    await user.type(screen.getByLabelText(/Username/), "eng");
    await user.type(screen.getByLabelText(/Password/), "bad");
    await user.click(screen.getByRole("button", { name: "Log in" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("invalid username or password");
  });

  it("returns to the login page with a message on a 401 of the API", async () => {
    loggedIn("engineer");
    renderApp("/fleet", {
      "GET /api/v1/vehicles": () =>
        json(401, { error: { code: "session_revoked", message: "the session was revoked", correlation_id: "c" } }),
    });
    expect(await screen.findByRole("button", { name: "Log in" })).toBeInTheDocument();
    expect(screen.getByText(/Your session ended: the session was revoked/)).toBeInTheDocument();
    expect(sessionStorage.getItem("sovd-hub.session")).toBeNull();
  });

  it("logs out through the API", async () => {
    loggedIn("engineer");
    const { user, fetchImpl } = renderApp("/fleet", {
      "GET /api/v1/vehicles": () => json(200, page([vehicle])),
      "POST /api/v1/auth/logout": () => new Response(null, { status: 204 }),
    });
    await user.click(await screen.findByRole("button", { name: "Log out" }));
    expect(await screen.findByText("You are logged out.")).toBeInTheDocument();
    const call = fetchImpl.mock.calls.find(([url]) => url === "/api/v1/auth/logout")!;
    expect((call[1]!.headers as Record<string, string>).Authorization).toBe("Bearer access-1");
  });
});

describe("vehicle page", () => {
  const detail = { ...vehicle, active_commands: {}, recent_commands: [] };

  it("shows a viewer no submit controls", async () => {
    loggedIn("viewer");
    renderApp(`/vehicles/${VIN}`, { [`GET /api/v1/vehicles/${VIN}`]: () => json(200, detail) });
    expect(await screen.findByRole("heading", { name: VIN })).toBeInTheDocument();
    expect(screen.getByText(/may view this vehicle but not send commands/)).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Send" })).toBeNull();
  });

  it("updates the connection live from the vehicle topic", async () => {
    loggedIn("viewer");
    renderApp(`/vehicles/${VIN}`, { [`GET /api/v1/vehicles/${VIN}`]: () => json(200, detail) });
    expect(await screen.findByRole("heading", { name: VIN })).toBeInTheDocument();
    const socket = FakeWebSocket.instances[0]!;
    act(() => socket.open());
    await waitFor(() => expect(socket.sent[0]).toMatchObject({ type: "auth" }));
    act(() => socket.receive({ type: "authenticated", username: "viewer", role: "viewer" }));
    expect(socket.sent).toContainEqual({ type: "subscribe", topic: `vehicle:${VIN}` });
    act(() => socket.receive({
      type: "vehicle", topic: `vehicle:${VIN}`, vin: VIN, status: "disconnected",
      reason: "heartbeat_timeout", detail: "no heartbeat for 30 s", at: "2026-01-02T00:00:00Z",
    }));
    expect(await screen.findByText("heartbeat_timeout: no heartbeat for 30 s")).toBeInTheDocument();
  });
});

describe("token refresh", () => {
  it("refreshes an access token about to expire before using it", async () => {
    saveSession(sessionStorage, {
      tokens: tokensFromResponse({ ...tokenBody, expires_in: 2 } as never, Date.now()),
      user: { username: "eng", role: "engineer" },
    });
    const { fetchImpl } = renderApp("/fleet", {
      "POST /api/v1/auth/refresh": () => json(200, { ...tokenBody, access_token: "access-2", refresh_token: "refresh-2" }),
      "GET /api/v1/vehicles": () => json(200, page([vehicle])),
    });
    expect(await screen.findByRole("link", { name: VIN })).toBeInTheDocument();
    const refresh = fetchImpl.mock.calls.filter(([url]) => url === "/api/v1/auth/refresh");
    expect(refresh).toHaveLength(1);
    expect(JSON.parse(refresh[0]![1]!.body as string)).toEqual({ refresh_token: "refresh-1" });
    const list = fetchImpl.mock.calls.filter(([url]) => String(url).startsWith("/api/v1/vehicles"));
    for (const [, init] of list) {
      expect((init!.headers as Record<string, string>).Authorization).toBe("Bearer access-2");
    }
    expect(sessionStorage.getItem("sovd-hub.session")).toContain("refresh-2");
  });
});
