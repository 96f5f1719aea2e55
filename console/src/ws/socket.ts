/** One WebSocket to the hub, shared by every subscription; reconnects and resubscribes.
 *
 *  Protocol (api/websocket.py): `auth` first, then `subscribe`/`unsubscribe`. A command topic
 *  is (re)subscribed with `from_seq` from its listener (the next seq it expects), so a
 *  reconnect resumes without a gap; live topics (`fleet`, `vehicle:<vin>`) just subscribe.
 */
import { parseFrame, type ServerFrame, type TopicFrame } from "./frames";

export type SocketState = "connecting" | "open" | "reconnecting" | "closed";

export interface TopicListener {
  onFrame: (frame: TopicFrame) => void;
  /** Command topics: the `from_seq` to subscribe with now. */
  fromSeq?: () => number;
}

export interface HubSocketOptions {
  url: string;
  getToken: () => Promise<string | null>;
  /** Close 4401: the token expired or its session was revoked. */
  onUnauthorized: (message: string) => void;
  onStateChange?: (state: SocketState, detail: string | null) => void;
  WebSocketImpl?: typeof WebSocket;
  /** Reconnect delays (ms), the last repeated. */
  backoffMs?: number[];
  pingIntervalMs?: number;
}

interface TopicEntry {
  listeners: Set<TopicListener>;
  /** The hub ended it (a command's final `status`): not subscribed again on reconnect. */
  ended: boolean;
}

const CLOSE_UNAUTHENTICATED = 4401;

export class HubSocket {
  private readonly options: HubSocketOptions;
  private readonly topics = new Map<string, TopicEntry>();
  private socket: WebSocket | null = null;
  private authenticated = false;
  private stopped = false;
  private attempt = 0;
  private reconnectTimer: ReturnType<typeof setTimeout> | null = null;
  private pingTimer: ReturnType<typeof setInterval> | null = null;
  state: SocketState = "closed";

  constructor(options: HubSocketOptions) {
    this.options = options;
  }

  start(): void {
    this.stopped = false;
    if (this.socket === null) this.connect();
  }

  /** Close for good (logout, unmount). */
  stop(): void {
    this.stopped = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    this.reconnectTimer = null;
    this.stopPing();
    const socket = this.socket;
    this.socket = null;
    this.authenticated = false;
    socket?.close(1000, "client closed");
    this.setState("closed", null);
  }

  /** Send a fresh access token on the open connection (`auth` replaces the token). */
  reauthenticate(token: string): void {
    if (this.socket && this.authenticated) this.send({ type: "auth", token });
  }

  /** Listen to `topic`; returns the function that stops listening. */
  subscribe(topic: string, listener: TopicListener): () => void {
    let entry = this.topics.get(topic);
    const first = entry === undefined;
    if (entry === undefined) {
      entry = { listeners: new Set(), ended: false };
      this.topics.set(topic, entry);
    }
    entry.listeners.add(listener);
    if (first && this.authenticated) this.sendSubscribe(topic);
    return () => {
      const current = this.topics.get(topic);
      if (!current) return;
      current.listeners.delete(listener);
      if (current.listeners.size === 0) {
        this.topics.delete(topic);
        if (this.authenticated && !current.ended) this.send({ type: "unsubscribe", topic });
      }
    };
  }

  private setState(state: SocketState, detail: string | null): void {
    this.state = state;
    this.options.onStateChange?.(state, detail);
  }

  private connect(): void {
    const Impl = this.options.WebSocketImpl ?? WebSocket;
    this.setState(this.attempt === 0 ? "connecting" : "reconnecting", null);
    const socket = new Impl(this.options.url);
    this.socket = socket;
    socket.onopen = () => {
      void this.options.getToken().then((token) => {
        if (this.socket !== socket) return;
        if (token === null) {
          socket.close(1000, "logged out");
          return;
        }
        this.send({ type: "auth", token });
      });
    };
    socket.onmessage = (message: MessageEvent) => {
      if (this.socket !== socket) return;
      const frame = parseFrame(message.data);
      if (frame) this.handle(frame);
    };
    socket.onclose = (event: CloseEvent) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.authenticated = false;
      this.stopPing();
      if (this.stopped) return;
      if (event.code === CLOSE_UNAUTHENTICATED) {
        this.stopped = true;
        this.setState("closed", event.reason || "the hub closed the live connection (4401)");
        this.options.onUnauthorized(
          event.reason || "the session expired or was revoked (WebSocket closed 4401)",
        );
        return;
      }
      this.scheduleReconnect(
        `connection closed (${event.code}${event.reason ? `: ${event.reason}` : ""})`,
      );
    };
  }

  private scheduleReconnect(detail: string): void {
    const delays = this.options.backoffMs ?? [500, 1000, 2000, 5000, 10000];
    const delay = delays[Math.min(this.attempt, delays.length - 1)] ?? 5000;
    this.attempt += 1;
    this.setState("reconnecting", `${detail}; reconnecting in ${Math.round(delay / 1000)} s`);
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = null;
      if (!this.stopped) this.connect();
    }, delay);
  }

  private handle(frame: ServerFrame): void {
    switch (frame.type) {
      case "authenticated": {
        const first = !this.authenticated;
        this.authenticated = true;
        if (first) {
          this.attempt = 0;
          this.setState("open", null);
          this.startPing();
          for (const [topic, entry] of this.topics) {
            if (!entry.ended) this.sendSubscribe(topic);
          }
        }
        return;
      }
      case "pong":
      case "unsubscribed":
        return;
      case "lagged":
        // The hub closes with 1013 next; the reconnect resubscribes from each listener's seq.
        this.setState("reconnecting", frame.message);
        return;
      case "error": {
        if (frame.topic === undefined) {
          if (frame.code === "bad_auth") this.options.onUnauthorized(frame.message);
          return;
        }
        const entry = this.topics.get(frame.topic);
        if (!entry) return;
        if (frame.code === "overflow") {
          this.sendSubscribe(frame.topic); // it ended: catch up from where we are
          return;
        }
        if (frame.code !== "already_subscribed") entry.ended = true;
        this.dispatch(frame.topic, frame);
        return;
      }
      case "status": {
        const entry = this.topics.get(frame.topic);
        if (entry && frame.topic.startsWith("command:")) entry.ended = true;
        this.dispatch(frame.topic, frame);
        return;
      }
      case "subscribed":
      case "event":
      case "vehicle":
        this.dispatch(frame.topic, frame);
        return;
    }
  }

  private dispatch(topic: string, frame: TopicFrame): void {
    const entry = this.topics.get(topic);
    if (!entry) return;
    for (const listener of [...entry.listeners]) listener.onFrame(frame);
  }

  private sendSubscribe(topic: string): void {
    const entry = this.topics.get(topic);
    if (!entry) return;
    if (topic.startsWith("command:")) {
      let fromSeq = 0;
      for (const listener of entry.listeners) {
        if (listener.fromSeq) {
          fromSeq = listener.fromSeq();
          break;
        }
      }
      this.send({ type: "subscribe", topic, from_seq: fromSeq });
    } else {
      this.send({ type: "subscribe", topic });
    }
  }

  private send(message: Record<string, unknown>): void {
    if (this.socket && this.socket.readyState === 1) this.socket.send(JSON.stringify(message));
  }

  private startPing(): void {
    this.stopPing();
    const every = this.options.pingIntervalMs ?? 25_000;
    this.pingTimer = setInterval(() => this.send({ type: "ping" }), every);
  }

  private stopPing(): void {
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.pingTimer = null;
  }
}
