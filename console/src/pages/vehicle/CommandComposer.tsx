/** Compose a catalog command for one vehicle: a form from its params JSON Schema. */
import { Alert, Box, Button, MenuItem, Paper, Stack, TextField, Typography } from "@mui/material";
import { useMemo, useRef, useState, type FormEvent } from "react";
import { ApiError, describeError } from "../../api/errors";
import type { ApiClient } from "../../api/client";
import type { CatalogCommand, Command, SubmitCommand } from "../../api/types";
import { newIdempotencyKey } from "../../forms/idempotency";
import {
  fieldsOf,
  initialValues,
  mapServerDetails,
  toParams,
  validateAll,
  validateField,
  type FieldErrors,
  type FormValues,
} from "../../forms/jsonSchema";
import { SchemaForm } from "../../forms/SchemaForm";

const BODY_FIELDS = ["timeout_s", "ttl_s"];

function positiveOrEmpty(label: string, text: string): string | null {
  if (text.trim() === "") return null;
  const value = Number(text);
  return Number.isFinite(value) && value > 0 ? null : `${label} must be a number of seconds above 0`;
}

function without(errors: FieldErrors, field: string): FieldErrors {
  const rest = { ...errors };
  delete rest[field];
  return rest;
}

interface SecondsFieldProps {
  id: string;
  /** The request body field: also the start of the label. */
  field: string;
  value: string;
  onChange: (text: string) => void;
  error: string | undefined;
  hint: string;
  onClearError: (field: string) => void;
  disabled: boolean;
}

/** An optional number of seconds of the request body (timeout_s, ttl_s). */
function SecondsField({ id, field, value, onChange, error, hint, onClearError, disabled }: SecondsFieldProps) {
  return (
    <TextField
      id={id}
      label={`${field} (optional)`}
      size="small"
      value={value}
      onChange={(e) => {
        onChange(e.target.value);
        onClearError(field);
      }}
      error={Boolean(error)}
      helperText={error ?? hint}
      slotProps={{ htmlInput: { inputMode: "decimal" } }}
      disabled={disabled}
    />
  );
}

export interface CommandComposerProps {
  vin: string;
  catalog: CatalogCommand[];
  api: ApiClient;
  offline: boolean;
  onSubmitted: (command: Command) => void;
}

