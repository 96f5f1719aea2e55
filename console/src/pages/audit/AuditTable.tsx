import { TableCell, TableRow, Typography } from "@mui/material";
import type { AuditEvent } from "../../api/audit";
import { formatTime } from "../../components/format";
import { PagedTable } from "../../components/PagedTable";

/** Long names (`vehicle:<VIN>`) wrap, so that every column fits a 1280 px page. */
const WRAPPED = { maxWidth: 160, wordBreak: "break-all" } as const;

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
          <TableCell sx={WRAPPED}>{e.actor}</TableCell>
          <TableCell>{e.action}</TableCell>
          <TableCell sx={WRAPPED}>{e.target}</TableCell>
          <TableCell>{e.vin ?? ""}</TableCell>
          <TableCell sx={{ minWidth: 200, maxWidth: 320 }}>
            <Typography
              component="code"
              variant="caption"
              sx={{ fontFamily: "monospace", wordBreak: "break-all", whiteSpace: "pre-wrap" }}
            >
              {JSON.stringify(e.details)}
            </Typography>
          </TableCell>
          <TableCell>{e.chain} #{e.seq}</TableCell>
        </TableRow>
      ))}
    </PagedTable>
  );
}
