import {
  Button, Chip, MenuItem, Stack, TableCell, TableRow, TextField, Typography,
} from "@mui/material";
import { keepPreviousData, useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { useState } from "react";
import { adminKeys, fetchUsers, ROLES, unlockUser, updateUser, type User, type UserPatch } from "../../api/admin";
import type { Role } from "../../api/types";
import { ErrorAlert } from "../../components/ErrorAlert";
import { PagedTable } from "../../components/PagedTable";
import { formatTime } from "../../components/format";
import { isForbidden } from "../../components/forbidden";
import { useApi, useSession } from "../../session/SessionContext";
import { AdminNav } from "./AdminNav";
import { NewUserForm } from "./NewUserForm";

/** Operator accounts: list, create, role, enable/disable, unlock. There is no deletion. */
export function UsersPage() {
  const api = useApi();
  const { user: me } = useSession();
  const queryClient = useQueryClient();
  const [page, setPage] = useState(0);
  const [rowsPerPage, setRowsPerPage] = useState(25);
  const query = { limit: rowsPerPage, offset: page * rowsPerPage };
  const list = useQuery({
    queryKey: adminKeys.users(query),
    queryFn: ({ signal }) => fetchUsers(api, query, signal),
    placeholderData: keepPreviousData,
  });
  const [done, setDone] = useState<string | null>(null);
  const change = useMutation({
    mutationFn: async ({ user, patch }: { user: User; patch: UserPatch | "unlock" }) => {
      if (patch === "unlock") {
        await unlockUser(api, user.id);
        return `Unlocked ${user.username}.`;
      }
      const after = await updateUser(api, user.id, patch);
      return `${after.username}: ${after.role}, ${after.enabled ? "enabled" : "disabled"}.`;
    },
    onMutate: () => setDone(null),
    onSuccess: (message) => {
      setDone(message);
      void queryClient.invalidateQueries({ queryKey: ["users"] });
    },
  });

  const heading = <Typography variant="h5" component="h1">Users</Typography>;
  if (isForbidden(list.error)) return <Stack spacing={2}>{heading}<ErrorAlert error={list.error} title="Users" /></Stack>;
  return (
    <Stack spacing={2}>
      <AdminNav />
      {heading}
      <NewUserForm />
      <ErrorAlert error={list.error} title="Users" />
      <ErrorAlert error={change.error} title="The hub refused the change" />
      {done && <Typography role="status">{done}</Typography>}
      <PagedTable
        label="users"
        headers={["Username", "Role", "State", "Created", "Actions"]}
        empty="No users."
        isEmpty={list.data?.items.length === 0}
        paging={{ count: list.data?.total ?? 0, page, rowsPerPage, setPage, setRowsPerPage }}
      >
        {list.data?.items.map((u) => (
          <TableRow key={u.id} hover>
            <TableCell>{u.username}{u.username === me?.username ? " (you)" : ""}</TableCell>
            <TableCell>
              <TextField select size="small" value={u.role} id={`role-${u.id}`}
                label={`Role of ${u.username}`} disabled={change.isPending}
                onChange={(e) => change.mutate({ user: u, patch: { role: e.target.value as Role } })}>
                {ROLES.map((r) => <MenuItem key={r} value={r}>{r}</MenuItem>)}
              </TextField>
            </TableCell>
            <TableCell>
              <Chip size="small" label={u.enabled ? "enabled" : "disabled"} color={u.enabled ? "success" : "default"} />
            </TableCell>
            <TableCell>{formatTime(u.created_at)}</TableCell>
            <TableCell>
              <Stack direction="row" spacing={1}>
                <Button size="small" disabled={change.isPending}
                  aria-label={`${u.enabled ? "Disable" : "Enable"} ${u.username}`}
                  onClick={() => change.mutate({ user: u, patch: { enabled: !u.enabled } })}>
                  {u.enabled ? "Disable" : "Enable"}
                </Button>
                <Button size="small" disabled={change.isPending} aria-label={`Unlock ${u.username}`}
                  onClick={() => change.mutate({ user: u, patch: "unlock" })}>
                  Unlock
                </Button>
              </Stack>
            </TableCell>
          </TableRow>
        ))}
      </PagedTable>
    </Stack>
  );
}