export function CommandComposer({ vin, catalog, api, offline, onSubmitted }: CommandComposerProps) {
  const [name, setName] = useState(catalog[0]?.name ?? "");
  const spec = catalog.find((c) => c.name === name) ?? null;
  const fields = useMemo(() => (spec ? fieldsOf(spec.params) : []), [spec]);
  const [values, setValues] = useState<FormValues>(() =>
    initialValues(catalog[0] ? fieldsOf(catalog[0].params) : [], catalog[0]?.examples[0]),
  );
  const [errors, setErrors] = useState<FieldErrors>({});
  const [timeout, setTimeoutText] = useState("");
  const [ttl, setTtl] = useState("");
  const [bodyErrors, setBodyErrors] = useState<FieldErrors>({});
  const clearBodyError = (field: string) => setBodyErrors((old) => without(old, field));
  const [formError, setFormError] = useState<string | null>(null);
  const [sending, setSending] = useState(false);
  // One key per submission attempt: kept while a failed attempt is retried unchanged.
  const attempt = useRef<{ key: string; body: string } | null>(null);
  const inFlight = useRef(false);

  function choose(next: string) {
    const nextSpec = catalog.find((c) => c.name === next);
    setName(next);
    setValues(initialValues(nextSpec ? fieldsOf(nextSpec.params) : [], nextSpec?.examples[0]));
    setErrors({});
    setFormError(null);
  }

  function change(field: string, value: string | boolean) {
    setValues((old) => ({ ...old, [field]: value }));
    setErrors((old) => without(old, field));
  }

  function blur(field: string) {
    const fieldSpec = fields.find((f) => f.name === field);
    if (!fieldSpec) return;
    const problem = validateField(fieldSpec, values[field]);
    setErrors((old) => (problem ? { ...old, [field]: problem } : without(old, field)));
  }

  async function submit(event: FormEvent) {
    event.preventDefault();
    if (inFlight.current || spec === null) return;
    const problems = validateAll(fields, values);
    const body: FieldErrors = {};
    const timeoutProblem = positiveOrEmpty("timeout_s", timeout);
    const ttlProblem = positiveOrEmpty("ttl_s", ttl);
    if (timeoutProblem) body.timeout_s = timeoutProblem;
    if (ttlProblem) body.ttl_s = ttlProblem;
    setErrors(problems);
    setBodyErrors(body);
    if (Object.keys(problems).length > 0 || Object.keys(body).length > 0) {
      setFormError("Fix the marked fields first: nothing was sent.");
      return;
    }
    const request: SubmitCommand = { vin, command: spec.name, params: toParams(fields, values) };
    if (timeout.trim()) request.timeout_s = Number(timeout);
    if (ttl.trim()) request.ttl_s = Number(ttl);
    const text = JSON.stringify(request);
    if (attempt.current === null || attempt.current.body !== text) {
      attempt.current = { key: newIdempotencyKey(), body: text };
    }
    inFlight.current = true;
    setSending(true);
    setFormError(null);
    try {
      const command = await api.post<Command>("/api/v1/commands", request, {
        headers: { "Idempotency-Key": attempt.current.key },
      });
      attempt.current = null;
      onSubmitted(command);
    } catch (error) {
      if (error instanceof ApiError && error.status === 422) {
        const mapped = mapServerDetails(
          error.details,
          fields.map((f) => f.name),
          BODY_FIELDS,
        );
        setErrors(mapped.params);
        setBodyErrors(mapped.body);
        setFormError(
          mapped.other.length
            ? mapped.other.join("; ")
            : `The hub refused the command: ${error.message}`,
        );
        attempt.current = null; // a corrected body is a new attempt
      } else {
        setFormError(describeError(error));
        // Network errors and 5xx may be retried with the same key; other refusals are final.
        if (error instanceof ApiError && error.status !== 0 && error.status < 500) {
          attempt.current = null;
        }
      }
    } finally {
      inFlight.current = false;
      setSending(false);
    }
  }

  if (catalog.length === 0) return <Alert severity="info">The catalog has no commands.</Alert>;

  return (
    <Paper
      component="form"
      onSubmit={submit}
      noValidate
      sx={{ p: 2 }}
      aria-labelledby="composer-title"
    >
      <Stack spacing={2}>
        <Typography id="composer-title" variant="h6" component="h2">
          Send a command
        </Typography>
        <TextField
          id="composer-command"
          select
          label="Command"
          size="small"
          value={name}
          onChange={(e) => choose(e.target.value)}
          disabled={sending}
          helperText={spec?.description ?? " "}
        >
          {catalog.map((c) => (
            <MenuItem key={c.name} value={c.name}>
              {c.name}
            </MenuItem>
          ))}
        </TextField>
        <SchemaForm
          fields={fields}
          values={values}
          errors={errors}
          disabled={sending}
          onChange={change}
          onBlur={blur}
        />
        <Stack direction="row" spacing={2}>
          <SecondsField
            id="composer-timeout"
            field="timeout_s"
            value={timeout}
            onChange={setTimeoutText}
            error={bodyErrors.timeout_s}
            hint="seconds the vehicle has to answer"
            onClearError={clearBodyError}
            disabled={sending}
          />
          <SecondsField
            id="composer-ttl"
            field="ttl_s"
            value={ttl}
            onChange={setTtl}
            error={bodyErrors.ttl_s}
            hint={
              offline
                ? "the vehicle is offline: without ttl_s the hub refuses (409)"
                : "how long it may wait if the vehicle goes offline"
            }
            onClearError={clearBodyError}
            disabled={sending}
          />
        </Stack>
        {formError && (
          <Alert severity="error" role="alert">
            {formError}
          </Alert>
        )}
        <Box>
          <Button type="submit" variant="contained" disabled={sending}>
            {sending ? "Sending…" : "Send"}
          </Button>
        </Box>
      </Stack>
    </Paper>
  );
}
