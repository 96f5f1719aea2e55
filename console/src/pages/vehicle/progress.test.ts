import { describe, expect, it } from "vitest";
import type { CommandEvent } from "../../api/types";
import { latestProgress } from "./progress";

function event(seq: number, kind: string, body: unknown): CommandEvent {
  return { command_id: "c", seq, kind, status: 200, body, final: false, received_at: "2026-12-04T00:00:00Z" };
}

describe("latestProgress", () => {
  it("is the newest progress event's value, clamped to 0-100", () => {
    expect(latestProgress([event(0, "accepted", { id: "c" })])).toBeNull();
    expect(latestProgress([event(1, "progress", { progress: 25 }), event(2, "progress", { progress: 50 })])).toBe(50);
    expect(latestProgress([event(1, "progress", { progress: 140 })])).toBe(100);
  });

  it("skips progress events that carry no number (a fault of ReadDTC)", () => {
    expect(latestProgress([event(1, "progress", { progress: 25 }), event(2, "progress", { code: "P0420" })])).toBe(25);
    expect(latestProgress([event(1, "progress", { code: "P0420" })])).toBeNull();
  });
});
