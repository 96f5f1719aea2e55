import { describe, expect, it } from "vitest";
import type { CommandEvent } from "../api/types";
import {
  commandStreamReducer as reduce, finalEvent, initialCommandStream, isEnded, resumeFrom,
  type CommandStreamState,
} from "./commandStream";

const ev = (seq: number, final = false): CommandEvent => ({
  command_id: "c", seq, kind: final ? "result" : "progress", status: 200,
  body: { n: seq }, final, received_at: "2026-01-01T00:00:00Z",
});

function feed(seqs: number[], state: CommandStreamState = initialCommandStream) {
  return seqs.reduce((s, seq) => reduce(s, { type: "event", event: ev(seq) }), state);
}

describe("command event stream", () => {
  it("keeps events in seq order and resumes after the last", () => {
    const s = feed([0, 1, 2]);
    expect(s.events.map((e) => e.seq)).toEqual([0, 1, 2]);
    expect(resumeFrom(s)).toBe(3);
  });

  it("drops duplicates (a replay after resuming)", () => {
    const s = feed([0, 1, 1, 0, 2, 2]);
    expect(s.events.map((e) => e.seq)).toEqual([0, 1, 2]);
    expect(s.events[1]!.body).toEqual({ n: 1 });
  });

  it("orders out-of-order events and resumes from the first missing seq", () => {
    let s = feed([0, 2, 3]);
    expect(s.events.map((e) => e.seq)).toEqual([0, 2, 3]);
    expect(resumeFrom(s)).toBe(1);
    s = feed([1], s);
    expect(s.events.map((e) => e.seq)).toEqual([0, 1, 2, 3]);
    expect(resumeFrom(s)).toBe(4);
  });

  it("a reconnect replaying from from_seq neither loses nor repeats", () => {
    const before = feed([0, 1, 2]);
    const from = resumeFrom(before);
    // the hub replays stored events from `from`, then live ones; a stale one may slip in
    const after = feed([2, from, from + 1], before);
    expect(after.events.map((e) => e.seq)).toEqual([0, 1, 2, 3, 4]);
    expect(resumeFrom(after)).toBe(5);
  });

  it("merges a REST batch with streamed events", () => {
    const s = reduce(feed([3, 4]), { type: "events", events: [ev(0), ev(1), ev(2), ev(3)] });
    expect(s.events.map((e) => e.seq)).toEqual([0, 1, 2, 3, 4]);
    expect(resumeFrom(s)).toBe(5);
  });

  it("ignores malformed seqs and returns the same state for nothing new", () => {
    const s = feed([0]);
    expect(reduce(s, { type: "event", event: ev(0) })).toBe(s);
    expect(reduce(s, { type: "event", event: { ...ev(1), seq: -1 } })).toBe(s);
  });

  it("ends with the status frame and exposes the final result", () => {
    let s = feed([0]);
    s = reduce(s, { type: "event", event: ev(1, true) });
    expect(isEnded(s)).toBe(false);
    s = reduce(s, { type: "status", status: "succeeded", error: null, at: "t" });
    expect(isEnded(s)).toBe(true);
    expect(s.final).toEqual({ status: "succeeded", error: null, at: "t" });
    expect(finalEvent(s)?.seq).toBe(1);
    expect(reduce(s, { type: "reset" })).toEqual(initialCommandStream);
  });
});
