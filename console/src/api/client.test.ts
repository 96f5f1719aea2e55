import { describe, expect, it, vi } from "vitest";
import { json } from "../test/fakes";
import { ApiClient, buildUrl } from "./client";
import { ApiError, describeError, parseRetryAfter } from "./errors";

describe("ApiClient", () => {
  it("turns the error envelope into an ApiError with Retry-After and reports 401s", async () => {
    const onUnauthorized = vi.fn();
    const fetchImpl = vi
      .fn<typeof fetch>()
      .mockResolvedValueOnce(json(429, { error: { code: "rate_limited", message: "too many", correlation_id: "c9" } }, { "Retry-After": "7" }))
      .mockResolvedValueOnce(json(401, { error: { code: "session_revoked", message: "revoked", correlation_id: null } }));
    const api = new ApiClient({ getAccessToken: async () => "t", onUnauthorized, fetch: fetchImpl });
    const limited = await api.get("/api/v1/vehicles").catch((e: unknown) => e);
    expect(limited).toBeInstanceOf(ApiError);
    expect(limited).toMatchObject({ status: 429, code: "rate_limited", retryAfterS: 7, correlationId: "c9" });
    expect(describeError(limited)).toBe("too many (retry in 7 s) [ref c9]");
    expect(onUnauthorized).not.toHaveBeenCalled();
    await expect(api.get("/api/v1/vehicles")).rejects.toMatchObject({ code: "session_revoked" });
    expect(onUnauthorized).toHaveBeenCalledTimes(1);
  });

  it("builds query strings without empty values", () => {
    expect(buildUrl("/api/v1/vehicles", { search: "", status: "connected", limit: 25, offset: 0, x: undefined }))
      .toBe("/api/v1/vehicles?status=connected&limit=25&offset=0");
  });

  it("reads Retry-After as seconds or an HTTP date", () => {
    expect(parseRetryAfter("12")).toBe(12);
    expect(parseRetryAfter(null)).toBeNull();
    expect(parseRetryAfter("Thu, 01 Jan 2026 00:01:00 GMT", Date.parse("2026-01-01T00:00:00Z"))).toBe(60);
  });
});
