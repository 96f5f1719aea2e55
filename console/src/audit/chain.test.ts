import { describe, expect, it } from "vitest";
import { canonicalJson, GENESIS_HASH, parseNdjson, verifyChains, type ChainRow } from "./chain";

// Hashes computed by storage.audit_chain.row_hash (Python) for these very rows.
const H1 = "6bfe8b5bb2b1530121a68803e0aeaf5078f8e1f736ce5bf3a1f26cd4660ab058";
const H2 = "4b57293fe1ced8a89a7c1bb890a461fea494c642ee66fdbd72553f7e0d41721f";
const row1: ChainRow = {
  id: 10, at: "2026-01-02T03:04:05.123456Z", actor: "admin", action: "user.created", target: "user:eve",
  details: { role: "viewer", n: 1.0, f: 0.00001, s: 'café "q"\n', l: [true, null, 2.5] },
  chain: "node-a", seq: 1, prev_hash: GENESIS_HASH, hash: H1,
};
const row2: ChainRow = {
  id: 11, at: "2026-01-02T03:04:06.000000Z", actor: "hub", action: "vehicle.connected",
  target: "vehicle:1SVDHB00000000001", details: {}, chain: "node-a", seq: 2, prev_hash: H1, hash: H2,
};

describe("audit chain check", () => {
  it("writes JSON as Python's json.dumps(sort_keys, ensure_ascii) does", () => {
    expect(canonicalJson({ b: 1e-5, a: "é\u0001", c: [1.5, 2] })).toBe('{"a":"\\u00e9\\u0001","b":1e-05,"c":[1.5,2]}');
  });

  it("verifies rows the hub hashed", async () => {
    const rows = parseNdjson(`${JSON.stringify(row1)}\n${JSON.stringify(row2)}\n`);
    const [result] = await verifyChains(rows);
    expect(result).toEqual({ chain: "node-a", rows: 2, firstSeq: 1, lastSeq: 2, broken: null });
  });

  it("names the first altered, replaced or missing row", async () => {
    const altered = await verifyChains([row1, { ...row2, actor: "mallory" }]);
    expect(altered[0]!.broken).toMatchObject({ kind: "hash mismatch", seq: 2, id: 11 });
    const replaced = await verifyChains([{ ...row1, hash: "f".repeat(64) }, row2]);
    expect(replaced[0]!.broken).toMatchObject({ kind: "hash mismatch", seq: 1 });
    const gap = await verifyChains([row1, { ...row2, seq: 3 }]);
    expect(gap[0]!.broken).toMatchObject({ kind: "missing seq", seq: 2, id: 11 });
    const relinked = await verifyChains([row1, { ...row2, prev_hash: GENESIS_HASH }]);
    expect(relinked[0]!.broken).toMatchObject({ kind: "prev_hash mismatch", seq: 2 });
  });
});
