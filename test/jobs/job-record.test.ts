import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createConveyor, type Conveyor } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/logger.js";
import { quoteIdentifier } from "../../src/db/embedded-postgres.js";
import { startTestConveyor, testEnvironment, type TestConveyor } from "../support/conveyor.js";
import { createTestDatabase } from "../support/database.js";

// The API's `job(id)` reads a job's row with a statement of its own (queue.ts, findJobRecord) rather
// than through Prisma's client; whatever Prisma would give, it must give, column for column.
describe("a job's record read for the API", () => {
  let conveyor: TestConveyor;
  beforeAll(async () => {
    conveyor = await startTestConveyor({ handlers: [{ type: "noop", run: async () => null }], start: false });
  });
  afterAll(() => conveyor?.dispose());

  const prismaRead = (id: string) => conveyor.database.prisma.processingJob.findUnique({ where: { id } });

  it("equals Prisma's read of a row with every column set", async () => {
    const { rows } = await conveyor.database.pool.query<{ id: string }>(
      `INSERT INTO processing_jobs (id, type, owner, assessment_id, correlation_id, schema_version, idempotency_key, status, stage, progress,
         bytes_done, bytes_total, priority, priority_rank, retry_count, revision, max_attempts, run_at, last_retry_at, created_at, updated_at,
         started_at, completed_at, processing_time_ms, heartbeat_at, locked_by, lock_token, timeout_ms, payload, result, metadata,
         error_code, error_message, error_details, error_recoverable, cancel_requested_at)
       VALUES (gen_random_uuid(), 'report', 'alice', NULL, 'c-1', 'v2', 'key-1', 'FAILED', 'scoring', 73,
         9007199254740991, 9007199254740991, 'HIGH', 0, 2, 7, 5, '1999-12-31 23:59:59.999+00', '2026-01-02 03:04:05.006+02', '0001-01-01 00:00:00+00', now(),
         now() - interval '1 second', now(), 1234, now(), 'worker-1', gen_random_uuid(), 60000,
         '{"text": "grüße \\u00e9 😀", "n": 1.5e300, "nested": [null, true, {"a": []}]}', '[1, "two", null]', '{"source": "web"}',
         'TIMEOUT', 'took too long', '{"limitMs": 60000}', false, now())
       RETURNING id`,
    );
    const id = rows[0]!.id;
    const record = await conveyor.jobs.findRecord(id);
    expect(record).toEqual(await prismaRead(id));
    expect(Object.keys(record!).sort()).toEqual(Object.keys((await prismaRead(id))!).sort());
  });

  it("equals Prisma's read of a freshly enqueued job, nulls and defaults included", async () => {
    const { job } = await conveyor.jobs.enqueue({ type: "noop", owner: "bob", payload: null }, "bob");
    expect(await conveyor.jobs.findRecord(job.id)).toEqual(await prismaRead(job.id));
  });

  // The statement returns only the creation time and what it stored of each payload and metadata;
  // the rest of the job the enqueue builds from its input.
  it("gives back each enqueued job as a read of it gives it, key order of its payload included", async () => {
    const { rows } = await conveyor.database.pool.query<{ now: Date }>("SELECT now() AS now");
    const now = rows[0]!.now.getTime();
    const payload = { zebra: 1, b: { yy: [1e21, 0.1, -0], x: "grüße 😀" }, ä: true, aa: null, "10": "ten", "2": "two" };
    const inputs = [
      { type: "noop", owner: "frank", payload, metadata: { source: "web", a: [] } },
      { type: "noop", owner: "frank", payload: null, runAt: new Date(now - 60_000) },
      { type: "noop", owner: "frank", runAt: new Date(now + 3_600_123), priority: "HIGH" as const, maxAttempts: 7, timeoutMs: 1500 },
      { type: "noop", owner: "frank", idempotencyKey: "record-key", payload: { later: 1, first: 2 } },
    ];
    const results = await conveyor.jobs.enqueueMany(inputs, "frank");
    const again = await conveyor.jobs.enqueueMany([inputs[3]!], "frank");

    expect(results.map((result) => result.created)).toEqual([true, true, true, true]);
    expect(again[0]!.created).toBe(false);
    for (const { job } of [...results, ...again]) {
      const read = await conveyor.jobs.find(job.id);
      expect(job).toEqual(read);
      expect(JSON.stringify(job.payload)).toBe(JSON.stringify(read!.payload));
      expect(JSON.stringify(job.metadata)).toBe(JSON.stringify(read!.metadata));
    }
    // Jobs due already run from their creation; the one asked for later, at that millisecond.
    expect(results[1]!.job.runAt).toEqual(results[1]!.job.createdAt);
    expect(results[2]!.job.runAt.getTime()).toBe(now + 3_600_123);
  });

  it("creates the first of the jobs of one batch that share a key, and gives the others that job", async () => {
    const inputs = ["first", "second", "third"].map((name) => ({ type: "noop", owner: "gina", idempotencyKey: "shared-key", payload: { name } }));
    const results = await conveyor.jobs.enqueueMany([{ type: "noop", owner: "gina", payload: { name: "unkeyed" } }, ...inputs], "gina");
    expect(results.map((result) => result.created)).toEqual([true, true, false, false]);
    expect(new Set(results.slice(1).map((result) => result.job.id)).size).toBe(1);
    expect((await conveyor.jobs.find(results[1]!.job.id))!.payload).toEqual({ name: "first" });
  });

  it("answers reads that arrive together each with its own row, a missing one with null", async () => {
    const jobs = await Promise.all(["carol", "dave", "erin"].map(async (owner) => (await conveyor.jobs.enqueue({ type: "noop", owner }, owner)).job));
    const missing = "00000000-0000-4000-8000-000000000001";
    // A malformed id among them is simply not found: it must not fail the others' shared statement.
    const ids = [jobs[2]!.id, missing, jobs[0]!.id, "not-a-uuid", jobs[1]!.id, jobs[0]!.id.toUpperCase()];
    const records = await Promise.all(ids.map((id) => conveyor.jobs.findRecord(id)));
    expect(records.map((record) => record?.owner ?? null)).toEqual(["erin", null, "carol", null, "dave", "carol"]);
    expect(records[4]).toEqual(await prismaRead(jobs[1]!.id));
  });

  it("is null for a job that does not exist", async () => {
    expect(await conveyor.jobs.findRecord("00000000-0000-4000-8000-000000000000")).toBeNull();
  });
});

