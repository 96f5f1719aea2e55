/** Frames of the operator WebSocket (api/websocket.py, api/ws_frames.py). */
import type { CommandEvent } from "../api/types";

export interface EventFrame extends CommandEvent {
  type: "event";
  topic: string;
}

export interface StatusFrame {
  type: "status";
  topic: string;
  command_id: string;
  status: string;
  error: string | null;
  at: string;
}

export interface VehicleFrame {
  type: "vehicle";
  topic: string;
  vin: string;
  status: "connected" | "disconnected";
  reason: string | null;
  detail: string | null;
  at: string;
}

export interface ErrorFrame {
  type: "error";
  code: string;
  message: string;
  topic?: string;
}

export interface SubscribedFrame {
  type: "subscribed";
  topic: string;
  from_seq?: number;
}

export interface LaggedFrame {
  type: "lagged";
  message: string;
  queued: number;
  resume: Record<string, number | null>;
}

export type ServerFrame =
  | { type: "authenticated"; username: string; role: string }
  | SubscribedFrame
  | EventFrame
  | StatusFrame
  | VehicleFrame
  | { type: "unsubscribed"; topic: string }
  | { type: "pong" }
  | ErrorFrame
  | LaggedFrame;

/** A frame that concerns one topic (what subscribers receive). */
export type TopicFrame = SubscribedFrame | EventFrame | StatusFrame | VehicleFrame | ErrorFrame;

export function parseFrame(data: unknown): ServerFrame | null {
  if (typeof data !== "string") return null;
  try {
    const value: unknown = JSON.parse(data);
    if (typeof value === "object" && value !== null && typeof (value as { type?: unknown }).type === "string") {
      return value as ServerFrame;
    }
  } catch {
    // not JSON: ignored
  }
  return null;
}

export const commandTopic = (id: string) => `command:${id}`;
export const vehicleTopic = (vin: string) => `vehicle:${vin}`;
export const FLEET_TOPIC = "fleet";

/** ws(s)://<this host>/api/v1/ws */
export function socketUrl(location: Pick<Location, "protocol" | "host">): string {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  return `${scheme}//${location.host}/api/v1/ws`;
}
