import { screen, within } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { FakeWebSocket, json } from "../../test/fakes";
import { calls, forbidden, loggedIn, renderApp } from "../../test/renderApp";

const admin = { id: 1, username: "admin", role: "admin", enabled: true, created_at: "2026-01-01T00:00:00Z" };
const eve = { id: 2, username: "eve", role: "viewer", enabled: true, created_at: "2026-01-02T00:00:00Z" };
const list = (items: unknown[]) => ({ items, total: items.length, limit: 25, offset: 0 });

beforeEach(() => vi.stubGlobal("WebSocket", FakeWebSocket));
afterEach(() => vi.unstubAllGlobals());

describe("users page", () => {
  it("shows the hub's password rule of a 422 on the password field", async () => {
    loggedIn("admin");
    const message = "password is one of the most common passwords: choose another";
    const { user, fetchImpl } = renderApp("/admin/users", {
      "GET /api/v1/users": () => json(200, list([admin])),
      "POST /api/v1/users": () => json(422, {
        error: { code: "weak_password", message, correlation_id: "c1",
          details: [{ field: "password", rule: "common", message }] },
      }),
    });
    await screen.findByText("admin (you)");
    const form = screen.getByRole("form", { name: "new user" });
    await user.type(within(form).getByLabelText(/Username/), "eve");
    await user.type(within(form).getByLabelText(/Password/), "password1234");
    await user.click(within(form).getByRole("combobox", { name: /Role/ }));
    await user.click(screen.getByRole("option", { name: "engineer" }));
    await user.click(screen.getByRole("button", { name: "Create user" }));
    expect(await screen.findByRole("alert")).toHaveTextContent(`The hub refused the user: ${message}`);
    expect(within(form).getByLabelText(/Password/)).toHaveAttribute("aria-invalid", "true");
    expect(within(form).getAllByText(message)).toHaveLength(1);
    const [post] = calls(fetchImpl, "/api/v1/users", "POST");
    expect(JSON.parse(post!.init.body as string)).toEqual({ username: "eve", password: "password1234", role: "engineer" });
  });

  it("shows a 400's message too", async () => {
    loggedIn("admin");
    const { user } = renderApp("/admin/users", {
      "GET /api/v1/users": () => json(200, list([admin])),
      "POST /api/v1/users": () => json(400, { error: { code: "malformed_request", message: "the request body is not JSON", correlation_id: null } }),
    });
    await screen.findByText("admin (you)");
    const form = screen.getByRole("form", { name: "new user" });
    await user.type(within(form).getByLabelText(/Username/), "eve");
    await user.type(within(form).getByLabelText(/Password/), "a long enough one");
    await user.click(screen.getByRole("button", { name: "Create user" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("the request body is not JSON");
  });

  it("changes a role and shows the API's refusal to disable the last admin", async () => {
    loggedIn("admin");
    const { user, fetchImpl } = renderApp("/admin/users", {
      "GET /api/v1/users": () => json(200, list([admin, eve])),
      "PATCH /api/v1/users/2": () => json(200, { ...eve, role: "engineer" }),
      "PATCH /api/v1/users/1": () => json(409, {
        error: { code: "last_admin", message: "admin is the last enabled admin", correlation_id: "c2" },
      }),
    });
    await user.click(await screen.findByRole("combobox", { name: "Role of eve" }));
    await user.click(screen.getByRole("option", { name: "engineer" }));
    expect(await screen.findByText("eve: engineer, enabled.")).toBeInTheDocument();
    const [patch] = calls(fetchImpl, "/api/v1/users/2", "PATCH");
    expect(JSON.parse(patch!.init.body as string)).toEqual({ role: "engineer" });

    await user.click(screen.getByRole("button", { name: "Disable admin" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("admin is the last enabled admin");
    expect(JSON.parse(calls(fetchImpl, "/api/v1/users/1", "PATCH")[0]!.init.body as string)).toEqual({ enabled: false });
  });

  it("shows an engineer the API's 403 message, and no admin navigation", async () => {
    loggedIn("engineer");
    renderApp("/admin/users", { "GET /api/v1/users": () => json(403, forbidden("engineer")) });
    expect(await screen.findByRole("alert")).toHaveTextContent("role admin or higher required; you are engineer");
    expect(screen.queryByRole("form", { name: "new user" })).toBeNull();
    const nav = screen.getByRole("navigation", { name: "main" });
    expect(within(nav).queryByRole("link", { name: "Admin" })).toBeNull();
    expect(within(nav).queryByRole("link", { name: "Audit" })).toBeNull();
    expect(within(nav).getByRole("link", { name: "History" })).toBeInTheDocument();
  });

  it("shows an admin the admin and audit navigation", async () => {
    loggedIn("admin");
    renderApp("/admin", { "GET /api/v1/users": () => json(200, list([admin])) });
    expect(await screen.findByRole("heading", { name: "Users" })).toBeInTheDocument();
    const nav = screen.getByRole("navigation", { name: "main" });
    expect(within(nav).getByRole("link", { name: "Admin" })).toHaveAttribute("href", "/admin");
    expect(within(nav).getByRole("link", { name: "Audit" })).toHaveAttribute("href", "/audit");
  });
});
