/** Bodies of the hub's REST API (api/schemas/ in the repository). */

export type Role = "viewer" | "engineer" | "admin";

export interface TokenResponse {
  access_token: string;
  token_type: "bearer";
  expires_in: number;
  refresh_token: string;
  refresh_expires_in: number;
  session_id: string;
}

export interface Me {
  id: number;
  username: string;
  role: Role;
  enabled: boolean;
  created_at: string;
}

export type LinkState = "connected" | "disconnected";

export interface Connection {
  status: LinkState;
  since: string | null;
  last_seen_at: string | null;
  reason?: string | null;
  detail?: string | null;
  node_id?: string | null;
  source?: "cluster" | "local";
  session_id?: string | null;
}

export interface Vehicle {
  vin: string;
  make: string;
  model: string;
  year: number;
  metadata: Record<string, unknown>;
  enabled: boolean;
  created_at: string;
  connection: Connection;
}

export interface Page<T> {
  items: T[];
  total: number;
  limit: number;
  offset: number;
}

export type CommandStatus =
  | "pending"
  | "dispatched"
  | "running"
  | "succeeded"
  | "failed"
  | "timed_out"
  | "cancelled"
  | "expired"
  | "interrupted";

export const COMMAND_STATUSES: readonly CommandStatus[] = [
  "pending",
  "dispatched",
  "running",
  "succeeded",
  "failed",
  "timed_out",
  "cancelled",
  "expired",
  "interrupted",
];

const ACTIVE: ReadonlySet<string> = new Set(["pending", "dispatched", "running"]);

/** True once a command can change no more (hub/model.py CommandStatus.is_final). */
export function isFinalStatus(status: string): boolean {
  return !ACTIVE.has(status);
}

export interface Command {
  id: string;
  vin: string;
  command: string;
  params: Record<string, unknown>;
  status: CommandStatus | string;
  error: string | null;
  submitted_by: string;
  submitted_at: string;
  started_at: string | null;
  finished_at: string | null;
  expires_at: string | null;
  timeout_s: number;
  links: Record<string, string>;
}

export interface VehicleDetail extends Vehicle {
  active_commands: Record<string, number>;
  recent_commands: Command[];
}

export interface CommandEvent {
  command_id: string;
  seq: number;
  kind: string;
  status: number;
  body: unknown;
  final: boolean;
  received_at: string;
}

export interface EventList {
  items: CommandEvent[];
  total: number;
}

export interface CatalogCommand {
  name: string;
  description: string;
  sovd: { method: string; path: string; query: string[]; body: string[] };
  params: JsonSchemaObject;
  examples: Record<string, unknown>[];
}

export interface JsonSchemaProperty {
  type?: "string" | "integer" | "number" | "boolean";
  description?: string;
  title?: string;
  pattern?: string;
  enum?: (string | number)[];
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  maxLength?: number;
  default?: unknown;
}

export interface JsonSchemaObject {
  type?: "object";
  title?: string;
  properties?: Record<string, JsonSchemaProperty>;
  required?: string[];
  additionalProperties?: boolean;
}

export interface SubmitCommand {
  vin: string;
  command: string;
  params: Record<string, unknown>;
  timeout_s?: number;
  ttl_s?: number;
}
