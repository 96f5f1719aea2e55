import { describe, expect, it } from "vitest";
import {
  clearSession, loadSession, MAX_LEAD_MS, MIN_LEAD_MS, needsRefresh, refreshAt, refreshDelayMs,
  refreshExpired, refreshLeadMs, saveSession, tokensFromResponse,
} from "./tokens";

const response = {
  access_token: "a", refresh_token: "r", token_type: "bearer" as const,
  expires_in: 900, refresh_expires_in: 1_209_600, session_id: "s",
};

describe("token refresh timing", () => {
  const now = 1_000_000;
  const tokens = tokensFromResponse(response, now);

  it("computes expiry from expires_in at receipt", () => {
    expect(tokens.accessExpiresAt).toBe(now + 900_000);
    expect(tokens.refreshExpiresAt).toBe(now + 1_209_600_000);
  });

  it("refreshes 60 s before a 15-minute token expires", () => {
    expect(refreshAt(tokens)).toBe(now + 900_000 - 60_000);
    expect(refreshDelayMs(tokens, now)).toBe(840_000);
    expect(refreshDelayMs(tokens, now + 800_000)).toBe(40_000);
  });

  it("keeps the lead between 5 s and 60 s, a fifth of short lifetimes", () => {
    expect(refreshLeadMs(10_000)).toBe(MIN_LEAD_MS);
    expect(refreshLeadMs(100_000)).toBe(20_000);
    expect(refreshLeadMs(3_600_000)).toBe(MAX_LEAD_MS);
  });

  it("is due at once when the refresh time has passed (e.g. after a reload)", () => {
    expect(refreshDelayMs(tokens, now + 899_000)).toBe(0);
    expect(refreshDelayMs(tokens, now + 2_000_000)).toBe(0);
  });

  it("needs a refresh before use only close to expiry", () => {
    expect(needsRefresh(tokens, now + 800_000)).toBe(false);
    expect(needsRefresh(tokens, now + 900_000 - MIN_LEAD_MS)).toBe(true);
    expect(needsRefresh(tokens, now + 901_000)).toBe(true);
  });

  it("knows when the refresh token is gone", () => {
    expect(refreshExpired(tokens, now + 1_209_599_999)).toBe(false);
    expect(refreshExpired(tokens, now + 1_209_600_000)).toBe(true);
  });
});

describe("session storage", () => {
  it("round-trips and refuses what is not a session", () => {
    const tokens = tokensFromResponse(response, 5);
    saveSession(sessionStorage, { tokens, user: { username: "eng", role: "engineer" } });
    expect(loadSession(sessionStorage)).toEqual({ tokens, user: { username: "eng", role: "engineer" } });
    sessionStorage.setItem("sovd-hub.session", JSON.stringify({ tokens, user: { username: "x", role: "root" } }));
    expect(loadSession(sessionStorage)).toBeNull();
    sessionStorage.setItem("sovd-hub.session", "{not json");
    expect(loadSession(sessionStorage)).toBeNull();
    clearSession(sessionStorage);
    expect(loadSession(sessionStorage)).toBeNull();
  });
});
