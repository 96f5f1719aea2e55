/** `/commands/:id`: one command, its stored events replayed and then followed live. */
import { Stack, Typography } from "@mui/material";
import { useQuery } from "@tanstack/react-query";
import { Link as RouterLink, useParams } from "react-router-dom";
import type { Command } from "../api/types";
import { ErrorAlert } from "../components/ErrorAlert";
import { formatTime } from "../components/format";
import { useApi, useSession } from "../session/SessionContext";
import { LiveCommand } from "./vehicle/LiveCommand";

export function CommandPage() {
  const { id = "" } = useParams();
  const api = useApi();
  const { user } = useSession();
  const command = useQuery({
    queryKey: ["command", id],
    queryFn: ({ signal }) => api.get<Command>(`/api/v1/commands/${encodeURIComponent(id)}`, undefined, signal),
  });
  if (command.error) return <ErrorAlert error={command.error} title={`Command ${id}`} />;
  if (!command.data) return <Typography>Loading {id}…</Typography>;
  const c = command.data;
  return (
    <Stack spacing={2}>
      <Typography variant="h5" component="h1">
        Command {c.command} on <RouterLink to={`/vehicles/${encodeURIComponent(c.vin)}`}>{c.vin}</RouterLink>
      </Typography>
      <Typography variant="body2">
        by {c.submitted_by} at {formatTime(c.submitted_at)} · params {JSON.stringify(c.params)} · timeout {c.timeout_s} s
        {c.error ? ` · error: ${c.error}` : ""}
      </Typography>
      <LiveCommand command={c} canCancel={user?.role === "engineer" || user?.role === "admin"} />
    </Stack>
  );
}
