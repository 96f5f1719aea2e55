import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { FakeWebSocket } from "../test/fakes";
import { HubSocket } from "./socket";

function make(onUnauthorized = vi.fn()) {
  const hub = new HubSocket({
    url: "ws://hub/api/v1/ws",
    getToken: async () => "tok",
    onUnauthorized,
    WebSocketImpl: FakeWebSocket as unknown as typeof WebSocket,
    backoffMs: [100],
  });
  return { hub, onUnauthorized };
}

async function connect(index: number) {
  const socket = FakeWebSocket.instances[index]!;
  socket.open();
  await vi.waitFor(() => expect(socket.sent[0]).toEqual({ type: "auth", token: "tok" }));
  socket.receive({ type: "authenticated", username: "u", role: "engineer" });
  return socket;
}

beforeEach(() => {
  FakeWebSocket.instances = [];
});
afterEach(() => vi.useRealTimers());

describe("HubSocket", () => {
  it("authenticates first, then subscribes; command topics with from_seq", async () => {
    const { hub } = make();
    hub.subscribe("fleet", { onFrame: vi.fn() });
    hub.subscribe("command:c1", { onFrame: vi.fn(), fromSeq: () => 0 });
    hub.start();
    const socket = await connect(0);
    expect(socket.sent).toEqual([
      { type: "auth", token: "tok" },
      { type: "subscribe", topic: "fleet" },
      { type: "subscribe", topic: "command:c1", from_seq: 0 },
    ]);
  });

  it("reconnects and resumes each command from the next expected seq", async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    const { hub } = make();
    let next = 0;
    const frames: unknown[] = [];
    hub.subscribe("command:c1", {
      onFrame: (f) => { frames.push(f); if (f.type === "event") next = f.seq + 1; },
      fromSeq: () => next,
    });
    hub.subscribe("command:done", { onFrame: vi.fn(), fromSeq: () => 0 });
    hub.start();
    const first = await connect(0);
    first.receive({ type: "event", topic: "command:c1", command_id: "c1", seq: 0, kind: "progress", status: 200, body: {}, final: false });
    first.receive({ type: "event", topic: "command:c1", command_id: "c1", seq: 1, kind: "progress", status: 200, body: {}, final: false });
    first.receive({ type: "status", topic: "command:done", command_id: "done", status: "succeeded", error: null, at: "t" });
    first.close(1006);
    expect(hub.state).toBe("reconnecting");
    await vi.advanceTimersByTimeAsync(150);
    const second = await connect(1);
    expect(second.sent).toEqual([
      { type: "auth", token: "tok" },
      { type: "subscribe", topic: "command:c1", from_seq: 2 },
    ]);
    expect(frames).toHaveLength(2);
  });

  it("resubscribes a topic that overflowed", async () => {
    const { hub } = make();
    hub.subscribe("command:c1", { onFrame: vi.fn(), fromSeq: () => 7 });
    hub.start();
    const socket = await connect(0);
    socket.receive({ type: "error", code: "overflow", message: "subscribe again with from_seq 7", topic: "command:c1" });
    expect(socket.sent.at(-1)).toEqual({ type: "subscribe", topic: "command:c1", from_seq: 7 });
  });

  it("ends the session on close 4401 and does not reconnect", async () => {
    vi.useFakeTimers({ shouldAdvanceTime: true });
    const { hub, onUnauthorized } = make();
    hub.start();
    const socket = await connect(0);
    socket.close(4401, "token expired");
    await vi.advanceTimersByTimeAsync(500);
    expect(onUnauthorized).toHaveBeenCalledWith("token expired");
    expect(FakeWebSocket.instances).toHaveLength(1);
    expect(hub.state).toBe("closed");
  });

  it("unsubscribes when the last listener leaves", async () => {
    const { hub } = make();
    hub.start();
    const socket = await connect(0);
    const stop = hub.subscribe("vehicle:V", { onFrame: vi.fn() });
    expect(socket.sent.at(-1)).toEqual({ type: "subscribe", topic: "vehicle:V" });
    stop();
    expect(socket.sent.at(-1)).toEqual({ type: "unsubscribe", topic: "vehicle:V" });
  });
});
