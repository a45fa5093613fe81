// The DateTime scalar's output: always toISOString's text of the instant, a string's worked out
// once for a run of equal strings (the changes of one statement share their time).
import { describe, expect, it } from "vitest";
import { serializeDateTime } from "../../src/graphql/schema/scalars.js";

describe("DateTime serialize", () => {
  it("keeps UTC ISO text with milliseconds, and rewrites dates, epoch numbers and other ISO forms to it", () => {
    expect(serializeDateTime("2026-11-27T04:11:45.123Z")).toBe("2026-11-27T04:11:45.123Z");
    expect(serializeDateTime(new Date(Date.UTC(2026, 10, 27, 4, 11, 45, 123)))).toBe("2026-11-27T04:11:45.123Z");
    expect(serializeDateTime(Date.UTC(2026, 10, 27))).toBe("2026-11-27T00:00:00.000Z");
    // row_to_json's form, another offset, no milliseconds: all the same instant's canonical text.
    expect(serializeDateTime("2026-11-27T04:11:45.123+00:00")).toBe("2026-11-27T04:11:45.123Z");
    expect(serializeDateTime("2026-11-27T06:11:45.123+02:00")).toBe("2026-11-27T04:11:45.123Z");
    expect(serializeDateTime("2026-11-27T04:11:45Z")).toBe("2026-11-27T04:11:45.000Z");
    expect(() => serializeDateTime("not a time")).toThrow(RangeError);
    // Shaped like toISOString's text, but no instant: refused, as before, however often it comes.
    expect(() => serializeDateTime("2026-13-45T99:99:99.999Z")).toThrow(RangeError);
    expect(() => serializeDateTime("2026-13-45T99:99:99.999Z")).toThrow(RangeError);
    expect(serializeDateTime("2026-02-30T00:00:00.000Z")).toBe("2026-03-02T00:00:00.000Z");
    expect(serializeDateTime("2026-02-30T00:00:00.000Z")).toBe("2026-03-02T00:00:00.000Z");
  });
});
