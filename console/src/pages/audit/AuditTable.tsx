import { TableCell, TableRow, Typography } from "@mui/material";
import type { AuditEvent } from "../../api/audit";
import { formatTime } from "../../components/format";
import { PagedTable } from "../../components/PagedTable";

export function AuditTable({ items }: { items: AuditEvent[] }) {
  return (
    <PagedTable
      label="audit events"
      headers={["Id", "At", "Actor", "Action", "Target", "VIN", "Details", "Chain / seq"]}
      empty="No audit event matches."
      isEmpty={items.length === 0}
    >
      {items.map((e) => (
        <TableRow key={e.id} hover>
          <TableCell>{e.id}</TableCell>
          <TableCell>{formatTime(e.at)}</TableCell>
          <TableCell>{e.actor}</TableCell>
          <TableCell>{e.action}</TableCell>
          <TableCell>{e.target}</TableCell>
          <TableCell>{e.vin ?? ""}</TableCell>
          <TableCell sx={{ minWidth: 280, maxWidth: 520 }}>
            <Typography component="code" variant="body2" sx={{ fontFamily: "monospace", wordBreak: "break-all" }}>
              {JSON.stringify(e.details)}
            </Typography>
          </TableCell>
          <TableCell>{e.chain} #{e.seq}</TableCell>
        </TableRow>
      ))}
    </PagedTable>
  );
}
