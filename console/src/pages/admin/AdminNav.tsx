import { Tab, Tabs } from "@mui/material";
import { Link as RouterLink, useLocation } from "react-router-dom";

const TABS = [
  { to: "/admin/users", label: "Users" },
  { to: "/admin/vehicles", label: "Vehicles" },
];

export function AdminNav() {
  const { pathname } = useLocation();
  const current = TABS.find((t) => pathname.startsWith(t.to))?.to ?? false;
  return (
    <Tabs value={current} aria-label="administration" component="nav">
      {TABS.map((t) => <Tab key={t.to} value={t.to} label={t.label} component={RouterLink} to={t.to} />)}
    </Tabs>
  );
}
