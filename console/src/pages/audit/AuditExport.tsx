import { Button, Stack, Typography } from "@mui/material";
import { useMutation } from "@tanstack/react-query";
import { fetchExport, type AuditFilters, type ExportFormat } from "../../api/audit";
import { ErrorAlert } from "../../components/ErrorAlert";
import { saveBlob } from "../../components/download";
import { useApi } from "../../session/SessionContext";

/** NDJSON and CSV exports of the filtered trail, fetched with the bearer token and saved. */
export function AuditExport({ filters }: { filters: AuditFilters }) {
  const api = useApi();
  const download = useMutation({
    mutationFn: async (format: ExportFormat) => {
      const { blob, fileName } = await fetchExport(api, filters, format);
      saveBlob(blob, fileName);
      return fileName;
    },
  });
  return (
    <Stack spacing={1}>
      <Stack direction="row" spacing={1} alignItems="center">
        <Typography component="span">Export the matching events:</Typography>
        <Button variant="outlined" disabled={download.isPending} onClick={() => download.mutate("ndjson")}>
          Export NDJSON
        </Button>
        <Button variant="outlined" disabled={download.isPending} onClick={() => download.mutate("csv")}>
          Export CSV
        </Button>
        <Typography component="span" role="status" variant="body2">
          {download.isPending ? "Exporting…" : download.data ? `Saved ${download.data}` : ""}
        </Typography>
      </Stack>
      <ErrorAlert error={download.error} title="Export" />
    </Stack>
  );
}
