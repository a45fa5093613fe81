import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { JobValidationError, PermanentJobError } from "../../src/jobs/job-errors.js";
import { createConveyor } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/logger.js";
import { eventually, startTestConveyor, testEnvironment, type TestConveyor } from "../support/conveyor.js";

// Rows are seeded with SQL: health is computed from the table (and the outcome counters its
// triggers keep) alone, whoever wrote it.
describe("queue health", () => {
  let conveyor: TestConveyor;
  const seed = async (count: number, fields: { status: string; type?: string; priority?: string; errorCode?: string | null; completedAgo?: string; heartbeatAgo?: string; runAtAgo?: string }) => {
    await conveyor.database.pool.query(
      `INSERT INTO processing_jobs (id, type, owner, correlation_id, status, priority, error_code, created_at, started_at, completed_at, processing_time_ms, heartbeat_at, run_at, locked_by)
       SELECT gen_random_uuid(), $2, 'seed', 'c', $3::"JobStatus", $4::"JobPriority", $5,
         now() - interval '2 minutes', now() - interval '1 minute',
         CASE WHEN $6::interval IS NULL THEN NULL ELSE now() - $6::interval END,
         CASE WHEN $6::interval IS NULL THEN NULL ELSE 250 END,
         CASE WHEN $7::interval IS NULL THEN NULL ELSE now() - $7::interval END,
         now() - COALESCE($8::interval, interval '0'), CASE WHEN $3 = 'PROCESSING' THEN 'seed-worker' END
       FROM generate_series(1, $1)`,
      [count, fields.type ?? "report", fields.status, fields.priority ?? "NORMAL", fields.errorCode ?? null, fields.completedAgo ?? null, fields.heartbeatAgo ?? null, fields.runAtAgo ?? null],
    );
  };
  const health = () => conveyor.jobs.health();
  const unfoldedMinutes = async () =>
    (
      await conveyor.database.pool.query(
        `SELECT count(*)::int AS n FROM job_outcome_counts WHERE minute < date_trunc('hour', now() - interval '2 hours') AND minute <> date_trunc('hour', minute)`,
      )
    ).rows[0].n;

  beforeAll(async () => {
    conveyor = await startTestConveyor({ start: false });
  });
  afterAll(() => conveyor?.dispose());
  beforeEach(async () => {
    await conveyor.database.pool.query("DELETE FROM processing_jobs; DELETE FROM job_outcome_counts");
  });

  it("is HEALTHY with no history and with a good success rate", async () => {
    expect(await health()).toMatchObject({ status: "HEALTHY", reasons: [], successRate: null });
    await seed(95, { status: "COMPLETED", completedAgo: "5 minutes" });
    await seed(5, { status: "FAILED", errorCode: "WORKER_ERROR", completedAgo: "5 minutes" });
    expect(await health()).toMatchObject({ status: "HEALTHY", successRate: 0.95 });
  });

  it("flips to DEGRADED below 90 % success and UNHEALTHY below 70 %", async () => {
    await seed(89, { status: "COMPLETED", completedAgo: "5 minutes" });
    await seed(11, { status: "FAILED", errorCode: "TIMEOUT", completedAgo: "5 minutes" });
    let result = await health();
    expect(result.status).toBe("DEGRADED");
    expect(result.reasons.join()).toMatch(/success rate 89.0% is below 90.0%/);
    await seed(30, { status: "VALIDATION_FAILED", errorCode: "VALIDATION_ERROR", completedAgo: "5 minutes" });
    result = await health();
    expect(result.status).toBe("UNHEALTHY");
    expect(result.failuresByCategory).toEqual([
      { category: "VALIDATION_ERROR", count: 30 },
      { category: "TIMEOUT", count: 11 },
    ]);
  });

  it("ignores failures outside the window for the success rate but counts them in throughput", async () => {
    await seed(10, { status: "FAILED", errorCode: "WORKER_ERROR", completedAgo: "3 hours" });
    await seed(10, { status: "COMPLETED", completedAgo: "3 hours" });
    await seed(4, { status: "COMPLETED", completedAgo: "2 days" });
    const result = await health();
    expect(result.status).toBe("HEALTHY");
    expect(result.throughput).toEqual({ lastHour: 0, lastDay: 10, lastWeek: 14 });
  });

  it("folds minutes older than two hours into hours without changing what health says", async () => {
    await seed(3, { status: "COMPLETED", completedAgo: "10 minutes" });
    for (const ago of ["3 hours", "3 hours 7 minutes", "3 hours 21 minutes", "2 days", "2 days 30 minutes"]) {
      await seed(2, { status: "COMPLETED", completedAgo: ago });
      await seed(1, { status: "FAILED", errorCode: "TIMEOUT", completedAgo: ago });
    }
    const countRows = async () => (await conveyor.database.pool.query(`SELECT count(*)::int AS n FROM job_outcome_counts`)).rows[0].n;
    const before = await health();
    const rowsBefore = await countRows();
    await conveyor.maintenance.pruneOutcomeCounts();
    const after = await health();
    expect(await countRows()).toBeLessThan(rowsBefore);
    expect({ ...after, checkedAt: null }).toEqual({ ...before, checkedAt: null });
    expect(after.throughput).toEqual({ lastHour: 3, lastDay: 9, lastWeek: 13 });
  });

  it("has an instance fold the minutes it finds unfolded when it starts, not an interval later", async () => {
    for (const ago of ["3 hours", "3 hours 7 minutes", "2 days", "2 days 30 minutes"]) await seed(2, { status: "COMPLETED", completedAgo: ago });
    expect(await unfoldedMinutes()).toBeGreaterThan(0);
    const before = await health();
    // The shipped interval (1 h): only a fold at start can be seen within the test.
    const config = loadConfig({ ...testEnvironment({ RETENTION_INTERVAL_MS: "3600000" }), DATABASE_URL: conveyor.databaseUrl });
    const started = await createConveyor({ config, logger: createLogger("silent") });
    try {
      await started.start({ http: false });
      await eventually(async () => (await unfoldedMinutes()) === 0, 5_000);
    } finally {
      await started.stop();
    }
    expect({ ...(await health()), checkedAt: null }).toEqual({ ...before, checkedAt: null });
  });

  it("flips to DEGRADED with one stalled job and UNHEALTHY with more than five", async () => {
    await seed(3, { status: "PROCESSING", heartbeatAgo: "10 seconds" });
    expect((await health()).status).toBe("HEALTHY");
    await seed(1, { status: "PROCESSING", heartbeatAgo: "10 minutes" });
    let result = await health();
    expect([result.status, result.stalled, result.counts.processing]).toEqual(["DEGRADED", 1, 4]);
    await seed(5, { status: "PROCESSING", heartbeatAgo: "10 minutes" });
    result = await health();
    expect([result.status, result.stalled]).toEqual(["UNHEALTHY", 6]);
  });

  it("flips to DEGRADED with more than 100 waiting jobs or one waiting over 10 minutes", async () => {
    await seed(100, { status: "QUEUED" });
    expect((await health()).status).toBe("HEALTHY");
    await seed(1, { status: "RETRYING", priority: "HIGH" });
    let result = await health();
    expect(result.status).toBe("DEGRADED");
    expect(result.reasons).toEqual(["101 jobs waiting (more than 100)"]);
    expect(result.byPriority).toContainEqual({ priority: "HIGH", status: "RETRYING", count: 1 });
    expect(result.byType).toContainEqual({ type: "report", status: "QUEUED", count: 100 });

    await conveyor.database.pool.query("DELETE FROM processing_jobs; DELETE FROM job_outcome_counts");
    await seed(1, { status: "QUEUED", runAtAgo: "11 minutes" });
    result = await health();
    expect(result.status).toBe("DEGRADED");
    expect(result.oldestQueuedAgeMs).toBeGreaterThan(10 * 60_000);
  });

  it("averages processing and queue times over the window", async () => {
    await seed(4, { status: "COMPLETED", completedAgo: "1 minute" });
    const result = await health();
    expect(result.averageProcessingMs).toBe(250);
    expect(result.averageQueueMs).toBe(60_000);
  });
});

