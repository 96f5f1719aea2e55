/** The audit trail (api/audit.py): keyset pages, streamed exports. Admins only. */
import type { ApiClient, Query } from "./client";

export interface AuditEvent {
  id: number;
  at: string;
  actor: string;
  action: string;
  target: string;
  vin: string | null;
  details: Record<string, unknown>;
  chain: string;
  seq: number;
  prev_hash: string;
  hash: string;
}

/** A page: `next` is the API's own link to the following page (`after_id` set), or null. */
export interface AuditPage {
  items: AuditEvent[];
  limit: number;
  next: string | null;
}

/** The filters `GET /api/v1/audit` and `/audit/export` share (api/schemas/audit.py AuditFilters). */
export interface AuditFilters {
  actor?: string;
  action?: string;
  vin?: string;
  since?: string;
  until?: string;
}

export type ExportFormat = "ndjson" | "csv";

export const AUDIT_PATH = "/api/v1/audit";

export const auditKeys = {
  page: (url: string) => ["audit", url] as const,
};

/** The first page's URL; later pages are the `next` links the API answers. */
export function firstPageUrl(filters: AuditFilters, limit: number, order: "asc" | "desc"): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries({ ...filters, limit, order })) {
    if (value !== undefined && value !== "") params.set(key, String(value));
  }
  return `${AUDIT_PATH}?${params.toString()}`;
}

/** Only follow links into the audit trail of this hub (the `next` of a page). */
export function isAuditLink(url: string): boolean {
  return url === AUDIT_PATH || url.startsWith(`${AUDIT_PATH}?`);
}

export const fetchAuditPage = (api: ApiClient, url: string, signal?: AbortSignal) => {
  if (!isAuditLink(url)) throw new Error(`not an audit page link: ${url}`);
  return api.get<AuditPage>(url, undefined, signal);
};

/** The export's file name from Content-Disposition, else a fallback. */
export function exportFileName(disposition: string | null, format: ExportFormat): string {
  const match = disposition?.match(/filename="?([^";]+)"?/);
  return match?.[1] ?? `audit.${format}`;
}

/** `GET /api/v1/audit/export` with the bearer token: the whole answer as a Blob. */
export async function fetchExport(
  api: ApiClient,
  filters: AuditFilters,
  format: ExportFormat,
): Promise<{ blob: Blob; fileName: string }> {
  const query: Query = { ...filters, format };
  const response = await api.send("GET", `${AUDIT_PATH}/export`, {
    query,
    headers: { Accept: format === "csv" ? "text/csv" : "application/x-ndjson" },
  });
  const blob = await response.blob();
  return { blob, fileName: exportFileName(response.headers.get("Content-Disposition"), format) };
}
