/** `datetime-local` text (local time) as ISO 8601 with a zone, as the API wants. */
export function localToIso(local: string): string | undefined {
  if (!local) return undefined;
  const date = new Date(local);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}
