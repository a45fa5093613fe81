import { validate, version } from "uuid";
import { describe, expect, it } from "vitest";
import { newJobId } from "../../src/jobs/job-ids.js";

describe("newJobId", () => {
  it("gives valid UUIDv7s, each later than the one before, across refills of its random pool", () => {
    const before = Date.now();
    const ids = Array.from({ length: 10_000 }, () => newJobId());
    const after = Date.now();

    for (const id of ids) {
      expect(validate(id)).toBe(true);
      expect(version(id)).toBe(7);
    }
    // Strictly increasing as text is strictly increasing as bytes (lowercase hex of one length):
    // the order PostgreSQL's uuid type compares them in.
    const outOfOrder = ids.filter((id, index) => index > 0 && id <= ids[index - 1]!);
    expect(outOfOrder).toEqual([]);
    const milliseconds = (id: string) => parseInt(id.replaceAll("-", "").slice(0, 12), 16);
    expect(milliseconds(ids[0]!)).toBeGreaterThanOrEqual(before);
    // The counter moves the clock on only when it wraps, at most once in 10,000 ids.
    expect(milliseconds(ids.at(-1)!)).toBeLessThanOrEqual(after + 1);
  });

  it("draws fresh random bits for every id", () => {
    const randomPart = (id: string) => id.replaceAll("-", "").slice(20);
    const parts = new Set(Array.from({ length: 5_000 }, () => randomPart(newJobId())));
    expect(parts.size).toBe(5_000);
  });
});
