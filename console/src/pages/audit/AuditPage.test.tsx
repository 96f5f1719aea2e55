import { screen, waitFor, within } from "@testing-library/react";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { FakeWebSocket, json } from "../../test/fakes";
import { calls, forbidden, loggedIn, renderApp } from "../../test/renderApp";

const event = (id: number, action = "auth.login") => ({
  id, at: "2026-01-02T03:04:05.123456Z", actor: "admin", action, target: "user:admin", vin: null,
  details: {}, chain: "node-a", seq: id, prev_hash: "0".repeat(64), hash: "h".repeat(64),
});
// Two rows that storage.audit_chain.row_hash hashed (see audit/chain.test.ts).
const H1 = "6bfe8b5bb2b1530121a68803e0aeaf5078f8e1f736ce5bf3a1f26cd4660ab058";
const chained = [
  { id: 10, at: "2026-01-02T03:04:05.123456Z", actor: "admin", action: "user.created", target: "user:eve", vin: null,
    details: { role: "viewer", n: 1.0, f: 0.00001, s: 'café "q"\n', l: [true, null, 2.5] },
    chain: "node-a", seq: 1, prev_hash: "0".repeat(64), hash: H1 },
  { id: 11, at: "2026-01-02T03:04:06.000000Z", actor: "hub", action: "vehicle.connected",
    target: "vehicle:1SVDHB00000000001", vin: "1SVDHB00000000001", details: {}, chain: "node-a", seq: 2,
    prev_hash: H1, hash: "4b57293fe1ced8a89a7c1bb890a461fea494c642ee66fdbd72553f7e0d41721f" },
];
const ndjson = (rows: unknown[]) =>
  new Response(rows.map((r) => JSON.stringify(r)).join("\n") + "\n", {
    status: 200,
    headers: { "Content-Type": "application/x-ndjson", "Content-Disposition": 'attachment; filename="audit-20260102T030405Z.ndjson"' },
  });

beforeEach(() => vi.stubGlobal("WebSocket", FakeWebSocket));
afterEach(() => vi.unstubAllGlobals());

describe("audit page", () => {
  it("pages by the API's next link (its after_id), and back", async () => {
    loggedIn("admin");
    const next = "/api/v1/audit?limit=50&order=desc&after_id=41";
    const { user, fetchImpl } = renderApp("/audit", {
      "GET /api/v1/audit": (url) =>
        url.includes("after_id=41")
          ? json(200, { items: [event(40, "auth.logout")], limit: 50, next: null })
          : json(200, { items: [event(42), event(41)], limit: 50, next }),
    });
    expect(await screen.findByRole("cell", { name: "42" })).toBeInTheDocument();
    const pages = screen.getByRole("navigation", { name: "audit pages" });
    expect(within(pages).getByRole("button", { name: "Previous page" })).toBeDisabled();
    await user.click(within(pages).getByRole("button", { name: "Next page" }));
    expect(await screen.findByRole("cell", { name: "auth.logout" })).toBeInTheDocument();
    const urls = calls(fetchImpl, "/api/v1/audit").map((c) => c.url);
    expect(urls).toEqual(["/api/v1/audit?limit=50&order=desc", next]);
    expect(within(pages).getByRole("button", { name: "Next page" })).toBeDisabled();
    await user.click(within(pages).getByRole("button", { name: "Previous page" }));
    expect(await screen.findByRole("cell", { name: "42" })).toBeInTheDocument();
  });

  it("sends the filters the API takes and restarts at the first page", async () => {
    loggedIn("admin");
    const { user, fetchImpl } = renderApp("/audit", {
      "GET /api/v1/audit": () => json(200, { items: [event(1)], limit: 50, next: null }),
    });
    await screen.findByRole("cell", { name: "auth.login" });
    await user.type(screen.getByLabelText("Actor"), "alice");
    await user.type(screen.getByLabelText("Action"), "auth.*");
    await user.type(screen.getByLabelText("VIN"), "1svdhb00000000001");
    await user.click(screen.getByRole("button", { name: "Search" }));
    await waitFor(() => expect(calls(fetchImpl, "/api/v1/audit")).toHaveLength(2));
    const url = new URL(calls(fetchImpl, "/api/v1/audit")[1]!.url, "http://hub");
    expect(Object.fromEntries(url.searchParams)).toEqual({
      actor: "alice", action: "auth.*", vin: "1SVDHB00000000001", limit: "50", order: "desc",
    });
  });

  it("downloads an export with the bearer token", async () => {
    loggedIn("admin");
    const createObjectURL = vi.fn(() => "blob:audit");
    const saved = { createObjectURL: URL.createObjectURL, revokeObjectURL: URL.revokeObjectURL };
    Object.assign(URL, { createObjectURL, revokeObjectURL: vi.fn() });
    const clicked: HTMLAnchorElement[] = [];
    const click = vi.spyOn(HTMLAnchorElement.prototype, "click").mockImplementation(function (this: HTMLAnchorElement) {
      clicked.push(this);
    });
    const { user, fetchImpl } = renderApp("/audit", {
      "GET /api/v1/audit": () => json(200, { items: [], limit: 50, next: null }),
      "GET /api/v1/audit/export": () => ndjson(chained),
    });
    await screen.findByText("No audit event matches.");
    await user.click(screen.getByRole("button", { name: "Export CSV" }));
    expect(await screen.findByText("Saved audit-20260102T030405Z.ndjson")).toBeInTheDocument();
    const [call] = calls(fetchImpl, "/api/v1/audit/export");
    expect(call!.url).toBe("/api/v1/audit/export?format=csv");
    expect((call!.init.headers as Record<string, string>).Authorization).toBe("Bearer access-1");
    expect(clicked[0]!.download).toBe("audit-20260102T030405Z.ndjson");
    expect(createObjectURL).toHaveBeenCalledTimes(1);
    click.mockRestore();
    Object.assign(URL, saved);
  });

  it("shows whether the chains verify, and where one breaks", async () => {
    loggedIn("admin");
    let rows: unknown[] = chained;
    const { user } = renderApp("/audit", {
      "GET /api/v1/audit": () => json(200, { items: [], limit: 50, next: null }),
      "GET /api/v1/audit/export": () => ndjson(rows),
    });
    await user.click(await screen.findByRole("button", { name: "Verify chains" }));
    const section = screen.getByRole("region", { name: "chain verification" });
    expect(await within(section).findByText(/Verified: 1 chain\(s\) intact/)).toBeInTheDocument();
    expect(section).toHaveTextContent("chain node-a: verified, seq 1–2 (2 rows)");

    rows = [chained[0], { ...chained[1], details: { forged: true } }];
    await user.click(within(section).getByRole("button", { name: "Verify chains" }));
    expect(await within(section).findByText(/Broken: 1 of 1 chain\(s\)/)).toBeInTheDocument();
    expect(section).toHaveTextContent("chain node-a: BROKEN at seq 2 (id 11)");
    expect(section).toHaveTextContent("hash mismatch");
  });

  it("shows an engineer the API's 403 message", async () => {
    loggedIn("engineer");
    renderApp("/audit", { "GET /api/v1/audit": () => json(403, forbidden("engineer")) });
    expect(await screen.findByRole("alert")).toHaveTextContent("Audit: role admin or higher required; you are engineer");
    expect(screen.queryByRole("button", { name: "Export CSV" })).toBeNull();
    expect(screen.queryByRole("link", { name: "Audit" })).toBeNull();
  });
});
