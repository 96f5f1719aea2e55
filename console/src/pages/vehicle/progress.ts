/** An operation's progress (0-100) from its latest `progress` event that says one, else null. */
import type { CommandEvent } from "../../api/types";

export function latestProgress(events: readonly CommandEvent[]): number | null {
  for (const event of [...events].reverse()) {
    const body = event.body;
    if (event.kind !== "progress" || typeof body !== "object" || body === null) continue;
    const value = (body as { progress?: unknown }).progress;
    if (typeof value === "number" && Number.isFinite(value)) return Math.min(100, Math.max(0, value));
  }
  return null;
}
