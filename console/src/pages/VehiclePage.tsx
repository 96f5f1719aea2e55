import {
  Alert, Chip, Grid2 as Grid, Paper, Stack, Table, TableBody, TableCell, TableHead, TableRow, Typography,
} from "@mui/material";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link as RouterLink, useParams } from "react-router-dom";
import { fetchCatalog, fetchVehicle, keys } from "../api/queries";
import type { Command, VehicleDetail } from "../api/types";
import { ErrorAlert } from "../components/ErrorAlert";
import { formatTime, statusColor } from "../components/format";
import { useApi, useSession } from "../session/SessionContext";
import { vehicleTopic } from "../ws/frames";
import { useTopic } from "../ws/LiveContext";
import { CommandComposer } from "./vehicle/CommandComposer";
import { LiveCommand } from "./vehicle/LiveCommand";

export function VehiclePage() {
  const { vin = "" } = useParams();
  const api = useApi();
  const { user } = useSession();
  const queryClient = useQueryClient();
  const canSubmit = user?.role === "engineer" || user?.role === "admin";
  const [sent, setSent] = useState<Command[]>([]);

  const vehicle = useQuery({
    queryKey: keys.vehicle(vin),
    queryFn: ({ signal }) => fetchVehicle(api, vin, signal),
  });
  const catalog = useQuery({
    queryKey: keys.catalog,
    queryFn: ({ signal }) => fetchCatalog(api, signal),
    staleTime: Infinity,
    enabled: canSubmit,
  });

  useTopic(vin ? vehicleTopic(vin) : null, (frame) => {
    if (frame.type === "vehicle") {
      queryClient.setQueryData<VehicleDetail>(keys.vehicle(vin), (old) =>
        old
          ? {
              ...old,
              connection: {
                ...old.connection,
                status: frame.status,
                since: frame.at,
                reason: frame.reason,
                detail: frame.detail,
                node_id: frame.status === "connected" ? old.connection.node_id : null,
              },
            }
          : old,
      );
    } else if (frame.type === "status") {
      void queryClient.invalidateQueries({ queryKey: keys.vehicle(vin) });
    } else if (frame.type === "error") {
      // unknown_vehicle and the like: the REST answer says it too
    }
  });

  if (vehicle.error) return <ErrorAlert error={vehicle.error} title={`Vehicle ${vin}`} />;
  if (!vehicle.data) return <Typography>Loading {vin}…</Typography>;
  const v = vehicle.data;
  const c = v.connection;

  return (
    <Stack spacing={2}>
      <Stack direction="row" spacing={1} alignItems="center">
        <Typography variant="h5" component="h1">{v.vin}</Typography>
        <Chip label={c.status} color={statusColor(c.status)} aria-live="polite" />
        {!v.enabled && <Chip label="disabled" color="error" />}
      </Stack>
      <Grid container spacing={2}>
        <Grid size={{ xs: 12, md: 5 }}>
          <Paper sx={{ p: 2 }}>
            <Typography variant="h6" component="h2">Identity</Typography>
            <Table size="small" aria-label="identity and connection">
              <TableBody>
                <TableRow><TableCell component="th">Make / model</TableCell><TableCell>{v.make} {v.model} ({v.year})</TableCell></TableRow>
                <TableRow><TableCell component="th">Registered</TableCell><TableCell>{formatTime(v.created_at)}</TableCell></TableRow>
                <TableRow><TableCell component="th">Connection since</TableCell><TableCell>{formatTime(c.since)}</TableCell></TableRow>
                <TableRow><TableCell component="th">Last seen</TableCell><TableCell>{formatTime(c.last_seen_at)}</TableCell></TableRow>
                <TableRow><TableCell component="th">Node</TableCell><TableCell>{c.node_id ?? "—"}</TableCell></TableRow>
                <TableRow><TableCell component="th">Last disconnect</TableCell><TableCell>{c.reason ? `${c.reason}${c.detail ? `: ${c.detail}` : ""}` : "—"}</TableCell></TableRow>
                <TableRow><TableCell component="th">Active commands</TableCell><TableCell>{Object.entries(v.active_commands).map(([k, n]) => `${k} ${n}`).join(", ") || "—"}</TableCell></TableRow>
              </TableBody>
            </Table>
          </Paper>
        </Grid>
        <Grid size={{ xs: 12, md: 7 }}>
          {canSubmit ? (
            <>
              <ErrorAlert error={catalog.error} title="Catalog" />
              {catalog.data && (
                <CommandComposer
                  vin={v.vin}
                  api={api}
                  catalog={catalog.data.items}
                  offline={c.status !== "connected"}
                  onSubmitted={(command) => setSent((old) => [command, ...old.filter((o) => o.id !== command.id)])}
                />
              )}
            </>
          ) : (
            <Alert severity="info">Your role ({user?.role}) may view this vehicle but not send commands.</Alert>
          )}
        </Grid>
      </Grid>
      {sent.map((command) => (
        <LiveCommand key={command.id} command={command} canCancel={canSubmit} />
      ))}
      <Paper sx={{ p: 2 }}>
        <Typography variant="h6" component="h2">Recent commands</Typography>
        <Table size="small" aria-label="recent commands">
          <TableHead>
            <TableRow><TableCell>Command</TableCell><TableCell>Status</TableCell><TableCell>By</TableCell><TableCell>Submitted</TableCell><TableCell>Error</TableCell></TableRow>
          </TableHead>
          <TableBody>
            {v.recent_commands.map((cmd) => (
              <TableRow key={cmd.id}>
                <TableCell><RouterLink to={`/commands/${cmd.id}`}>{cmd.command}</RouterLink></TableCell>
                <TableCell><Chip size="small" label={cmd.status} color={statusColor(cmd.status)} /></TableCell>
                <TableCell>{cmd.submitted_by}</TableCell>
                <TableCell>{formatTime(cmd.submitted_at)}</TableCell>
                <TableCell>{cmd.error ?? ""}</TableCell>
              </TableRow>
            ))}
            {v.recent_commands.length === 0 && <TableRow><TableCell colSpan={5}>None yet.</TableCell></TableRow>}
          </TableBody>
        </Table>
      </Paper>
    </Stack>
  );
}
