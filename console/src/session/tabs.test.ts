import { describe, expect, it, vi } from "vitest";
import { openTabGuard } from "./tabs";

describe("tab guard", () => {
  it("tells a duplicated tab that another tab holds its session", async () => {
    const original = openTabGuard(() => "s1");
    const other = openTabGuard(() => "s2");
    const copy = openTabGuard(() => "s1");
    const taken = vi.fn();
    copy.check("s1", taken);
    await vi.waitFor(() => expect(taken).toHaveBeenCalledTimes(1));
    const free = vi.fn();
    copy.check("s3", free);
    await new Promise((r) => setTimeout(r, 50));
    expect(free).not.toHaveBeenCalled();
    for (const guard of [original, other, copy]) guard.close();
  });
});
