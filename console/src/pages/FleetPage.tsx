import {
  Box, Chip, FormControl, InputLabel, MenuItem, Paper, Select, Stack, Table, TableBody, TableCell,
  TableContainer, TableHead, TablePagination, TableRow, TextField, Typography,
} from "@mui/material";
import { keepPreviousData, useQuery, useQueryClient } from "@tanstack/react-query";
import { useEffect, useRef, useState } from "react";
import { Link as RouterLink } from "react-router-dom";
import { fetchVehicles, keys } from "../api/queries";
import type { Page, Vehicle } from "../api/types";
import { ErrorAlert } from "../components/ErrorAlert";
import { formatTime, statusColor } from "../components/format";
import { useApi } from "../session/SessionContext";
import { FLEET_TOPIC } from "../ws/frames";
import { useTopic } from "../ws/LiveContext";

type StatusFilter = "" | "connected" | "disconnected";

function useDebounced<T>(value: T, ms: number): T {
  const [current, setCurrent] = useState(value);
  useEffect(() => {
    const timer = setTimeout(() => setCurrent(value), ms);
    return () => clearTimeout(timer);
  }, [value, ms]);
  return current;
}

export function FleetPage() {
  const api = useApi();
  const queryClient = useQueryClient();
  const [search, setSearch] = useState("");
  const [status, setStatus] = useState<StatusFilter>("");
  const [page, setPage] = useState(0);
  const [rowsPerPage, setRowsPerPage] = useState(25);
  const searchNow = useDebounced(search.trim(), 300);
  const query = { search: searchNow, status, limit: rowsPerPage, offset: page * rowsPerPage };

  const list = useQuery({
    queryKey: keys.vehicles(query),
    queryFn: ({ signal }) => fetchVehicles(api, query, signal),
    placeholderData: keepPreviousData,
  });
  const counts = useQuery({
    queryKey: keys.vehicleCounts,
    queryFn: async ({ signal }) => {
      const [connected, disconnected] = await Promise.all([
        fetchVehicles(api, { status: "connected", limit: 1 }, signal),
        fetchVehicles(api, { status: "disconnected", limit: 1 }, signal),
      ]);
      return { connected: connected.total, disconnected: disconnected.total };
    },
  });

  // Live: patch the vehicles shown; recount (and re-filter) once a burst of changes settles.
  const settle = useRef<ReturnType<typeof setTimeout> | null>(null);
  useEffect(() => () => { if (settle.current) clearTimeout(settle.current); }, []);
  useTopic(FLEET_TOPIC, (frame) => {
    if (frame.type !== "vehicle") return;
    queryClient.setQueriesData<Page<Vehicle>>({ queryKey: ["vehicles"] }, (old) => {
      if (!old || !Array.isArray(old.items)) return old;
      return {
        ...old,
        items: old.items.map((v) =>
          v.vin !== frame.vin
            ? v
            : {
                ...v,
                connection: {
                  ...v.connection,
                  status: frame.status,
                  since: frame.at,
                  reason: frame.reason,
                  detail: frame.detail,
                  node_id: frame.status === "connected" ? v.connection.node_id : null,
                },
              },
        ),
      };
    });
    if (settle.current) clearTimeout(settle.current);
    settle.current = setTimeout(() => {
      void queryClient.invalidateQueries({ queryKey: keys.vehicleCounts });
      if (status !== "") void queryClient.invalidateQueries({ queryKey: ["vehicles"] });
    }, 500);
  });

  return (
    <Stack spacing={2}>
      <Typography variant="h5" component="h1">Fleet</Typography>
      <Stack direction="row" spacing={1} aria-live="polite">
        <Chip color="success" label={`connected: ${counts.data?.connected ?? "…"}`} />
        <Chip label={`offline: ${counts.data?.disconnected ?? "…"}`} />
        {list.data && <Chip variant="outlined" label={`matching: ${list.data.total}`} />}
      </Stack>
      <ErrorAlert error={counts.error} title="Counts" />
      <Stack direction="row" spacing={2}>
        <TextField
          id="fleet-search" label="Search VIN, make or model" size="small" value={search}
          onChange={(e) => { setSearch(e.target.value); setPage(0); }} sx={{ minWidth: 300 }}
        />
        <FormControl size="small" sx={{ minWidth: 180 }}>
          <InputLabel id="fleet-status-label">Status</InputLabel>
          <Select
            labelId="fleet-status-label" label="Status" value={status}
            onChange={(e) => { setStatus(e.target.value as StatusFilter); setPage(0); }}
          >
            <MenuItem value="">any</MenuItem>
            <MenuItem value="connected">connected</MenuItem>
            <MenuItem value="disconnected">offline</MenuItem>
          </Select>
        </FormControl>
      </Stack>
      <ErrorAlert error={list.error} title="Vehicles" />
      <Paper>
        <TableContainer>
          <Table size="small" aria-label="vehicles">
            <TableHead>
              <TableRow>
                <TableCell>VIN</TableCell>
                <TableCell>Make / model</TableCell>
                <TableCell>Year</TableCell>
                <TableCell>Connection</TableCell>
                <TableCell>Since</TableCell>
                <TableCell>Node / last reason</TableCell>
              </TableRow>
            </TableHead>
            <TableBody>
              {list.data?.items.map((v) => (
                <TableRow key={v.vin} hover>
                  <TableCell>
                    <RouterLink to={`/vehicles/${encodeURIComponent(v.vin)}`}>{v.vin}</RouterLink>
                    {!v.enabled && <Chip size="small" color="error" label="disabled" sx={{ ml: 1 }} />}
                  </TableCell>
                  <TableCell>{v.make} {v.model}</TableCell>
                  <TableCell>{v.year}</TableCell>
                  <TableCell>
                    <Chip size="small" color={statusColor(v.connection.status)} label={v.connection.status} />
                  </TableCell>
                  <TableCell>{formatTime(v.connection.since)}</TableCell>
                  <TableCell>
                    {v.connection.status === "connected" ? v.connection.node_id ?? "—" : v.connection.reason ?? "—"}
                  </TableCell>
                </TableRow>
              ))}
              {list.data && list.data.items.length === 0 && (
                <TableRow><TableCell colSpan={6}>No vehicle matches.</TableCell></TableRow>
              )}
              {list.isPending && (
                <TableRow><TableCell colSpan={6}>Loading…</TableCell></TableRow>
              )}
            </TableBody>
          </Table>
        </TableContainer>
        <Box>
          <TablePagination
            component="div"
            count={list.data?.total ?? 0}
            page={page}
            rowsPerPage={rowsPerPage}
            rowsPerPageOptions={[10, 25, 50, 100]}
            onPageChange={(_, next) => setPage(next)}
            onRowsPerPageChange={(e) => { setRowsPerPage(Number(e.target.value)); setPage(0); }}
          />
        </Box>
      </Paper>
    </Stack>
  );
}
