import { Paper, Table, TableBody, TableCell, TableContainer, TableHead, TableRow, Typography } from "@mui/material";
import type { AuditEvent } from "../../api/audit";
import { formatTime } from "../../components/format";

export function AuditTable({ items }: { items: AuditEvent[] }) {
  return (
    <Paper>
      <TableContainer>
        <Table size="small" aria-label="audit events">
          <TableHead>
            <TableRow>
              <TableCell>Id</TableCell><TableCell>At</TableCell><TableCell>Actor</TableCell>
              <TableCell>Action</TableCell><TableCell>Target</TableCell><TableCell>VIN</TableCell>
              <TableCell>Details</TableCell><TableCell>Chain / seq</TableCell>
            </TableRow>
          </TableHead>
          <TableBody>
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
            {items.length === 0 && <TableRow><TableCell colSpan={8}>No audit event matches.</TableCell></TableRow>}
          </TableBody>
        </Table>
      </TableContainer>
    </Paper>
  );
}
