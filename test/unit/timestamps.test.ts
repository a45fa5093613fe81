import { createRequire } from "node:module";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { parseTimestamp } from "../../src/db/timestamps.js";

// pg's own parser (pg-types registers postgres-date), as it was before src/db/database.ts registered parseTimestamp.
const requireFromPgTypes = createRequire(createRequire(import.meta.url).resolve("pg-types"));
const postgresDate = requireFromPgTypes("postgres-date") as (text: string) => Date | number | null;

const same = (text: string) => {
  const expected = postgresDate(text);
  const found = parseTimestamp(text);
  return { text, found: found instanceof Date ? found.getTime() : found, expected: expected instanceof Date ? expected.getTime() : expected };
};

describe("parseTimestamp", () => {
  it("reads UTC timestamps as pg's parser does, with every length of fraction", () => {
    const texts: string[] = [];
    for (let index = 0; index < 3_000; index++) {
      const time = Date.UTC(100 + ((index * 7919) % 9900), (index * 13) % 12, 1 + ((index * 17) % 28), (index * 5) % 24, (index * 11) % 60, (index * 29) % 60);
      const base = new Date(time).toISOString().slice(0, 19).replace("T", " ");
      const fraction = String((index * 104_729) % 1_000_000).padStart(6, "0").slice(0, index % 7);
      texts.push(`${base}${fraction ? `.${fraction}` : ""}+00`);
    }
    texts.push("2026-11-27 18:50:27.123+00", "2026-11-27 18:50:27+00", "9999-12-31 23:59:59.999999+00", "0100-01-01 00:00:00+00", "2024-02-29 12:00:00.5+00");
    for (const text of texts) {
      const { found, expected } = same(text);
      expect(found, text).toBe(expected);
    }
  });

  it("leaves to pg's parser what is not a UTC timestamp of years 100 to 9999", () => {
    for (const text of ["infinity", "-infinity", "2026-11-27 18:50:27.123+05:30", "2026-11-27 18:50:27-08", "0001-01-01 00:00:00+00 BC", "0099-06-01 00:00:00+00", "12026-01-01 00:00:00+00", "2026-11-27", "2026-11-27 18:50:2x+00", "2026-11-27 18:50:27.1x3+00"]) {
      expect(same(text).found, text).toEqual(same(text).expected);
    }
  });

  it("is what pg reads every timestamptz with once the database module is loaded", async () => {
    await import("../../src/db/database.js");
    expect(pg.types.getTypeParser(pg.types.builtins.TIMESTAMPTZ)).toBe(parseTimestamp);
  });
});
