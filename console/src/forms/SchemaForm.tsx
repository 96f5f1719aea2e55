/** The inputs of a params JSON Schema: one per property, labelled, errors shown inline. */
import {
  Checkbox,
  FormControlLabel,
  FormHelperText,
  MenuItem,
  Stack,
  TextField,
} from "@mui/material";
import type { FieldErrors, FieldSpec, FormValues } from "./jsonSchema";

export interface SchemaFormProps {
  fields: FieldSpec[];
  values: FormValues;
  errors: FieldErrors;
  disabled?: boolean;
  onChange: (name: string, value: string | boolean) => void;
  onBlur?: (name: string) => void;
  idPrefix?: string;
}

function hint(field: FieldSpec): string {
  const parts: string[] = [];
  if (field.description) parts.push(field.description);
  if (field.kind === "string" && field.pattern) parts.push(`pattern ${field.pattern}`);
  if ((field.kind === "integer" || field.kind === "number") && (field.minimum !== null || field.maximum !== null))
    parts.push(`${field.minimum ?? "…"} to ${field.maximum ?? "…"}`);
  return parts.join(" · ");
}

export function SchemaForm({
  fields,
  values,
  errors,
  disabled,
  onChange,
  onBlur,
  idPrefix = "param",
}: SchemaFormProps) {
  if (fields.length === 0) {
    return <FormHelperText>This command takes no parameters.</FormHelperText>;
  }
  return (
    <Stack spacing={2}>
      {fields.map((field) => {
        const id = `${idPrefix}-${field.name}`;
        const error = errors[field.name];
        if (field.kind === "boolean") {
          return (
            <div key={field.name}>
              <FormControlLabel
                control={
                  <Checkbox
                    id={id}
                    checked={values[field.name] === true}
                    disabled={disabled}
                    onChange={(e) => onChange(field.name, e.target.checked)}
                  />
                }
                label={field.label}
              />
              {(error || field.description) && (
                <FormHelperText error={Boolean(error)}>{error ?? field.description}</FormHelperText>
              )}
            </div>
          );
        }
        const value = typeof values[field.name] === "string" ? (values[field.name] as string) : "";
        const numeric = field.kind === "integer" || field.kind === "number";
        return (
          <TextField
            key={field.name}
            id={id}
            name={field.name}
            label={field.label}
            required={field.required}
            select={field.kind === "enum"}
            value={value}
            disabled={disabled}
            error={Boolean(error)}
            helperText={error ?? (hint(field) || " ")}
            onChange={(e) => onChange(field.name, e.target.value)}
            onBlur={() => onBlur?.(field.name)}
            size="small"
            fullWidth
            slotProps={{
              htmlInput: numeric
                ? {
                    inputMode: field.kind === "integer" ? "numeric" : "decimal",
                    "aria-describedby": `${id}-helper-text`,
                  }
                : { "aria-describedby": `${id}-helper-text` },
            }}
          >
            {field.kind === "enum"
              ? [
                  ...(field.required ? [] : [<MenuItem key="" value=""><em>none</em></MenuItem>]),
                  ...field.options.map((option) => (
                    <MenuItem key={option} value={option}>
                      {option}
                    </MenuItem>
                  )),
                ]
              : null}
          </TextField>
        );
      })}
    </Stack>
  );
}
