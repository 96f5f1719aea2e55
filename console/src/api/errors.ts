/** The hub's error envelope `{"error": {code, message, correlation_id, details?}}` (api/errors.py). */

export interface ErrorDetail {
  field: string;
  rule: string;
  message: string;
}

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly correlationId: string | null;
  readonly details: ErrorDetail[];
  /** Seconds from the `Retry-After` header, when the hub sent one. */
  readonly retryAfterS: number | null;

  constructor(
    status: number,
    code: string,
    message: string,
    options: { correlationId?: string | null; details?: ErrorDetail[]; retryAfterS?: number | null } = {},
  ) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.correlationId = options.correlationId ?? null;
    this.details = options.details ?? [];
    this.retryAfterS = options.retryAfterS ?? null;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function parseDetails(raw: unknown): ErrorDetail[] {
  if (!Array.isArray(raw)) return [];
  return raw.filter(isRecord).map((d) => ({
    field: typeof d.field === "string" ? d.field : "body",
    rule: typeof d.rule === "string" ? d.rule : "",
    message: typeof d.message === "string" ? d.message : String(d.message ?? ""),
  }));
}

/** Whole seconds of a `Retry-After` header (delta-seconds or an HTTP date); null if absent. */
export function parseRetryAfter(header: string | null, now: number = Date.now()): number | null {
  if (header === null || header.trim() === "") return null;
  const seconds = Number(header);
  if (Number.isFinite(seconds)) return Math.max(0, Math.ceil(seconds));
  const at = Date.parse(header);
  if (Number.isNaN(at)) return null;
  return Math.max(0, Math.ceil((at - now) / 1000));
}

/** The `ApiError` of a failed response's status, headers and (parsed, maybe absent) body. */
export function errorFromResponse(status: number, headers: Headers, body: unknown): ApiError {
  const retryAfterS = parseRetryAfter(headers.get("Retry-After"));
  const envelope = isRecord(body) && isRecord(body.error) ? body.error : null;
  if (envelope !== null) {
    const code = typeof envelope.code === "string" ? envelope.code : `http_${status}`;
    const message =
      typeof envelope.message === "string" ? envelope.message : `the hub answered ${status}`;
    return new ApiError(status, code, message, {
      correlationId: typeof envelope.correlation_id === "string" ? envelope.correlation_id : null,
      details: parseDetails(envelope.details),
      retryAfterS,
    });
  }
  return new ApiError(status, `http_${status}`, `the hub answered ${status} without an error body`, {
    retryAfterS,
  });
}

/** A message for people: the server's message, with the wait of a 429/503 if the hub gave one. */
export function describeError(error: unknown): string {
  if (error instanceof ApiError) {
    const wait =
      error.retryAfterS !== null && (error.status === 429 || error.status === 503)
        ? ` (retry in ${error.retryAfterS} s)`
        : "";
    const ref = error.correlationId ? ` [ref ${error.correlationId}]` : "";
    return `${error.message}${wait}${ref}`;
  }
  if (error instanceof Error) return error.message;
  return String(error);
}
