/** The events of one command as they stream in: a pure reducer.
 *
 *  The hub numbers a command's events 0, 1, 2, ... without gaps (hub/commands.py). Frames can
 *  come twice (a resumed subscription replays from `from_seq`; REST and WebSocket overlap) or,
 *  across sources, out of order: events are kept by seq, a repeated seq is dropped, and the
 *  resume point is the first seq not yet received, so a reconnect neither loses nor repeats one.
 */
import type { CommandEvent } from "../api/types";

export interface FinalStatus {
  status: string;
  error: string | null;
  at: string | null;
}

export interface CommandStreamState {
  /** Received events, ordered by seq, each seq once. */
  events: CommandEvent[];
  /** The first seq not received: subscribe again with `from_seq` = this. */
  nextSeq: number;
  /** The command's final status (a `status` frame), once it ended. */
  final: FinalStatus | null;
}

export type CommandStreamAction =
  | { type: "event"; event: CommandEvent }
  | { type: "events"; events: CommandEvent[] }
  | { type: "status"; status: string; error: string | null; at: string | null }
  | { type: "reset" };

export const initialCommandStream: CommandStreamState = { events: [], nextSeq: 0, final: null };

function contiguousEnd(events: CommandEvent[], from: number, start: number): number {
  // `events` is sorted by seq with no repeats; walk from the first event at or after `from`.
  let next = from;
  for (let i = start; i < events.length; i++) {
    const seq = events[i]!.seq;
    if (seq < next) continue;
    if (seq !== next) break;
    next += 1;
  }
  return next;
}

/** `state` with `incoming` events merged in: by seq, duplicates dropped, order kept. */
export function mergeEvents(
  state: CommandStreamState,
  incoming: CommandEvent[],
): CommandStreamState {
  const known = new Set(state.events.map((e) => e.seq));
  const added: CommandEvent[] = [];
  for (const event of incoming) {
    if (!Number.isInteger(event.seq) || event.seq < 0 || known.has(event.seq)) continue;
    known.add(event.seq);
    added.push(event);
  }
  if (added.length === 0) return state;
  const events = [...state.events, ...added].sort((a, b) => a.seq - b.seq);
  return { ...state, events, nextSeq: contiguousEnd(events, state.nextSeq, 0) };
}

export function commandStreamReducer(
  state: CommandStreamState,
  action: CommandStreamAction,
): CommandStreamState {
  switch (action.type) {
    case "event":
      return mergeEvents(state, [action.event]);
    case "events":
      return mergeEvents(state, action.events);
    case "status":
      return { ...state, final: { status: action.status, error: action.error, at: action.at } };
    case "reset":
      return initialCommandStream;
  }
}

/** The `from_seq` to (re)subscribe with. */
export function resumeFrom(state: CommandStreamState): number {
  return state.nextSeq;
}

/** True once the stream has nothing more to bring: the final status came. */
export function isEnded(state: CommandStreamState): boolean {
  return state.final !== null;
}

/** The result body, if the vehicle sent a final event. */
export function finalEvent(state: CommandStreamState): CommandEvent | null {
  for (let i = state.events.length - 1; i >= 0; i--) {
    if (state.events[i]!.final) return state.events[i]!;
  }
  return null;
}
