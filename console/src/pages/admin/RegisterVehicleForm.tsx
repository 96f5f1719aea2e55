import { Button, Paper, Stack, TextField, Typography } from "@mui/material";
import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useState, type FormEvent } from "react";
import { registerVehicle } from "../../api/admin";
import { ErrorAlert } from "../../components/ErrorAlert";
import { fieldErrors } from "../../components/fieldErrors";
import { useApi } from "../../session/SessionContext";

const VIN = /^[A-HJ-NPR-Z0-9]{17}$/;

function parseMetadata(text: string): Record<string, unknown> | string {
  if (!text.trim()) return {};
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value === "object" && value !== null && !Array.isArray(value)) return value as Record<string, unknown>;
    return "metadata must be a JSON object";
  } catch (error) {
    return `metadata is not JSON: ${error instanceof Error ? error.message : String(error)}`;
  }
}

/** Register a vehicle. Its token goes to `onToken` and nowhere else (not the query cache). */
export function RegisterVehicleForm({ onToken }: { onToken: (vin: string, token: string) => void }) {
  const api = useApi();
  const queryClient = useQueryClient();
  const [vin, setVin] = useState("");
  const [make, setMake] = useState("");
  const [model, setModel] = useState("");
  const [year, setYear] = useState("");
  const [metadata, setMetadata] = useState("");
  const [local, setLocal] = useState<Record<string, string>>({});
  const register = useMutation({
    mutationFn: async (body: Parameters<typeof registerVehicle>[1]) => {
      const created = await registerVehicle(api, body);
      onToken(created.vin, created.token);
      return created.vin;
    },
    onSuccess: () => {
      setVin(""); setMake(""); setModel(""); setYear(""); setMetadata("");
      void queryClient.invalidateQueries({ queryKey: ["vehicles"] });
    },
  });
  const problems = { ...fieldErrors(register.error), ...local };

  const submit = (event: FormEvent) => {
    event.preventDefault();
    if (register.isPending) return;
    const wanted = vin.trim().toUpperCase();
    const meta = parseMetadata(metadata);
    const found: Record<string, string> = {};
    if (!VIN.test(wanted)) found.vin = "a VIN has 17 characters: digits and capitals, no I, O or Q";
    if (!/^\d{4}$/.test(year.trim())) found.year = "a year like 2024 (1980-2100)";
    if (typeof meta === "string") found.metadata = meta;
    setLocal(found);
    if (Object.keys(found).length || typeof meta === "string") return;
    register.mutate({ vin: wanted, make: make.trim(), model: model.trim(), year: Number(year), metadata: meta });
  };

  return (
    <Paper sx={{ p: 2 }}>
      <Typography variant="h6" component="h2" gutterBottom>Register a vehicle</Typography>
      <Stack component="form" aria-label="register vehicle" onSubmit={submit} direction="row" spacing={2}
        flexWrap="wrap" useFlexGap alignItems="flex-start" noValidate>
        <TextField id="new-vehicle-vin" label="VIN" size="small" required value={vin}
          onChange={(e) => setVin(e.target.value)} error={Boolean(problems.vin)} helperText={problems.vin ?? "17 characters"} />
        <TextField id="new-vehicle-make" label="Make" size="small" required value={make}
          onChange={(e) => setMake(e.target.value)} error={Boolean(problems.make)} helperText={problems.make ?? " "} />
        <TextField id="new-vehicle-model" label="Model" size="small" required value={model}
          onChange={(e) => setModel(e.target.value)} error={Boolean(problems.model)} helperText={problems.model ?? " "} />
        <TextField id="new-vehicle-year" label="Year" size="small" required value={year} sx={{ width: 110 }}
          slotProps={{ htmlInput: { inputMode: "numeric" } }}
          onChange={(e) => setYear(e.target.value)} error={Boolean(problems.year)} helperText={problems.year ?? " "} />
        <TextField id="new-vehicle-metadata" label="Metadata (JSON object, optional)" size="small" value={metadata}
          multiline minRows={1} sx={{ minWidth: 260 }} placeholder='{"fleet": "north"}'
          onChange={(e) => setMetadata(e.target.value)} error={Boolean(problems.metadata)} helperText={problems.metadata ?? " "} />
        <Button type="submit" variant="contained" disabled={register.isPending}>
          {register.isPending ? "Registering…" : "Register"}
        </Button>
      </Stack>
      <ErrorAlert error={register.error} title="The hub refused the vehicle" />
    </Paper>
  );
}
