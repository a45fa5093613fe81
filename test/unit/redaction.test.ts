import { describe, expect, it } from "vitest";
import { REDACTED, redactDetails, scrubText, truncate } from "../../src/jobs/redaction.js";

describe("redaction", () => {
  it("keeps allow-listed keys and redacts every other one, however deep", () => {
    const redacted = redactDetails({
      code: "E_MAIL",
      field: "answers.q1",
      email: "jane@example.com",
      user: { name: "Jane Doe", code: "nested-ok" },
      failures: [{ field: "answers.q2", rule: "required", value: "secret answer" }],
    });
    expect(redacted).toEqual({
      code: "E_MAIL",
      field: "answers.q1",
      email: REDACTED,
      user: REDACTED,
      failures: [{ field: "answers.q2", rule: "required", value: REDACTED }],
    });
  });

  it("scrubs emails, phone numbers and tokens even inside allowed keys", () => {
    const text = scrubText("mail jane.doe+x@mail.example.org or call +41 79 123 45 67 with Bearer abc.def.ghi and eyJhbGciOi.eyJzdWIiOi.sig");
    expect(text).not.toMatch(/jane|123 45 67|abc\.def|eyJ/);
    expect(text).toContain("[email]");
    expect(text).toContain("[number]");
    expect(redactDetails({ reason: "user bob@corp.io failed" })).toEqual({ reason: "user [email] failed" });
  });

  it("truncates long text with a marker and stays fast on huge input", () => {
    expect(truncate("short", 10)).toBe("short");
    const long = truncate("a".repeat(5000), 100);
    expect(long.length).toBeLessThanOrEqual(100);
    expect(long).toMatch(/more characters\]$/);
    const scrubbed = scrubText("x".repeat(1_000_000), 1000);
    expect(scrubbed.length).toBeLessThanOrEqual(1000);
  });

  it("bounds depth and array length, and copes with odd values", () => {
    let deep: Record<string, unknown> = { code: "bottom" };
    for (let i = 0; i < 10; i++) deep = { cause: deep };
    expect(JSON.stringify(redactDetails(deep))).toContain(REDACTED);
    expect((redactDetails({ failures: Array.from({ length: 500 }, () => ({ rule: "x" })) }) as { failures: unknown[] }).failures).toHaveLength(100);
    expect(redactDetails({ count: 10n, retryable: true, code: undefined })).toEqual({ count: "10", retryable: true, code: null });
  });
});