// The engine's own statements keep the outcome counters health reads: completions, failures,
// validation failures, cancels and stalled recoveries, each once, as the jobs table says.
describe("queue health from a real run", () => {
  let conveyor: TestConveyor;

  beforeAll(async () => {
    conveyor = await startTestConveyor({
      environment: { WORKER_ENABLED: "true", WORKER_CONCURRENCY: "4", JOB_MAX_ATTEMPTS: "1" },
      handlers: [
        { type: "fine", run: async () => ({ ok: true }) },
        {
          type: "broken",
          run: async () => {
            throw new PermanentJobError("no", { category: "FILE_ERROR" });
          },
        },
        {
          type: "invalid",
          run: async () => {
            throw new JobValidationError([{ field: "x", rule: "required", reason: "missing" }]);
          },
        },
      ],
    });
  });
  afterAll(() => conveyor?.dispose());

  it("counts every outcome the engine writes, once, and agrees with the table", async () => {
    const enqueue = (type: string, extra: Record<string, unknown> = {}) => conveyor.jobs.enqueue({ type, owner: "alice", ...extra }, "alice");
    await Promise.all([...Array.from({ length: 6 }, () => enqueue("fine")), enqueue("broken"), enqueue("broken"), enqueue("invalid")]);
    const parked = await enqueue("fine", { runAt: new Date(Date.now() + 3600_000) });
    await conveyor.jobs.cancel(parked.job.id, "alice");
    // A job whose worker vanished: recovered to FAILED (no attempts left).
    await conveyor.database.pool.query(
      `INSERT INTO processing_jobs (id, type, owner, correlation_id, status, started_at, heartbeat_at, locked_by, lock_token, max_attempts)
       VALUES (gen_random_uuid(), 'fine', 'alice', 'c', 'PROCESSING', now() - interval '10 minutes', now() - interval '10 minutes', 'gone', gen_random_uuid(), 1)`,
    );
    await conveyor.lifecycle.recoverStalled(60_000);
    const result = await eventually(async () => {
      const health = await conveyor.jobs.health();
      const { queued, processing, retrying } = health.counts;
      return health.counts.completed === 6 && queued + processing + retrying === 0 ? health : undefined;
    });
    expect(result.counts).toMatchObject({ completed: 6, failed: 3, validationFailed: 1, cancelled: 1 });
    expect(result.failuresByCategory).toEqual([
      { category: "CANCELLED", count: 1 },
      { category: "FILE_ERROR", count: 2 },
      { category: "STALLED", count: 1 },
      { category: "VALIDATION_ERROR", count: 1 },
    ].sort((a, b) => b.count - a.count || a.category.localeCompare(b.category)));
    expect(result.throughput).toEqual({ lastHour: 6, lastDay: 6, lastWeek: 6 });
    expect(result.averageProcessingMs).not.toBeNull();
    const { rows } = await conveyor.database.pool.query(
      `SELECT status, count(*)::int AS count FROM processing_jobs WHERE completed_at IS NOT NULL GROUP BY status ORDER BY status`,
    );
    const counted = await conveyor.database.pool.query(`SELECT status, sum(count)::int AS count FROM job_outcome_counts GROUP BY status ORDER BY status`);
    expect(counted.rows).toEqual(rows);
  });
});
