import { AppBar, Box, Button, Chip, Container, Toolbar, Tooltip, Typography } from "@mui/material";
import type { ReactNode } from "react";
import { NavLink } from "react-router-dom";
import { useSession } from "../session/SessionContext";
import { useLiveStatus } from "../ws/LiveContext";

const LIVE_LABEL = { open: "live", connecting: "connecting", reconnecting: "reconnecting", closed: "offline" };
const LIVE_COLOR = { open: "success", connecting: "default", reconnecting: "warning", closed: "default" } as const;

export function Layout({ children }: { children: ReactNode }) {
  const { user, logout } = useSession();
  const live = useLiveStatus();
  return (
    <>
      <AppBar position="static" component="header">
        <Toolbar sx={{ gap: 2 }}>
          <Typography variant="h6" component="span">sovd-hub</Typography>
          <Box component="nav" aria-label="main" sx={{ display: "flex", gap: 1, flexGrow: 1 }}>
            <Button color="inherit" component={NavLink} to="/fleet">Fleet</Button>
            <Button color="inherit" component={NavLink} to="/history">History</Button>
            {user?.role === "admin" && (
              <>
                <Button color="inherit" component={NavLink} to="/audit">Audit</Button>
                <Button color="inherit" component={NavLink} to="/admin">Admin</Button>
              </>
            )}
          </Box>
          <Tooltip title={live.detail ?? "live updates over the WebSocket"}>
            <Chip size="small" label={LIVE_LABEL[live.state]} color={LIVE_COLOR[live.state]} />
          </Tooltip>
          <Typography component="span">{user?.username} ({user?.role})</Typography>
          <Button color="inherit" onClick={() => void logout()}>Log out</Button>
        </Toolbar>
      </AppBar>
      <Container component="main" maxWidth="xl" sx={{ py: 3 }}>
        {children}
      </Container>
    </>
  );
}
