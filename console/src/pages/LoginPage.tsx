import { Alert, Box, Button, Paper, Stack, TextField, Typography } from "@mui/material";
import { useEffect, useState, type FormEvent } from "react";
import { Navigate, useLocation } from "react-router-dom";
import { ApiError, describeError } from "../api/errors";
import { useSession } from "../session/SessionContext";

/** The message of a failed login: the hub's, with the wait of a 429 counted down. */
function loginMessage(error: unknown, waitLeft: number | null): string {
  if (error instanceof ApiError && error.status === 429) {
    const wait = waitLeft !== null && waitLeft > 0 ? ` Try again in ${waitLeft} s.` : "";
    return `${error.message}.${wait}`;
  }
  return describeError(error);
}

export function LoginPage() {
  const { user, login, notice } = useSession();
  const location = useLocation();
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);
  const [lockedUntil, setLockedUntil] = useState<number | null>(null);
  const [now, setNow] = useState(() => Date.now());

  useEffect(() => {
    if (lockedUntil === null) return;
    const timer = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(timer);
  }, [lockedUntil]);

  if (user !== null) {
    const from = (location.state as { from?: string } | null)?.from;
    return <Navigate to={from && from !== "/login" ? from : "/fleet"} replace />;
  }

  const waitLeft = lockedUntil === null ? null : Math.max(0, Math.ceil((lockedUntil - now) / 1000));
  const locked = waitLeft !== null && waitLeft > 0;

  async function submit(event: FormEvent) {
    event.preventDefault();
    if (busy || locked) return;
    setBusy(true);
    setError(null);
    try {
      await login(username, password);
    } catch (caught) {
      setError(caught);
      if (caught instanceof ApiError && caught.retryAfterS !== null && caught.status === 429) {
        setLockedUntil(Date.now() + caught.retryAfterS * 1000);
        setNow(Date.now());
      } else {
        setLockedUntil(null);
      }
    } finally {
      setBusy(false);
    }
  }

  return (
    <Box component="main" sx={{ display: "flex", justifyContent: "center", mt: 10 }}>
      <Paper sx={{ p: 4, width: 380 }} component="form" onSubmit={submit} noValidate aria-labelledby="login-title">
        <Stack spacing={2}>
          <Typography id="login-title" variant="h5" component="h1">sovd-hub console</Typography>
          {notice && !error && <Alert severity="info">{notice}</Alert>}
          {error !== null && (
            <Alert severity="error" role="alert">{loginMessage(error, waitLeft)}</Alert>
          )}
          <TextField
            id="username" label="Username" autoComplete="username" required autoFocus
            value={username} onChange={(e) => setUsername(e.target.value)}
          />
          <TextField
            id="password" label="Password" type="password" autoComplete="current-password" required
            value={password} onChange={(e) => setPassword(e.target.value)}
          />
          <Button type="submit" variant="contained" disabled={busy || locked || !username || !password}>
            {busy ? "Logging in…" : locked ? `Wait ${waitLeft} s` : "Log in"}
          </Button>
        </Stack>
      </Paper>
    </Box>
  );
}
