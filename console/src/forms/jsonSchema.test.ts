import { describe, expect, it } from "vitest";
import type { JsonSchemaObject } from "../api/types";
import { fieldsOf, initialValues, mapServerDetails, toParams, validateAll } from "./jsonSchema";

const schema: JsonSchemaObject = {
  type: "object",
  properties: {
    dtcCode: { type: "string", pattern: "^P[0-9A-F]{4}$" },
    ecuAddress: { type: "string", enum: ["0x10", "0x18"], pattern: "^0x[0-9A-Fa-f]{2}$" },
    count: { type: "integer", minimum: 1, maximum: 10, default: 3 },
    verbose: { type: "boolean" },
  },
  required: ["ecuAddress"],
  additionalProperties: false,
};

describe("JSON Schema form model", () => {
  const fields = fieldsOf(schema);

  it("derives fields, required first", () => {
    expect(fields.map((f) => [f.name, f.kind, f.required])).toEqual([
      ["ecuAddress", "enum", true],
      ["dtcCode", "string", false],
      ["count", "integer", false],
      ["verbose", "boolean", false],
    ]);
    expect(initialValues(fields)).toEqual({ ecuAddress: "", dtcCode: "", count: "3", verbose: false });
  });

  it("checks required, pattern, enum, integer and range", () => {
    expect(validateAll(fields, { ecuAddress: "", dtcCode: "X1", count: "2.5" })).toEqual({
      ecuAddress: "ecuAddress is required",
      dtcCode: "dtcCode must match ^P[0-9A-F]{4}$",
      count: "count must be a whole number",
    });
    expect(validateAll(fields, { ecuAddress: "0x99", count: "11" })).toEqual({
      ecuAddress: "ecuAddress must be one of 0x10, 0x18",
      count: "count must be from 1 to 10",
    });
    expect(validateAll(fields, { ecuAddress: "0x10", dtcCode: "P0420", count: "" })).toEqual({});
  });

  it("builds params with numbers as numbers and empty optional fields left out", () => {
    expect(toParams(fields, { ecuAddress: "0x10", dtcCode: "", count: "4", verbose: true })).toEqual({
      ecuAddress: "0x10", count: 4, verbose: true,
    });
  });

  it("maps 422 details onto params, body fields and the rest", () => {
    const mapped = mapServerDetails(
      [
        { field: "params.ecuAddress", rule: "pattern", message: "bad address" },
        { field: "timeout_s", rule: "greater_than", message: "Input should be greater than 0" },
        { field: "params", rule: "extra", message: "unknown param foo" },
      ],
      ["ecuAddress", "dtcCode"],
      ["timeout_s", "ttl_s"],
    );
    expect(mapped.params).toEqual({ ecuAddress: "bad address" });
    expect(mapped.body).toEqual({ timeout_s: "Input should be greater than 0" });
    expect(mapped.other).toEqual(["params: unknown param foo"]);
  });
});
