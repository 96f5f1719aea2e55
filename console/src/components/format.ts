export function formatTime(iso: string | null | undefined): string {
  if (!iso) return "—";
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleString();
}

export function statusColor(
  status: string,
): "default" | "primary" | "success" | "error" | "warning" | "info" {
  switch (status) {
    case "succeeded":
    case "connected":
      return "success";
    case "failed":
    case "timed_out":
    case "interrupted":
      return "error";
    case "cancelled":
    case "expired":
      return "warning";
    case "running":
    case "dispatched":
      return "info";
    default:
      return "default";
  }
}
