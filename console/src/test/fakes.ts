/** Test doubles: a scripted fetch and a WebSocket that records what the app sends. */
import { vi } from "vitest";

export type Route = (url: string, init: RequestInit) => Response | Promise<Response>;

export function json(status: number, body: unknown, headers: Record<string, string> = {}): Response {
  return new Response(body === undefined ? null : JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json", ...headers },
  });
}

/** A fetch answering from `routes` ("METHOD /path" without the query), 404 otherwise. */
export function fakeFetch(routes: Record<string, Route>) {
  return vi.fn<typeof fetch>(async (input, init = {}) => {
    const url = String(input);
    const key = `${init.method ?? "GET"} ${url.split("?")[0]}`;
    const route = routes[key];
    if (!route) return json(404, { error: { code: "not_found", message: `no fake for ${key}`, correlation_id: null } });
    return route(url, init);
  });
}

export class FakeWebSocket {
  static instances: FakeWebSocket[] = [];
  readyState = 0;
  sent: Record<string, unknown>[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((event: { data: string }) => void) | null = null;
  onclose: ((event: { code: number; reason: string }) => void) | null = null;
  constructor(public url: string) {
    FakeWebSocket.instances.push(this);
  }
  send(text: string) {
    this.sent.push(JSON.parse(text) as Record<string, unknown>);
  }
  close(code = 1000, reason = "") {
    this.readyState = 3;
    this.onclose?.({ code, reason });
  }
  /** The hub side: open the connection. */
  open() {
    this.readyState = 1;
    this.onopen?.();
  }
  /** The hub side: send a frame. */
  receive(frame: Record<string, unknown>) {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }
}