// A database whose default zone is not UTC (an embedded PostgreSQL takes the laptop's): Prisma's
// adapter read a timestamptz printed in that zone as if it were UTC.
describe("a job's times on a database whose zone is not UTC", () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let conveyor: Conveyor;
  beforeAll(async () => {
    database = await createTestDatabase();
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    await admin.query(`ALTER DATABASE ${quoteIdentifier(new URL(database.url).pathname.slice(1))} SET timezone = 'Asia/Kolkata'`);
    await admin.end();
    const config = loadConfig({ ...testEnvironment(), DATABASE_URL: database.url });
    conveyor = await createConveyor({ config, logger: createLogger(config.logLevel) });
  });
  afterAll(async () => {
    await conveyor?.stop();
    await database?.drop();
  });

  it("are the stored instants, through the jobs layer and through Prisma alike", async () => {
    const { rows } = await conveyor.database.pool.query<{ id: string }>(
      `INSERT INTO processing_jobs (id, type, owner, correlation_id, run_at, created_at) VALUES (gen_random_uuid(), 'report', 'alice', 'c', '2026-06-01 12:00:00.123+00', '2026-06-01 12:00:00.456+00') RETURNING id`,
    );
    const id = rows[0]!.id;
    const viaPrisma = await conveyor.database.prisma.processingJob.findUnique({ where: { id } });
    expect(viaPrisma!.runAt.toISOString()).toBe("2026-06-01T12:00:00.123Z");
    expect(viaPrisma!.createdAt.toISOString()).toBe("2026-06-01T12:00:00.456Z");
    expect(await conveyor.jobs.findRecord(id)).toEqual(viaPrisma);
  });
});
