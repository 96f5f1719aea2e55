import { ApiError } from "../api/errors";

/** A 400/422's `details` by the field they name (its last part: `body.password` -> `password`). */
export function fieldErrors(error: unknown): Record<string, string> {
  const out: Record<string, string> = {};
  if (!(error instanceof ApiError) || (error.status !== 400 && error.status !== 422)) return out;
  for (const detail of error.details) {
    const field = detail.field.split(".").pop() ?? detail.field;
    out[field] ??= detail.message;
  }
  return out;
}
