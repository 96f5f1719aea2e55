import { Navigate, Route, Routes, useLocation } from "react-router-dom";
import type { ReactNode } from "react";
import { Layout } from "./components/Layout";
import { CommandPage } from "./pages/CommandPage";
import { FleetPage } from "./pages/FleetPage";
import { HistoryPage } from "./pages/HistoryPage";
import { LoginPage } from "./pages/LoginPage";
import { VehiclePage } from "./pages/VehiclePage";
import { UsersPage } from "./pages/admin/UsersPage";
import { VehiclesAdminPage } from "./pages/admin/VehiclesAdminPage";
import { AuditPage } from "./pages/audit/AuditPage";
import { useSession } from "./session/SessionContext";

function RequireSession({ children }: { children: ReactNode }) {
  const { user } = useSession();
  const location = useLocation();
  if (user === null) return <Navigate to="/login" replace state={{ from: location.pathname + location.search }} />;
  return <Layout>{children}</Layout>;
}

export function App() {
  return (
    <Routes>
      <Route path="/login" element={<LoginPage />} />
      <Route path="/fleet" element={<RequireSession><FleetPage /></RequireSession>} />
      <Route path="/vehicles/:vin" element={<RequireSession><VehiclePage /></RequireSession>} />
      <Route path="/commands/:id" element={<RequireSession><CommandPage /></RequireSession>} />
      <Route path="/history" element={<RequireSession><HistoryPage /></RequireSession>} />
      {/* Admin pages are routed for every role: the API's 403 tells others why they see nothing. */}
      <Route path="/audit" element={<RequireSession><AuditPage /></RequireSession>} />
      <Route path="/admin/users" element={<RequireSession><UsersPage /></RequireSession>} />
      <Route path="/admin/vehicles" element={<RequireSession><VehiclesAdminPage /></RequireSession>} />
      <Route path="/admin/*" element={<Navigate to="/admin/users" replace />} />
      <Route path="*" element={<Navigate to="/fleet" replace />} />
    </Routes>
  );
}
