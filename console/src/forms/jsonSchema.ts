/** A form from a command's params JSON Schema (the catalog's `params`): the fields, their
 *  inline checks, the params object to send, and the server's 422 `details` mapped back. */
import type { ErrorDetail } from "../api/errors";
import type { JsonSchemaObject, JsonSchemaProperty } from "../api/types";

export type FieldKind = "string" | "enum" | "integer" | "number" | "boolean";

export interface FieldSpec {
  name: string;
  label: string;
  kind: FieldKind;
  required: boolean;
  description: string | null;
  pattern: string | null;
  options: string[];
  minimum: number | null;
  maximum: number | null;
  exclusiveMinimum: number | null;
  exclusiveMaximum: number | null;
  minLength: number | null;
  maxLength: number | null;
  defaultValue: unknown;
}

/** What the inputs hold: text as typed, booleans as booleans. */
export type FormValues = Record<string, string | boolean>;
export type FieldErrors = Record<string, string>;

function num(value: unknown): number | null {
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

function kindOf(property: JsonSchemaProperty): FieldKind {
  if (property.enum && property.enum.length > 0 && property.type !== "boolean") return "enum";
  switch (property.type) {
    case "integer":
    case "number":
    case "boolean":
      return property.type;
    default:
      return "string";
  }
}

/** The fields of `schema`, required ones first, in the schema's order otherwise. */
export function fieldsOf(schema: JsonSchemaObject): FieldSpec[] {
  const required = new Set(schema.required ?? []);
  const fields = Object.entries(schema.properties ?? {}).map(([name, property]) => ({
    name,
    label: property.title ?? name,
    kind: kindOf(property),
    required: required.has(name),
    description: property.description ?? null,
    pattern: typeof property.pattern === "string" ? property.pattern : null,
    options: (property.enum ?? []).map(String),
    minimum: num(property.minimum),
    maximum: num(property.maximum),
    exclusiveMinimum: num(property.exclusiveMinimum),
    exclusiveMaximum: num(property.exclusiveMaximum),
    minLength: num(property.minLength),
    maxLength: num(property.maxLength),
    defaultValue: property.default,
  }));
  return [...fields.filter((f) => f.required), ...fields.filter((f) => !f.required)];
}

/** Starting values: `example` (a catalog example) first, else each field's default. */
export function initialValues(fields: FieldSpec[], example?: Record<string, unknown>): FormValues {
  const values: FormValues = {};
  for (const field of fields) {
    const given = example?.[field.name] ?? field.defaultValue;
    if (field.kind === "boolean") values[field.name] = given === true;
    else values[field.name] = given === undefined || given === null ? "" : String(given);
  }
  return values;
}

function matches(pattern: string, value: string): boolean {
  try {
    // JSON Schema patterns are not anchored; the catalog's are (^...$) anyway.
    return new RegExp(pattern, "u").test(value);
  } catch {
    return true; // a pattern JavaScript cannot read is left to the hub
  }
}

function range(field: FieldSpec): string {
  if (field.minimum !== null && field.maximum !== null)
    return `from ${field.minimum} to ${field.maximum}`;
  if (field.minimum !== null) return `at least ${field.minimum}`;
  if (field.maximum !== null) return `at most ${field.maximum}`;
  return "";
}

/** The problem with `raw` for `field`, or null when it is fine. */
export function validateField(field: FieldSpec, raw: string | boolean | undefined): string | null {
  if (field.kind === "boolean") return null;
  const text = typeof raw === "string" ? raw : "";
  if (text.trim() === "") return field.required ? `${field.label} is required` : null;
  switch (field.kind) {
    case "enum":
      return field.options.includes(text)
        ? null
        : `${field.label} must be one of ${field.options.join(", ")}`;
    case "integer":
    case "number": {
      const value = Number(text);
      if (!Number.isFinite(value)) return `${field.label} must be a number`;
      if (field.kind === "integer" && !Number.isInteger(value))
        return `${field.label} must be a whole number`;
      if (
        (field.minimum !== null && value < field.minimum) ||
        (field.maximum !== null && value > field.maximum)
      )
        return `${field.label} must be ${range(field)}`;
      if (field.exclusiveMinimum !== null && value <= field.exclusiveMinimum)
        return `${field.label} must be greater than ${field.exclusiveMinimum}`;
      if (field.exclusiveMaximum !== null && value >= field.exclusiveMaximum)
        return `${field.label} must be less than ${field.exclusiveMaximum}`;
      return null;
    }
    case "string": {
      if (field.minLength !== null && text.length < field.minLength)
        return `${field.label} must have at least ${field.minLength} characters`;
      if (field.maxLength !== null && text.length > field.maxLength)
        return `${field.label} must have at most ${field.maxLength} characters`;
      if (field.pattern !== null && !matches(field.pattern, text))
        return `${field.label} must match ${field.pattern}`;
      return null;
    }
  }
}

/** Every field's problem (fields without one are absent). */
export function validateAll(fields: FieldSpec[], values: FormValues): FieldErrors {
  const errors: FieldErrors = {};
  for (const field of fields) {
    const problem = validateField(field, values[field.name]);
    if (problem !== null) errors[field.name] = problem;
  }
  return errors;
}

/** The params object to send: numbers as numbers, empty optional fields left out. */
export function toParams(fields: FieldSpec[], values: FormValues): Record<string, unknown> {
  const params: Record<string, unknown> = {};
  for (const field of fields) {
    const raw = values[field.name];
    if (field.kind === "boolean") {
      params[field.name] = raw === true;
      continue;
    }
    const text = typeof raw === "string" ? raw.trim() : "";
    if (text === "") continue;
    params[field.name] = field.kind === "integer" || field.kind === "number" ? Number(text) : text;
  }
  return params;
}

export interface MappedErrors {
  /** By param name (`params.<name>` in the details). */
  params: FieldErrors;
  /** By top-level field of the body (`timeout_s`, `ttl_s`, ...). */
  body: FieldErrors;
  /** Details that name no field we show (`params` itself, `body`, ...). */
  other: string[];
}

/** A 422's `details` (`{field, rule, message}`, api/errors.py) mapped onto the form. */
export function mapServerDetails(
  details: ErrorDetail[],
  paramNames: string[],
  bodyNames: string[],
): MappedErrors {
  const mapped: MappedErrors = { params: {}, body: {}, other: [] };
  for (const detail of details) {
    const field = detail.field;
    if (field.startsWith("params.")) {
      const name = field.slice("params.".length).split(".")[0] ?? "";
      if (paramNames.includes(name)) {
        mapped.params[name] ??= detail.message;
        continue;
      }
    } else if (bodyNames.includes(field)) {
      mapped.body[field] ??= detail.message;
      continue;
    }
    mapped.other.push(field && field !== "body" ? `${field}: ${detail.message}` : detail.message);
  }
  return mapped;
}
