import { describe, expect, it } from "vitest";
import { classifyError, userMessage } from "../../src/jobs/error-categories.js";
import { JobAbortReason, JobValidationError, PermanentJobError, RecoverableJobError } from "../../src/jobs/job-errors.js";
import { negotiateLocale } from "../../src/i18n/locale.js";

const errno = (code: string) => Object.assign(new Error(`${code} happened`), { code });

describe("error categories", () => {
  it("classifies what handlers throw", () => {
    expect(classifyError(new JobValidationError([{ field: "a", rule: "required", reason: "missing" }]))).toMatchObject({
      category: "VALIDATION_ERROR",
      validation: true,
      recoverable: false,
    });
    expect(classifyError(new PermanentJobError("gone"))).toMatchObject({ category: "PERMANENT_ERROR", recoverable: false });
    expect(classifyError(new PermanentJobError("bad file", { category: "FILE_ERROR" }))).toMatchObject({ category: "FILE_ERROR", recoverable: false });
    expect(classifyError(new RecoverableJobError("busy", { category: "QUEUE_ERROR" }))).toMatchObject({ category: "QUEUE_ERROR", recoverable: true });
    expect(classifyError(errno("ENOENT"))).toMatchObject({ category: "FILE_ERROR", recoverable: true, details: { code: "ENOENT" } });
    expect(classifyError(errno("ECONNREFUSED"))).toMatchObject({ category: "NETWORK_ERROR", recoverable: true });
    expect(classifyError(new Error("boom"))).toMatchObject({ category: "WORKER_ERROR", recoverable: true, message: "boom" });
    expect(classifyError("a string")).toMatchObject({ category: "WORKER_ERROR", message: "a string" });
    expect(classifyError(undefined).message).toBe("Unknown error");
  });

  it("lets the abort reason decide: timeout is retried, cancel is not", () => {
    expect(classifyError(new Error("aborted"), new JobAbortReason("timeout", "Timed out after 5 ms"))).toMatchObject({ category: "TIMEOUT", recoverable: true });
    expect(classifyError(new Error("aborted"), new JobAbortReason("cancel", "Cancelled"))).toMatchObject({ category: "CANCELLED", recoverable: false });
  });

  it("keeps stack frames but not the message line in details", () => {
    const details = classifyError(new Error("secret jane@example.com")).details as { stack: string[] };
    expect(details.stack.length).toBeGreaterThan(0);
    expect(details.stack.every((frame) => frame.startsWith("at "))).toBe(true);
    expect(JSON.stringify(details)).not.toContain("jane@example.com");
  });

  it("speaks the user's language", () => {
    expect(userMessage("TIMEOUT", "en")).toMatch(/took too long/);
    expect(userMessage("TIMEOUT", "fr")).toMatch(/trop de temps/);
    expect(userMessage("TIMEOUT", "de")).toMatch(/zu lange/);
    expect(userMessage("SOMETHING_NEW", "de")).toBe(userMessage("WORKER_ERROR", "de"));
  });

  it("negotiates Accept-Language by quality, then order", () => {
    expect(negotiateLocale("fr-CH, fr;q=0.9, en;q=0.8")).toBe("fr");
    expect(negotiateLocale("es, de;q=0.5, en;q=0.7")).toBe("en");
    expect(negotiateLocale("de-DE")).toBe("de");
    expect(negotiateLocale("fr;q=0, de;q=0.1")).toBe("de");
    expect(negotiateLocale("")).toBe("en");
    expect(negotiateLocale(undefined)).toBe("en");
  });
});
