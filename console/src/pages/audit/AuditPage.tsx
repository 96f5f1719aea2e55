import { Button, Stack, Typography } from "@mui/material";
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { auditKeys, fetchAuditPage, firstPageUrl } from "../../api/audit";
import { ErrorAlert } from "../../components/ErrorAlert";
import { isForbidden } from "../../components/forbidden";
import { useApi } from "../../session/SessionContext";
import { AuditExport } from "./AuditExport";
import { AuditFilterForm, type AuditSearch } from "./AuditFilterForm";
import { AuditTable } from "./AuditTable";
import { ChainCheck } from "./ChainCheck";

const INITIAL: AuditSearch = { filters: {}, order: "desc", limit: 50 };

/** The audit trail for admins: keyset pages that follow the API's `next` links. */
export function AuditPage() {
  const api = useApi();
  const [search, setSearch] = useState<AuditSearch>(INITIAL);
  // The pages visited: the first page's URL, then each `next` the API answered.
  const [trail, setTrail] = useState<string[]>(() => [firstPageUrl(INITIAL.filters, INITIAL.limit, INITIAL.order)]);
  const url = trail[trail.length - 1]!;
  const page = useQuery({
    queryKey: auditKeys.page(url),
    queryFn: ({ signal }) => fetchAuditPage(api, url, signal),
    placeholderData: keepPreviousData,
  });
  const apply = (next: AuditSearch) => {
    setSearch(next);
    setTrail([firstPageUrl(next.filters, next.limit, next.order)]);
  };
  const next = page.isPlaceholderData ? null : (page.data?.next ?? null);

  const heading = <Typography variant="h5" component="h1">Audit trail</Typography>;
  if (isForbidden(page.error)) return <Stack spacing={2}>{heading}<ErrorAlert error={page.error} title="Audit" /></Stack>;
  return (
    <Stack spacing={2}>
      {heading}
      <AuditFilterForm onApply={apply} />
      <AuditExport filters={search.filters} />
      <ChainCheck />
      <ErrorAlert error={page.error} title="Audit" />
      {page.data && <AuditTable items={page.data.items} />}
      <Stack direction="row" spacing={1} alignItems="center" component="nav" aria-label="audit pages">
        <Button disabled={trail.length < 2} onClick={() => setTrail((t) => t.slice(0, -1))}>Previous page</Button>
        <Typography component="span" aria-live="polite">Page {trail.length}</Typography>
        <Button disabled={next === null} onClick={() => next && setTrail((t) => [...t, next])}>Next page</Button>
      </Stack>
    </Stack>
  );
}
