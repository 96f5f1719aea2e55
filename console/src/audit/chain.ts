/** Checks an audit export's hash chains in the browser, as `storage.audit_chain.row_hash` and
 *  `sovd-hub audit verify` do: per chain, seq 1, 2, 3... without gaps, each `prev_hash` the
 *  previous row's `hash` (64 zeros before seq 1), each `hash` the SHA-256 of `prev_hash` and
 *  the row's canonical text. The hub has no verify route: this checks the rows of an
 *  unfiltered export; retention anchors (signed with a key the browser has not) are not. */

export interface ChainRow {
  id: number;
  at: string;
  actor: string;
  action: string;
  target: string;
  details: unknown;
  chain: string;
  seq: number;
  prev_hash: string;
  hash: string;
}

export const GENESIS_HASH = "0".repeat(64);

export type BreakKind = "hash mismatch" | "prev_hash mismatch" | "missing seq";

export interface ChainResult {
  chain: string;
  rows: number;
  firstSeq: number;
  lastSeq: number;
  /** The first broken row, or null when the chain is intact. */
  broken: { kind: BreakKind; seq: number; id: number; message: string } | null;
}

/** Python's float repr where it differs from JavaScript's (exponent below 1e-4, two digits). */
function pythonNumber(value: number): string {
  if (!Number.isFinite(value)) return JSON.stringify(String(value));
  if (Number.isInteger(value)) return value.toFixed(0);
  const abs = Math.abs(value);
  if (abs < 1e-4 || abs >= 1e16) {
    const [mantissa, exponent] = value.toExponential().split("e") as [string, string];
    const sign = exponent.startsWith("-") ? "-" : "+";
    const digits = exponent.replace(/^[+-]/, "").padStart(2, "0");
    return `${mantissa}e${sign}${digits}`;
  }
  return String(value);
}

/** A JSON string as Python's json.dumps(ensure_ascii=True) writes it. */
function pythonString(text: string): string {
  let out = '"';
  for (const char of text) {
    const code = char.codePointAt(0)!;
    if (char === '"') out += '\\"';
    else if (char === "\\") out += "\\\\";
    else if (char === "\n") out += "\\n";
    else if (char === "\r") out += "\\r";
    else if (char === "\t") out += "\\t";
    else if (char === "\b") out += "\\b";
    else if (char === "\f") out += "\\f";
    else if (code >= 0x20 && code <= 0x7e) out += char;
    else {
      // non-ASCII (and control characters): \\uXXXX, astral characters as a surrogate pair
      for (let i = 0; i < char.length; i++) {
        out += `\\u${char.charCodeAt(i).toString(16).padStart(4, "0")}`;
      }
    }
  }
  return `${out}"`;
}

/** json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True). */
export function canonicalJson(value: unknown): string {
  if (value === null || value === undefined) return "null";
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "number") return pythonNumber(value);
  if (typeof value === "string") return pythonString(value);
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
  const record = value as Record<string, unknown>;
  const keys = Object.keys(record).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${keys.map((k) => `${pythonString(k)}:${canonicalJson(record[k])}`).join(",")}}`;
}

/** The text whose SHA-256 is a row's hash: prev_hash + the canonical row. */
export function hashedText(row: ChainRow): string {
  const { chain, seq, at, actor, action, target, details } = row;
  return row.prev_hash + canonicalJson({ chain, seq, at, actor, action, target, details });
}

export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The rows of an NDJSON export. */
export function parseNdjson(text: string): ChainRow[] {
  return text
    .split("\n")
    .filter((line) => line.trim() !== "")
    .map((line) => JSON.parse(line) as ChainRow);
}

/** Every chain of `rows`, checked from its first row present (an anchor after retention). */
export async function verifyChains(
  rows: ChainRow[],
  hash: (text: string) => Promise<string> = sha256Hex,
): Promise<ChainResult[]> {
  const byChain = new Map<string, ChainRow[]>();
  for (const row of rows) {
    const list = byChain.get(row.chain) ?? [];
    list.push(row);
    byChain.set(row.chain, list);
  }
  const results: ChainResult[] = [];
  for (const [chain, list] of [...byChain.entries()].sort(([a], [b]) => (a < b ? -1 : 1))) {
    list.sort((a, b) => a.seq - b.seq);
    const result: ChainResult = {
      chain, rows: list.length, firstSeq: list[0]!.seq, lastSeq: list[list.length - 1]!.seq, broken: null,
    };
    let previous: ChainRow | null = null;
    for (const row of list) {
      const where = `seq ${row.seq} (id ${row.id})`;
      if (previous !== null && row.seq !== previous.seq + 1) {
        result.broken = { kind: "missing seq", seq: previous.seq + 1, id: row.id,
          message: `seq ${previous.seq + 1} is missing (the next row is ${where})` };
        break;
      }
      const expectedPrev = previous ? previous.hash : row.seq === 1 ? GENESIS_HASH : row.prev_hash;
      if (row.prev_hash !== expectedPrev) {
        result.broken = { kind: "prev_hash mismatch", seq: row.seq, id: row.id,
          message: `${where}: prev_hash is not the hash of the row before` };
        break;
      }
      if ((await hash(hashedText(row))) !== row.hash) {
        result.broken = { kind: "hash mismatch", seq: row.seq, id: row.id,
          message: `${where}: hash mismatch (the row's content was altered)` };
        break;
      }
      previous = row;
    }
    results.push(result);
  }
  return results;
}
