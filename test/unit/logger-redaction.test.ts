import { describe, expect, it } from "vitest";
import { GraphQLError } from "graphql";
import { createLogger, yogaLogger } from "../../src/logger.js";

const PERSONAL = "jane.doe@example.com, +33 6 12 34 56 78, eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2lnbmF0dXJl";

function capture() {
  const lines: string[] = [];
  const logger = createLogger("debug", {}, { write: (line: string) => void lines.push(line) });
  return { logger, lines, parsed: () => lines.map((line) => JSON.parse(line) as Record<string, any>) };
}

describe("item 6: the logger scrubs errors like stored job errors", () => {
  it("item 6: the err serializer scrubs message, stack and the wrapped original error", () => {
    const { logger, lines, parsed } = capture();
    const original = Object.assign(new Error(`no row for ${PERSONAL}`), { code: "23505", client: { secret: "connection" } });
    logger.error({ err: new GraphQLError(`resolver failed for ${PERSONAL}`, { originalError: original, path: ["assessment"] }) }, "request failed");
    logger.error({ err: original }, "query failed");
    for (const line of lines) {
      expect(line).not.toContain("jane.doe");
      expect(line).not.toContain("12 34 56 78");
      expect(line).not.toContain("eyJhbGciOiJIUzI1NiJ9");
      expect(line).not.toContain("connection");
    }
    const [wrapped, plain] = parsed();
    expect(wrapped!.err.message).toBe("resolver failed for [email], [number], [token]");
    expect(wrapped!.err.path).toBe("assessment");
    expect(wrapped!.err.cause.message).toBe("no row for [email], [number], [token]");
    expect(wrapped!.err.cause.code).toBe("23505");
    expect(plain!.err.stack).toMatch(/^Error: no row for \[email\]/);
  });

  it("item 6: an error logged without a message does not lend pino its raw message", () => {
    const { logger, lines, parsed } = capture();
    logger.error(new Error(`failed for ${PERSONAL}`));
    logger.warn({ err: new Error(`failed for ${PERSONAL}`) });
    logger.info("interpolated %s", PERSONAL);
    for (const line of lines) expect(line).not.toContain("jane.doe");
    expect(parsed().map((line) => line.msg)).toEqual(["failed for [email], [number], [token]", "failed for [email], [number], [token]", "interpolated [email], [number], [token]"]);
  });

  it("item 6: yoga's log calls go through the same redaction, with no raw `yoga` key", () => {
    const { logger, lines, parsed } = capture();
    const yoga = yogaLogger(logger);
    yoga.error(new GraphQLError(`boom for ${PERSONAL}`, { originalError: new Error(`boom for ${PERSONAL}`) }));
    yoga.debug(`Processing request of ${PERSONAL}`);
    yoga.warn({ email: "jane.doe@example.com", code: "X" });
    for (const line of lines) {
      expect(line).not.toContain("jane.doe");
      expect(JSON.parse(line)).not.toHaveProperty("yoga");
    }
    const [error, debug, warn] = parsed();
    expect(error!.err.message).toBe("boom for [email], [number], [token]");
    expect(debug!.msg).toBe("Processing request of [email], [number], [token]");
    expect(warn!.details).toEqual([{ email: "[redacted]", code: "X" }]);
  });
});
