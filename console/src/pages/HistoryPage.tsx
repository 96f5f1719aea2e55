import {
  Button, Chip, Dialog, DialogActions, DialogContent, DialogTitle, MenuItem, Stack, TableCell, TableRow,
  TextField, Typography,
} from "@mui/material";
import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { useState } from "react";
import { Link as RouterLink, useSearchParams } from "react-router-dom";
import { fetchCommands, fetchEvents, keys } from "../api/queries";
import { COMMAND_STATUSES } from "../api/types";
import { ErrorAlert } from "../components/ErrorAlert";
import { PagedTable } from "../components/PagedTable";
import { formatTime, statusColor } from "../components/format";
import { useApi, useSession } from "../session/SessionContext";
import { EventList } from "./vehicle/EventList";

const VIN = /^[A-HJ-NPR-Z0-9]{17}$/;

/** `datetime-local` text (local time) as ISO 8601 with a zone, as the API wants. */
function toIso(local: string): string | undefined {
  if (!local) return undefined;
  const date = new Date(local);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

function EventsDialog({ id, onClose }: { id: string; onClose: () => void }) {
  const api = useApi();
  const events = useQuery({ queryKey: keys.events(id), queryFn: ({ signal }) => fetchEvents(api, id, signal) });
  return (
    <Dialog open onClose={onClose} fullWidth maxWidth="md" aria-labelledby="events-title">
      <DialogTitle id="events-title">Events of {id}</DialogTitle>
      <DialogContent>
        <ErrorAlert error={events.error} />
        {events.data ? <EventList events={events.data.items} /> : !events.error && <Typography>Loading…</Typography>}
      </DialogContent>
      <DialogActions><Button onClick={onClose}>Close</Button></DialogActions>
    </Dialog>
  );
}

export function HistoryPage() {
  const api = useApi();
  const { user } = useSession();
  const [params, setParams] = useSearchParams();
  const [vin, setVin] = useState("");
  const [status, setStatus] = useState("");
  const [command, setCommand] = useState("");
  const [submittedBy, setSubmittedBy] = useState("");
  const [since, setSince] = useState("");
  const [until, setUntil] = useState("");
  const [page, setPage] = useState(0);
  const [rowsPerPage, setRowsPerPage] = useState(25);
  const vinProblem = vin && !VIN.test(vin.trim().toUpperCase()) ? "a VIN has 17 characters (no I, O or Q)" : null;
  const query = {
    vin: vinProblem ? undefined : vin.trim().toUpperCase(),
    status,
    command: command.trim(),
    submitted_by: submittedBy.trim(),
    since: toIso(since),
    until: toIso(until),
    limit: rowsPerPage,
    offset: page * rowsPerPage,
  };
  const list = useQuery({
    queryKey: keys.commands(query),
    queryFn: ({ signal }) => fetchCommands(api, query, signal),
    placeholderData: keepPreviousData,
  });
  const open = params.get("command_id");
  const reset = () => setPage(0);

  return (
    <Stack spacing={2}>
      <Typography variant="h5" component="h1">Command history</Typography>
      <Stack direction="row" spacing={2} flexWrap="wrap" useFlexGap>
        <TextField id="history-vin" label="VIN" size="small" value={vin} error={Boolean(vinProblem)} helperText={vinProblem ?? " "}
          onChange={(e) => { setVin(e.target.value); reset(); }} />
        <TextField id="history-status" select label="Status" size="small" value={status} sx={{ minWidth: 160 }} helperText=" "
          onChange={(e) => { setStatus(e.target.value); reset(); }}>
          <MenuItem value="">any</MenuItem>
          {COMMAND_STATUSES.map((s) => <MenuItem key={s} value={s}>{s}</MenuItem>)}
        </TextField>
        <TextField id="history-command" label="Command" size="small" value={command} helperText=" "
          onChange={(e) => { setCommand(e.target.value); reset(); }} />
        {user?.role === "admin" && (
          <TextField id="history-user" label="Submitted by" size="small" value={submittedBy} helperText=" "
            onChange={(e) => { setSubmittedBy(e.target.value); reset(); }} />
        )}
        <TextField id="history-since" label="Since" type="datetime-local" size="small" value={since} helperText=" "
          onChange={(e) => { setSince(e.target.value); reset(); }} slotProps={{ inputLabel: { shrink: true } }} />
        <TextField id="history-until" label="Until" type="datetime-local" size="small" value={until} helperText=" "
          onChange={(e) => { setUntil(e.target.value); reset(); }} slotProps={{ inputLabel: { shrink: true } }} />
      </Stack>
      <ErrorAlert error={list.error} title="History" />
      <PagedTable
        label="commands"
        headers={["Submitted", "VIN", "Command", "Status", "By", "Error", "Events"]}
        empty="No command matches."
        isEmpty={list.data?.items.length === 0}
        paging={{ count: list.data?.total ?? 0, page, rowsPerPage, setPage, setRowsPerPage }}
      >
        {list.data?.items.map((c) => (
          <TableRow key={c.id} hover>
            <TableCell>{formatTime(c.submitted_at)}</TableCell>
            <TableCell><RouterLink to={`/vehicles/${encodeURIComponent(c.vin)}`}>{c.vin}</RouterLink></TableCell>
            <TableCell><RouterLink to={`/commands/${c.id}`}>{c.command}</RouterLink></TableCell>
            <TableCell><Chip size="small" label={c.status} color={statusColor(c.status)} /></TableCell>
            <TableCell>{c.submitted_by}</TableCell>
            <TableCell>{c.error ?? ""}</TableCell>
            <TableCell>
              <Button size="small" onClick={() => setParams({ command_id: c.id })} aria-label={`events of ${c.command} ${c.id}`}>
                Events
              </Button>
            </TableCell>
          </TableRow>
        ))}
      </PagedTable>
      {open && <EventsDialog id={open} onClose={() => setParams({})} />}
    </Stack>
  );
}
