import { Button, MenuItem, Stack, TextField } from "@mui/material";
import { useState, type FormEvent } from "react";
import type { AuditFilters } from "../../api/audit";
import { localToIso } from "../../components/time";

export interface AuditSearch {
  filters: AuditFilters;
  order: "asc" | "desc";
  limit: number;
}

/** The filters `GET /api/v1/audit` takes (no `target`: the API has no such filter). */
export function AuditFilterForm({ onApply }: { onApply: (search: AuditSearch) => void }) {
  const [actor, setActor] = useState("");
  const [action, setAction] = useState("");
  const [vin, setVin] = useState("");
  const [since, setSince] = useState("");
  const [until, setUntil] = useState("");
  const [order, setOrder] = useState<"asc" | "desc">("desc");
  const [limit, setLimit] = useState(50);

  const submit = (event: FormEvent) => {
    event.preventDefault();
    onApply({
      filters: {
        actor: actor.trim() || undefined,
        action: action.trim() || undefined,
        vin: vin.trim().toUpperCase() || undefined,
        since: localToIso(since),
        until: localToIso(until),
      },
      order,
      limit,
    });
  };

  const shrink = { inputLabel: { shrink: true } };
  return (
    <Stack component="form" aria-label="audit filters" onSubmit={submit} direction="row" spacing={2}
      flexWrap="wrap" useFlexGap alignItems="flex-start">
      <TextField id="audit-actor" label="Actor" size="small" value={actor} onChange={(e) => setActor(e.target.value)}
        helperText="username, hub or vehicle:<VIN>" />
      <TextField id="audit-action" label="Action" size="small" value={action} onChange={(e) => setAction(e.target.value)}
        helperText="e.g. auth.login_failed or auth.*" />
      <TextField id="audit-vin" label="VIN" size="small" value={vin} onChange={(e) => setVin(e.target.value)} helperText=" " />
      <TextField id="audit-since" label="Since" type="datetime-local" size="small" value={since} helperText="inclusive"
        onChange={(e) => setSince(e.target.value)} slotProps={shrink} />
      <TextField id="audit-until" label="Until" type="datetime-local" size="small" value={until} helperText="exclusive"
        onChange={(e) => setUntil(e.target.value)} slotProps={shrink} />
      <TextField id="audit-order" select label="Order" size="small" value={order} sx={{ minWidth: 140 }} helperText=" "
        onChange={(e) => setOrder(e.target.value as "asc" | "desc")}>
        <MenuItem value="desc">newest first</MenuItem>
        <MenuItem value="asc">oldest first</MenuItem>
      </TextField>
      <TextField id="audit-limit" select label="Rows per page" size="small" value={limit} sx={{ minWidth: 120 }} helperText=" "
        onChange={(e) => setLimit(Number(e.target.value))}>
        {[25, 50, 100, 500].map((n) => <MenuItem key={n} value={n}>{n}</MenuItem>)}
      </TextField>
      <Button type="submit" variant="contained">Search</Button>
    </Stack>
  );
}
