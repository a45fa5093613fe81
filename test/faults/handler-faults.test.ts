// Issue 11, item 7: handlers that misbehave, through the worker pool: each job still ends in a
// recorded, categorized outcome.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JobHandler } from "../../src/handlers/registry.js";
import { ERROR_CATEGORIES } from "../../src/jobs/error-categories.js";
import { eventually, startTestConveyor, type TestConveyor } from "../support/conveyor.js";

const cyclic: Record<string, unknown> = {};
cyclic.self = cyclic;

const handlers: JobHandler<unknown, unknown>[] = [
  { type: "throws-string", run: async () => Promise.reject("a bare string") },
  { type: "throws-undefined", run: async () => Promise.reject(undefined) },
  { type: "throws-object", run: async () => Promise.reject({ status: 500, email: "someone@example.com" }) },
  { type: "throws-sync", run: (() => { throw 42; }) as never },
  { type: "returns-bigint", run: async () => ({ total: 10n }) },
  { type: "returns-cycle", run: async () => cyclic },
  // Ignores its signal and never settles.
  { type: "hangs", timeoutMs: 300, run: () => new Promise(() => {}) },
];

describe("item 7: handlers that throw non-Errors, return what JSON cannot hold, or hang", () => {
  let conveyor: TestConveyor;
  beforeAll(async () => {
    conveyor = await startTestConveyor({
      handlers,
      environment: { WORKER_ENABLED: "true", WORKER_CONCURRENCY: "8", JOB_MAX_ATTEMPTS: "1", WORKER_SHUTDOWN_GRACE_MS: "200" },
    });
  });
  afterAll(() => conveyor.dispose());

  it("each ends FAILED with a category and a message", async () => {
    const ids = new Map<string, string>();
    for (const { type } of handlers) ids.set(type, (await conveyor.jobs.enqueue({ type, owner: "alice" }, "alice")).job.id);
    const outcomes = new Map<string, { status: string; errorCode: string | null; errorMessage: string | null }>();
    await eventually(async () => {
      for (const [type, id] of ids) {
        const job = await conveyor.jobs.find(id);
        if (job && job.status !== "QUEUED" && job.status !== "PROCESSING" && job.status !== "RETRYING") {
          outcomes.set(type, { status: job.status, errorCode: job.errorCode, errorMessage: job.errorMessage });
        }
      }
      return outcomes.size === ids.size;
    }, 20_000, 50);
    for (const [type, outcome] of outcomes) {
      expect(outcome.status, type).toBe("FAILED");
      expect(ERROR_CATEGORIES as readonly string[], type).toContain(outcome.errorCode);
      expect(outcome.errorMessage, type).toBeTruthy();
      expect(outcome.errorMessage, type).not.toContain("someone@example.com");
    }
    expect(outcomes.get("returns-bigint")!.errorCode).toBe("RESULT_ERROR");
    expect(outcomes.get("returns-cycle")!.errorCode).toBe("RESULT_ERROR");
    expect(outcomes.get("hangs")!.errorCode).toBe("TIMEOUT");
    // The hung handler still holds its slot (Conveyor cannot kill JavaScript); the rest are free.
    await eventually(() => conveyor.workerPool!.stats().busySlots === 1, 5000);
  });
});
