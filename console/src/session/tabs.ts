/** One tab per login session. A duplicated browser tab copies sessionStorage, refresh token
 *  included; since each refresh token works once and a reused one revokes the whole session
 *  (api/accounts.py), two tabs refreshing the same session would log both out. A tab that
 *  starts with a stored session asks the others whether they hold it; if one does, the new
 *  tab drops its copy and asks for a login of its own. */

const CHANNEL = "sovd-hub.session";

type Message = { type: "who"; sid: string } | { type: "mine"; sid: string };

export interface TabGuard {
  /** Ask the other tabs; `onTaken` runs if one of them holds `sid`. */
  check: (sid: string, onTaken: () => void) => void;
  close: () => void;
}

/** Answers for the session `currentSid()` holds, and asks about copies. */
export function openTabGuard(currentSid: () => string | null): TabGuard {
  if (typeof BroadcastChannel === "undefined") return { check: () => {}, close: () => {} };
  const channel = new BroadcastChannel(CHANNEL);
  let waiting: { sid: string; onTaken: () => void } | null = null;
  channel.onmessage = (event: MessageEvent<Message>) => {
    const message = event.data;
    if (message.type === "who" && message.sid === currentSid() && waiting?.sid !== message.sid) {
      channel.postMessage({ type: "mine", sid: message.sid } satisfies Message);
    } else if (message.type === "mine" && waiting?.sid === message.sid) {
      const { onTaken } = waiting;
      waiting = null;
      onTaken();
    }
  };
  return {
    check(sid, onTaken) {
      waiting = { sid, onTaken };
      channel.postMessage({ type: "who", sid } satisfies Message);
      setTimeout(() => {
        if (waiting?.sid === sid) waiting = null;
      }, 1000);
    },
    close: () => channel.close(),
  };
}
