import { Alert, Button, List, ListItem, Stack, Typography } from "@mui/material";
import { useMutation } from "@tanstack/react-query";
import { fetchExport } from "../../api/audit";
import { parseNdjson, verifyChains } from "../../audit/chain";
import { ErrorAlert } from "../../components/ErrorAlert";
import { useApi } from "../../session/SessionContext";

/** Checks every hash chain over an unfiltered NDJSON export (the hub has no verify route). */
export function ChainCheck() {
  const api = useApi();
  const check = useMutation({
    mutationFn: async () => {
      const { blob } = await fetchExport(api, {}, "ndjson");
      return verifyChains(parseNdjson(await blob.text()));
    },
  });
  const results = check.data;
  const broken = results?.filter((r) => r.broken !== null) ?? [];
  return (
    <Stack spacing={1} component="section" aria-label="chain verification">
      <Stack direction="row" spacing={1} alignItems="center">
        <Button variant="outlined" disabled={check.isPending} onClick={() => check.mutate()}>
          {check.isPending ? "Verifying…" : "Verify chains"}
        </Button>
        <Typography variant="body2" color="text.secondary">
          Downloads the whole trail (audited as audit.exported) and checks its hashes in this browser.
          Retention anchors need the signing key: run sovd-hub audit verify for the full check.
        </Typography>
      </Stack>
      <ErrorAlert error={check.error} title="Verification" />
      {results && (
        <Alert severity={broken.length ? "error" : "success"} role="status">
          {results.length === 0
            ? "The trail is empty: nothing to verify."
            : broken.length
              ? `Broken: ${broken.length} of ${results.length} chain(s)`
              : `Verified: ${results.length} chain(s) intact`}
          <List dense disablePadding>
            {results.map((r) => (
              <ListItem key={r.chain} disableGutters>
                {r.broken
                  ? `chain ${r.chain}: BROKEN at seq ${r.broken.seq} (id ${r.broken.id}): ${r.broken.message}`
                  : `chain ${r.chain}: verified, seq ${r.firstSeq}–${r.lastSeq} (${r.rows} rows)`}
              </ListItem>
            ))}
          </List>
        </Alert>
      )}
    </Stack>
  );
}
