/** Login tokens: when they expire, when to refresh, and how they are kept in sessionStorage.
 *  Pure functions of a time `now` (ms since the epoch), so they can be tested without timers. */
import type { Role, TokenResponse } from "../api/types";

export interface Tokens {
  accessToken: string;
  refreshToken: string;
  /** When the access token expires (ms since the epoch). */
  accessExpiresAt: number;
  /** When the refresh token expires if unused (ms since the epoch). */
  refreshExpiresAt: number;
  /** When they were received (ms since the epoch). */
  issuedAt: number;
  /** The login session they belong to. */
  sessionId: string;
}

export const STORAGE_KEY = "sovd-hub.session";
/** Refresh at most this long before the access token expires... */
export const MAX_LEAD_MS = 60_000;
/** ...and at least this long, so a slow answer still comes back in time. */
export const MIN_LEAD_MS = 5_000;

/** The tokens of a login or refresh answer received at `now`. */
export function tokensFromResponse(body: TokenResponse, now: number): Tokens {
  return {
    accessToken: body.access_token,
    refreshToken: body.refresh_token,
    accessExpiresAt: now + body.expires_in * 1000,
    refreshExpiresAt: now + body.refresh_expires_in * 1000,
    issuedAt: now,
    sessionId: body.session_id,
  };
}

/** How long before expiry to refresh: a fifth of the token's life, within 5 s .. 60 s. */
export function refreshLeadMs(lifetimeMs: number): number {
  return Math.min(MAX_LEAD_MS, Math.max(MIN_LEAD_MS, lifetimeMs / 5));
}

/** When (ms since the epoch) to refresh `tokens`. */
export function refreshAt(tokens: Tokens): number {
  const lifetime = Math.max(0, tokens.accessExpiresAt - tokens.issuedAt);
  return tokens.accessExpiresAt - refreshLeadMs(lifetime);
}

/** Milliseconds from `now` until the refresh is due (0: now). */
export function refreshDelayMs(tokens: Tokens, now: number): number {
  return Math.max(0, refreshAt(tokens) - now);
}

/** True when the access token should be refreshed before it is used at `now`. */
export function needsRefresh(tokens: Tokens, now: number): boolean {
  return now >= tokens.accessExpiresAt - MIN_LEAD_MS;
}

/** True when the refresh token can no longer be traded (the session must log in again). */
export function refreshExpired(tokens: Tokens, now: number): boolean {
  return now >= tokens.refreshExpiresAt;
}

function isTokens(value: unknown): value is Tokens {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return (
    typeof v.accessToken === "string" &&
    typeof v.refreshToken === "string" &&
    typeof v.accessExpiresAt === "number" &&
    typeof v.refreshExpiresAt === "number" &&
    typeof v.issuedAt === "number" &&
    typeof v.sessionId === "string"
  );
}

/** Who is logged in (from `GET /api/v1/auth/me`). */
export interface SessionUser {
  username: string;
  role: Role;
}

export interface StoredSession {
  tokens: Tokens;
  user: SessionUser;
}

const ROLES: readonly string[] = ["viewer", "engineer", "admin"];

function isUser(value: unknown): value is SessionUser {
  if (typeof value !== "object" || value === null) return false;
  const v = value as Record<string, unknown>;
  return typeof v.username === "string" && typeof v.role === "string" && ROLES.includes(v.role);
}

/** The session kept in `storage`, or null (none, or not ours). */
export function loadSession(storage: Storage): StoredSession | null {
  const raw = storage.getItem(STORAGE_KEY);
  if (raw === null) return null;
  try {
    const parsed: unknown = JSON.parse(raw);
    if (typeof parsed !== "object" || parsed === null) return null;
    const { tokens, user } = parsed as Record<string, unknown>;
    return isTokens(tokens) && isUser(user) ? { tokens, user } : null;
  } catch {
    return null;
  }
}

export function saveSession(storage: Storage, session: StoredSession): void {
  storage.setItem(STORAGE_KEY, JSON.stringify(session));
}

export function clearSession(storage: Storage): void {
  storage.removeItem(STORAGE_KEY);
}
