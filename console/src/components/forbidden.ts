import { ApiError } from "../api/errors";

/** True for the API's 403: the page shows its message and nothing else. */
export function isForbidden(error: unknown): boolean {
  return error instanceof ApiError && error.status === 403;
}
