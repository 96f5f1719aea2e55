import { Button, MenuItem, Paper, Stack, TextField, Typography } from "@mui/material";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { createUser, ROLES } from "../../api/admin";
import type { Role } from "../../api/types";
import { ErrorAlert } from "../../components/ErrorAlert";
import { fieldErrors } from "../../components/fieldErrors";
import { useApi } from "../../session/SessionContext";

/** Create an operator account; the hub's password rules answer in its 422 (`weak_password`). */
export function NewUserForm() {
  const api = useApi();
  const queryClient = useQueryClient();
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [role, setRole] = useState<Role>("viewer");
  const create = useMutation({
    mutationFn: () => createUser(api, { username: username.trim(), password, role }),
    onSuccess: () => {
      setUsername("");
      setPassword("");
      void queryClient.invalidateQueries({ queryKey: ["users"] });
    },
  });
  const problems = fieldErrors(create.error);
  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (!create.isPending) create.mutate();
  };
  return (
    <Paper sx={{ p: 2 }}>
      <Typography variant="h6" component="h2" gutterBottom>New user</Typography>
      <Stack component="form" aria-label="new user" onSubmit={submit} direction="row" spacing={2}
        flexWrap="wrap" useFlexGap alignItems="flex-start">
        <TextField id="new-user-username" label="Username" size="small" required value={username}
          autoComplete="off" onChange={(e) => setUsername(e.target.value)}
          error={Boolean(problems.username)} helperText={problems.username ?? "letters, digits and . _ @ -"} />
        <TextField id="new-user-password" label="Password" type="password" size="small" required value={password}
          autoComplete="new-password" onChange={(e) => setPassword(e.target.value)}
          error={Boolean(problems.password)} helperText={problems.password ?? "12 or more characters, not a common one"} />
        <TextField id="new-user-role" select label="Role" size="small" value={role} sx={{ minWidth: 140 }}
          onChange={(e) => setRole(e.target.value as Role)} helperText={problems.role ?? " "}>
          {ROLES.map((r) => <MenuItem key={r} value={r}>{r}</MenuItem>)}
        </TextField>
        <Button type="submit" variant="contained" disabled={create.isPending}>
          {create.isPending ? "Creating…" : "Create user"}
        </Button>
      </Stack>
      <ErrorAlert error={create.error} title="The hub refused the user" />
      {create.isSuccess && (
        <Typography role="status">Created user {create.data.username} ({create.data.role}).</Typography>
      )}
    </Paper>
  );
}
