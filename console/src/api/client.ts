/** HTTP to the hub: relative URLs (same origin), bearer auth, the error envelope as `ApiError`. */
import { ApiError, errorFromResponse } from "./errors";

export type Query = Record<string, string | number | boolean | null | undefined>;

export interface RequestOptions {
  body?: unknown;
  query?: Query;
  headers?: Record<string, string>;
  /** false: send no Authorization header (login, refresh). */
  auth?: boolean;
  signal?: AbortSignal;
}

export interface ApiClientOptions {
  /** The access token to send, fresh (refreshed first if due); null when logged out. */
  getAccessToken: () => Promise<string | null>;
  /** Called with every 401 of an authenticated request: the session is over. */
  onUnauthorized: (error: ApiError) => void;
  fetch?: typeof fetch;
}

/** `/api/v1/...?a=1` with the query's set values, encoded. */
export function buildUrl(path: string, query?: Query): string {
  if (!query) return path;
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined || value === null || value === "") continue;
    params.set(key, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

export class ApiClient {
  private readonly options: ApiClientOptions;

  constructor(options: ApiClientOptions) {
    this.options = options;
  }

  get<T>(path: string, query?: Query, signal?: AbortSignal): Promise<T> {
    return this.request<T>("GET", path, { query, signal });
  }

  post<T>(path: string, body?: unknown, options: Omit<RequestOptions, "body"> = {}): Promise<T> {
    return this.request<T>("POST", path, { ...options, body });
  }

  patch<T>(path: string, body: unknown): Promise<T> {
    return this.request<T>("PATCH", path, { body });
  }

  async request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const response = await this.send(method, path, options);
    const text = await response.text();
    if (!text) return undefined as T;
    try {
      return JSON.parse(text) as T;
    } catch {
      return undefined as T;
    }
  }

  /** The successful response itself, unread (a download); failures throw `ApiError` as in `request`. */
  async send(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
    const headers: Record<string, string> = { Accept: "application/json", ...options.headers };
    const auth = options.auth ?? true;
    if (auth) {
      const token = await this.options.getAccessToken();
      if (token === null) {
        const error = new ApiError(401, "unauthenticated", "you are not logged in");
        this.options.onUnauthorized(error);
        throw error;
      }
      headers.Authorization = `Bearer ${token}`;
    }
    let body: string | undefined;
    if (options.body !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(options.body);
    }
    const doFetch = this.options.fetch ?? globalThis.fetch.bind(globalThis);
    let response: Response;
    try {
      response = await doFetch(buildUrl(path, options.query), {
        method,
        headers,
        body,
        signal: options.signal,
        credentials: "same-origin",
      });
    } catch (cause) {
      if (cause instanceof DOMException && cause.name === "AbortError") throw cause;
      throw new ApiError(0, "network_error", `cannot reach the hub (${String(cause)})`);
    }
    if (response.ok) return response;
    const text = await response.text();
    let parsed: unknown = undefined;
    if (text) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = undefined;
      }
    }
    const error = errorFromResponse(response.status, response.headers, parsed);
    if (auth && response.status === 401) this.options.onUnauthorized(error);
    throw error;
  }
}
