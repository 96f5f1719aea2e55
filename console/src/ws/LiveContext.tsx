/** The shared hub WebSocket of the logged-in session, and `useTopic` to follow a topic. */
import {
  createContext,
  useContext,
  useEffect,
  useRef,
  useState,
  type ReactNode,
} from "react";
import { useSession } from "../session/SessionContext";
import type { TopicFrame } from "./frames";
import { socketUrl } from "./frames";
import { HubSocket, type SocketState } from "./socket";

interface LiveValue {
  socket: HubSocket | null;
  state: SocketState;
  detail: string | null;
}

const LiveContext = createContext<LiveValue>({ socket: null, state: "closed", detail: null });

export function LiveProvider({ children }: { children: ReactNode }) {
  const { user, accessToken, expire } = useSession();
  const [socket, setSocket] = useState<HubSocket | null>(null);
  const [status, setStatus] = useState<{ state: SocketState; detail: string | null }>({
    state: "closed",
    detail: null,
  });
  const tokenRef = useRef(accessToken);
  tokenRef.current = accessToken;
  const username = user?.username ?? null;

  useEffect(() => {
    if (username === null) return;
    const hub = new HubSocket({
      url: socketUrl(window.location),
      getToken: async () => tokenRef.current,
      onUnauthorized: (message) => expire(`Your session ended: ${message}`),
      onStateChange: (state, detail) => setStatus({ state, detail }),
    });
    hub.start();
    setSocket(hub);
    return () => {
      hub.stop();
      setSocket(null);
    };
  }, [username, expire]);

  useEffect(() => {
    if (socket && accessToken) socket.reauthenticate(accessToken);
  }, [socket, accessToken]);

  return (
    <LiveContext.Provider value={{ socket, state: status.state, detail: status.detail }}>
      {children}
    </LiveContext.Provider>
  );
}

export function useLiveStatus(): { state: SocketState; detail: string | null } {
  const { state, detail } = useContext(LiveContext);
  return { state, detail };
}

/** Call `onFrame` for each frame of `topic` (null: none) while mounted. */
export function useTopic(
  topic: string | null,
  onFrame: (frame: TopicFrame) => void,
  fromSeq?: () => number,
): void {
  const { socket } = useContext(LiveContext);
  const handler = useRef(onFrame);
  const seq = useRef(fromSeq);
  useEffect(() => {
    handler.current = onFrame;
    seq.current = fromSeq;
  });
  useEffect(() => {
    if (socket === null || topic === null) return;
    return socket.subscribe(topic, {
      onFrame: (frame) => handler.current(frame),
      fromSeq: seq.current ? () => seq.current?.() ?? 0 : undefined,
    });
  }, [socket, topic]);
}
