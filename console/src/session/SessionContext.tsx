/** The login session: tokens in sessionStorage, refreshed before they expire, ended on any 401. */
import { useQueryClient } from "@tanstack/react-query";
import {
  createContext,
  useCallback,
  useContext,
  useEffect,
  useMemo,
  useRef,
  useState,
  type ReactNode,
} from "react";
import { ApiClient } from "../api/client";
import { ApiError } from "../api/errors";
import type { Me, TokenResponse } from "../api/types";
import { openTabGuard } from "./tabs";
import {
  clearSession,
  loadSession,
  needsRefresh,
  refreshDelayMs,
  refreshExpired,
  saveSession,
  tokensFromResponse,
  type SessionUser,
  type StoredSession,
} from "./tokens";

export interface SessionValue {
  user: SessionUser | null;
  /** The current access token (changes on refresh); null when logged out. */
  accessToken: string | null;
  /** Why the last session ended (shown on the login page), or null. */
  notice: string | null;
  api: ApiClient;
  login: (username: string, password: string) => Promise<void>;
  logout: () => Promise<void>;
  /** End the session locally with a message for the login page. */
  expire: (message: string) => void;
}

const SessionContext = createContext<SessionValue | null>(null);

/** Retry a refresh that failed for another reason than 401 (network, 503) this soon. */
const REFRESH_RETRY_MS = 5_000;

export function SessionProvider({
  children,
  fetchImpl,
}: {
  children: ReactNode;
  fetchImpl?: typeof fetch;
}) {
  const queryClient = useQueryClient();
  const [session, setSession] = useState<StoredSession | null>(() => {
    const stored = loadSession(sessionStorage);
    return stored && !refreshExpired(stored.tokens, Date.now()) ? stored : null;
  });
  const [notice, setNotice] = useState<string | null>(null);
  const sessionRef = useRef(session);
  const refreshing = useRef<Promise<string | null> | null>(null);

  const store = useCallback((next: StoredSession | null) => {
    sessionRef.current = next;
    if (next) saveSession(sessionStorage, next);
    else clearSession(sessionStorage);
    setSession(next);
  }, []);

  const expire = useCallback(
    (message: string) => {
      if (sessionRef.current === null) return;
      store(null);
      setNotice(message);
      queryClient.clear();
    },
    [queryClient, store],
  );

  // The client is built once; it reads the session through refs.
  const apiRef = useRef<ApiClient | null>(null);
  const refreshNow = useCallback(async (): Promise<string | null> => {
    if (refreshing.current) return refreshing.current;
    const current = sessionRef.current;
    if (current === null) return null;
    const attempt = (async () => {
      try {
        const body = await apiRef.current!.post<TokenResponse>(
          "/api/v1/auth/refresh",
          { refresh_token: current.tokens.refreshToken },
          { auth: false },
        );
        const next = { ...current, tokens: tokensFromResponse(body, Date.now()) };
        if (sessionRef.current === current) store(next);
        return next.tokens.accessToken;
      } catch (error) {
        if (error instanceof ApiError && error.status === 401) {
          expire(`Your session ended: ${error.message}`);
          return null;
        }
        throw error;
      } finally {
        refreshing.current = null;
      }
    })();
    refreshing.current = attempt;
    return attempt;
  }, [expire, store]);

  const getAccessToken = useCallback(async (): Promise<string | null> => {
    const current = sessionRef.current;
    if (current === null) return null;
    if (needsRefresh(current.tokens, Date.now())) return refreshNow();
    return current.tokens.accessToken;
  }, [refreshNow]);

  if (apiRef.current === null) {
    apiRef.current = new ApiClient({
      getAccessToken: () => getAccessToken(),
      onUnauthorized: (error) => expire(`Your session ended: ${error.message}`),
      fetch: fetchImpl,
    });
  }
  const api = apiRef.current;

  // A duplicated tab holds a copy of another tab's session: give it up (see tabs.ts).
  useEffect(() => {
    const guard = openTabGuard(() => sessionRef.current?.tokens.sessionId ?? null);
    const sid = sessionRef.current?.tokens.sessionId;
    if (sid) {
      guard.check(sid, () => {
        if (sessionRef.current?.tokens.sessionId !== sid) return;
        sessionRef.current = null;
        clearSession(sessionStorage);
        setSession(null);
        setNotice(
          "This login session is open in another tab (a duplicated tab): log in here to open one of its own.",
        );
      });
    }
    return () => guard.close();
  }, []);

  // Refresh shortly before the access token expires.
  useEffect(() => {
    if (session === null) return;
    let timer: ReturnType<typeof setTimeout>;
    const schedule = (delay: number) => {
      timer = setTimeout(() => {
        refreshNow().catch(() => schedule(REFRESH_RETRY_MS));
      }, delay);
    };
    schedule(refreshDelayMs(session.tokens, Date.now()));
    return () => clearTimeout(timer);
  }, [session, refreshNow]);

  const login = useCallback(
    async (username: string, password: string) => {
      const body = await api.post<TokenResponse>(
        "/api/v1/auth/login",
        { username, password },
        { auth: false },
      );
      const tokens = tokensFromResponse(body, Date.now());
      const me = await api.request<Me>("GET", "/api/v1/auth/me", {
        auth: false,
        headers: { Authorization: `Bearer ${tokens.accessToken}` },
      });
      queryClient.clear();
      setNotice(null);
      store({ tokens, user: { username: me.username, role: me.role } });
    },
    [api, queryClient, store],
  );

  const logout = useCallback(async () => {
    const current = sessionRef.current;
    if (current === null) return;
    try {
      await api.request("POST", "/api/v1/auth/logout", {
        auth: false,
        headers: { Authorization: `Bearer ${current.tokens.accessToken}` },
      });
      setNotice("You are logged out.");
    } catch (error) {
      setNotice(
        `Logged out here, but the hub did not confirm it: ${
          error instanceof Error ? error.message : String(error)
        }`,
      );
    }
    store(null);
    queryClient.clear();
  }, [api, queryClient, store]);

  const value = useMemo<SessionValue>(
    () => ({
      user: session?.user ?? null,
      accessToken: session?.tokens.accessToken ?? null,
      notice,
      api,
      login,
      logout,
      expire,
    }),
    [session, notice, api, login, logout, expire],
  );
  return <SessionContext.Provider value={value}>{children}</SessionContext.Provider>;
}

export function useSession(): SessionValue {
  const value = useContext(SessionContext);
  if (value === null) throw new Error("useSession must be used inside <SessionProvider>");
  return value;
}

export function useApi(): ApiClient {
  return useSession().api;
}
