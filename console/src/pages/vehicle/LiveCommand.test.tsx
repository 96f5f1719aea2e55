import { act, render, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { MemoryRouter } from "react-router-dom";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { AppProviders, makeQueryClient } from "../../AppProviders";
import type { Command } from "../../api/types";
import { saveSession, tokensFromResponse } from "../../session/tokens";
import { fakeFetch, FakeWebSocket, json } from "../../test/fakes";
import { LiveCommand } from "./LiveCommand";
import { ROUTER_FUTURE } from "../../router";

const command: Command = {
  id: "0b7c6f52-3f0e-4c1e-9a59-1a2b3c4d5e6f", vin: "1SVDHB00000000001", command: "ReadDTC",
  params: { ecuAddress: "0x10" }, status: "pending", error: null, submitted_by: "eng",
  submitted_at: "2026-01-01T00:00:00Z", started_at: null, finished_at: null, expires_at: null,
  timeout_s: 30, links: {},
};
const topic = `command:${command.id}`;
const event = (seq: number, final = false) => ({
  type: "event", topic, command_id: command.id, seq, kind: final ? "result" : "progress",
  status: 200, body: { fault: `P000${seq}` }, final, received_at: "2026-01-01T00:00:01Z",
});

beforeEach(() => {
  FakeWebSocket.instances = [];
  vi.stubGlobal("WebSocket", FakeWebSocket);
  saveSession(sessionStorage, {
    tokens: tokensFromResponse(
      { access_token: "a", refresh_token: "r", token_type: "bearer", expires_in: 900, refresh_expires_in: 3600, session_id: "s" },
      Date.now(),
    ),
    user: { username: "eng", role: "engineer" },
  });
});
afterEach(() => vi.unstubAllGlobals());

describe("LiveCommand", () => {
  it("streams events from seq 0 in order, once, to the final status; cancels", async () => {
    const fetchImpl = fakeFetch({
      [`POST /api/v1/commands/${command.id}/cancel`]: () => json(202, { ...command, status: "running" }),
    });
    render(
      <MemoryRouter future={ROUTER_FUTURE}>
        <AppProviders queryClient={makeQueryClient()} fetchImpl={fetchImpl}>
          <LiveCommand command={command} canCancel />
        </AppProviders>
      </MemoryRouter>,
    );
    const socket = FakeWebSocket.instances[0]!;
    act(() => socket.open());
    await waitFor(() => expect(socket.sent[0]).toEqual({ type: "auth", token: "a" }));
    act(() => socket.receive({ type: "authenticated", username: "eng", role: "engineer" }));
    expect(socket.sent).toContainEqual({ type: "subscribe", topic, from_seq: 0 });

    act(() => {
      socket.receive({ type: "subscribed", topic, from_seq: 0 });
      socket.receive(event(1));
      socket.receive(event(0));
      socket.receive(event(1));
    });
    const items = screen.getAllByRole("listitem");
    expect(items.map((li) => li.textContent?.slice(0, 11))).toEqual(["#0 progress", "#1 progress"]);

    await userEvent.setup().click(screen.getByRole("button", { name: "Cancel" }));
    expect(fetchImpl).toHaveBeenCalledWith(`/api/v1/commands/${command.id}/cancel`, expect.objectContaining({ method: "POST" }));

    act(() => {
      socket.receive(event(2, true));
      socket.receive({ type: "status", topic, command_id: command.id, status: "succeeded", error: null, at: "t" });
    });
    expect(screen.getByText("succeeded")).toBeInTheDocument();
    expect(screen.getByText("Result")).toBeInTheDocument();
    expect(screen.getAllByRole("listitem")).toHaveLength(3);
    expect(screen.queryByRole("button", { name: "Cancel" })).toBeNull();
  });
});
