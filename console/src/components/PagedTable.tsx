import {
  Paper, Table, TableBody, TableCell, TableContainer, TableHead, TablePagination, TableRow,
} from "@mui/material";
import type { ReactNode } from "react";

/** The page state of a paged table, and how to change it. */
export interface Paging {
  count: number;
  page: number;
  rowsPerPage: number;
  setPage: (page: number) => void;
  setRowsPerPage: (rows: number) => void;
}

export interface PagedTableProps {
  label: string;
  headers: string[];
  /** The body rows. */
  children: ReactNode;
  /** The text of the one row shown when `isEmpty`. */
  empty: string;
  isEmpty: boolean;
  /** Without it, no pagination footer. */
  paging?: Paging;
}

/** A small table in a Paper: header cells, the rows, an "empty" row, and pagination. */
export function PagedTable({ label, headers, children, empty, isEmpty, paging }: PagedTableProps) {
  return (
    <Paper>
      <TableContainer>
        <Table size="small" aria-label={label}>
          <TableHead>
            <TableRow>
              {headers.map((h) => <TableCell key={h}>{h}</TableCell>)}
            </TableRow>
          </TableHead>
          <TableBody>
            {children}
            {isEmpty && <TableRow><TableCell colSpan={headers.length}>{empty}</TableCell></TableRow>}
          </TableBody>
        </Table>
      </TableContainer>
      {paging && (
        <TablePagination
          component="div" count={paging.count} page={paging.page} rowsPerPage={paging.rowsPerPage}
          rowsPerPageOptions={[10, 25, 50, 100]}
          onPageChange={(_, next) => paging.setPage(next)}
          onRowsPerPageChange={(e) => { paging.setRowsPerPage(Number(e.target.value)); paging.setPage(0); }}
        />
      )}
    </Paper>
  );
}
