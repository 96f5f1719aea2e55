import {
  Button, Chip, Dialog, DialogActions, DialogContent, DialogContentText, DialogTitle, Stack,
  TableCell, TableRow, TextField, Typography,
} from "@mui/material";
import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { Link as RouterLink } from "react-router-dom";
import { adminKeys, fetchUsers, rotateVehicleToken, setVehicleEnabled } from "../../api/admin";
import { fetchVehicles, keys } from "../../api/queries";
import type { Vehicle } from "../../api/types";
import { ErrorAlert } from "../../components/ErrorAlert";
import { PagedTable } from "../../components/PagedTable";
import { isForbidden } from "../../components/forbidden";
import { statusColor } from "../../components/format";
import { useApi } from "../../session/SessionContext";
import { AdminNav } from "./AdminNav";
import { RegisterVehicleForm } from "./RegisterVehicleForm";
import { TokenDialog } from "./TokenDialog";

interface ShownToken { vin: string; token: string; title: string }

/** The vehicle registry for admins: register, rotate the token, disable/enable. */
export function VehiclesAdminPage() {
  const api = useApi();
  const queryClient = useQueryClient();
  const [search, setSearch] = useState("");
  const [page, setPage] = useState(0);
  const [rowsPerPage, setRowsPerPage] = useState(25);
  const query = { search: search.trim(), limit: rowsPerPage, offset: page * rowsPerPage };
  const list = useQuery({
    queryKey: keys.vehicles(query),
    queryFn: ({ signal }) => fetchVehicles(api, query, signal),
    placeholderData: keepPreviousData,
  });
  // Listing vehicles is open to every role: ask an admin-only route whether this page is ours.
  const probe = { limit: 1, offset: 0 };
  const access = useQuery({
    queryKey: adminKeys.users(probe),
    queryFn: ({ signal }) => fetchUsers(api, probe, signal),
  });
  // The one place a token lives, until its dialog is closed.
  const [shown, setShown] = useState<ShownToken | null>(null);
  const [rotating, setRotating] = useState<string | null>(null);
  const rotate = useMutation({
    mutationFn: async (vin: string) => {
      const answer = await rotateVehicleToken(api, vin);
      setShown({ vin: answer.vin, token: answer.token, title: `New token of ${answer.vin}` });
      return answer.vin;
    },
    onSettled: () => setRotating(null),
  });
  const toggle = useMutation({
    mutationFn: (v: Vehicle) => setVehicleEnabled(api, v.vin, !v.enabled),
    onSuccess: () => void queryClient.invalidateQueries({ queryKey: ["vehicles"] }),
  });

  const heading = <Typography variant="h5" component="h1">Vehicles</Typography>;
  if (isForbidden(access.error)) return <Stack spacing={2}>{heading}<ErrorAlert error={access.error} title="Vehicle administration" /></Stack>;
  return (
    <Stack spacing={2}>
      <AdminNav />
      {heading}
      <RegisterVehicleForm onToken={(vin, token) => setShown({ vin, token, title: `Token of ${vin}` })} />
      <TextField id="admin-vehicle-search" label="Search VIN, make or model" size="small" value={search}
        sx={{ maxWidth: 320 }} onChange={(e) => { setSearch(e.target.value); setPage(0); }} />
      <ErrorAlert error={list.error} title="Vehicles" />
      <ErrorAlert error={rotate.error} title="Token rotation" />
      <ErrorAlert error={toggle.error} title="The hub refused the change" />
      <PagedTable
        label="registered vehicles"
        headers={["VIN", "Make", "Model", "Year", "Link", "State", "Actions"]}
        empty="No vehicle matches."
        isEmpty={list.data?.items.length === 0}
        paging={{ count: list.data?.total ?? 0, page, rowsPerPage, setPage, setRowsPerPage }}
      >
        {list.data?.items.map((v) => (
          <TableRow key={v.vin} hover>
            <TableCell><RouterLink to={`/vehicles/${encodeURIComponent(v.vin)}`}>{v.vin}</RouterLink></TableCell>
            <TableCell>{v.make}</TableCell>
            <TableCell>{v.model}</TableCell>
            <TableCell>{v.year}</TableCell>
            <TableCell><Chip size="small" label={v.connection.status} color={statusColor(v.connection.status)} /></TableCell>
            <TableCell><Chip size="small" label={v.enabled ? "enabled" : "disabled"} color={v.enabled ? "success" : "default"} /></TableCell>
            <TableCell>
              <Stack direction="row" spacing={1}>
                <Button size="small" aria-label={`Rotate the token of ${v.vin}`} onClick={() => setRotating(v.vin)}>
                  Rotate token
                </Button>
                <Button size="small" disabled={toggle.isPending} aria-label={`${v.enabled ? "Disable" : "Enable"} ${v.vin}`}
                  onClick={() => toggle.mutate(v)}>
                  {v.enabled ? "Disable" : "Enable"}
                </Button>
              </Stack>
            </TableCell>
          </TableRow>
        ))}
      </PagedTable>
      {rotating && (
        <Dialog open onClose={() => setRotating(null)} aria-labelledby="rotate-title">
          <DialogTitle id="rotate-title">Rotate the token of {rotating}?</DialogTitle>
          <DialogContent>
            <DialogContentText>
              The old token stops working at once and a live link made with it ends. The vehicle
              needs the new token to connect again.
            </DialogContentText>
          </DialogContent>
          <DialogActions>
            <Button onClick={() => setRotating(null)}>Cancel</Button>
            <Button variant="contained" color="warning" disabled={rotate.isPending} onClick={() => rotate.mutate(rotating)}>
              {rotate.isPending ? "Rotating…" : "Rotate"}
            </Button>
          </DialogActions>
        </Dialog>
      )}
      {shown && <TokenDialog vin={shown.vin} token={shown.token} title={shown.title} onClose={() => setShown(null)} />}
    </Stack>
  );
}
