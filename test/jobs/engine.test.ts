import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { JobHandler } from "../../src/handlers/registry.js";
import { retryDelayMs } from "../../src/jobs/retry-policy.js";
import { enqueueJob } from "../../src/jobs/queue.js";
import { eventually, startTestConveyor, type TestConveyor } from "../support/conveyor.js";

describe("retries on an injected clock", () => {
  let now = new Date("2026-01-01T00:00:00.000Z");
  const advance = (ms: number) => (now = new Date(now.getTime() + ms));
  let conveyor: TestConveyor;
  beforeAll(async () => {
    conveyor = await startTestConveyor({
      handlers: [{ type: "flaky", run: async () => null }],
      start: false,
      clock: () => now,
      random: () => 0.5,
      environment: { RETRY_INITIAL_DELAY_MS: "1000", RETRY_MULTIPLIER: "2", RETRY_MAX_DELAY_MS: "3000", JOB_MAX_ATTEMPTS: "4" },
    });
  });
  afterAll(() => conveyor?.dispose());

  it("waits min(initial × multiplier^n, max) between attempts, then fails; nothing runs early", async () => {
    const { job } = await conveyor.jobs.enqueue({ type: "flaky", owner: "alice" }, "alice");
    const expectedDelays = [1000, 2000, 3000];
    expect(expectedDelays).toEqual([0, 1, 2].map((n) => retryDelayMs(n, conveyor.lifecycle.retryPolicy, () => 0.5)));
    for (const delay of expectedDelays) {
      const [claimed] = await conveyor.lifecycle.claim("w", ["flaky"], 1);
      expect(claimed?.id).toBe(job.id);
      const outcome = await conveyor.lifecycle.fail(claimed!, claimed!.lockToken!, new Error("try again"));
      expect(outcome).toMatchObject({ status: "RETRYING", retryDelayMs: delay });
      const stored = await conveyor.jobs.find(job.id);
      expect(stored!.runAt.getTime()).toBe(now.getTime() + delay);
      expect(stored!.lastRetryAt!.getTime()).toBe(now.getTime());
      advance(delay - 1);
      expect(await conveyor.lifecycle.claim("w", ["flaky"], 1)).toEqual([]);
      advance(1);
    }
    const [last] = await conveyor.lifecycle.claim("w", ["flaky"], 1);
    expect(last?.retryCount).toBe(3);
    expect((await conveyor.lifecycle.fail(last!, last!.lockToken!, new Error("try again")))?.status).toBe("FAILED");
    const done = await conveyor.jobs.find(job.id);
    expect([done!.status, done!.retryCount, done!.completedAt?.getTime()]).toEqual(["FAILED", 3, now.getTime()]);
  });
});

describe("engine with a worker pool", () => {
  let conveyor: TestConveyor;
  const calls = new Map<string, number>();
  const count = (id: string) => calls.set(id, (calls.get(id) ?? 0) + 1);
  const handlers: JobHandler<any, any>[] = [
    {
      type: "fails-twice",
      async run(_payload, context) {
        count(context.job.id);
        if (context.attempt < 3) throw new Error(`attempt ${context.attempt} failed`);
        return { attempt: context.attempt };
      },
    },
    {
      type: "waits-for-signal",
      async run(_payload, context) {
        count(context.job.id);
        await context.progress("waiting", 10);
        await new Promise<void>((_resolve, reject) => {
          context.signal.addEventListener("abort", () => reject(context.signal.reason), { once: true });
        });
        return "finished";
      },
    },
    { type: "quick", run: async (_payload, context) => void count(context.job.id) },
  ];

  beforeAll(async () => {
    conveyor = await startTestConveyor({
      handlers,
      environment: { WORKER_ENABLED: "true", WORKER_CONCURRENCY: "4", RETRY_INITIAL_DELAY_MS: "20", RETRY_MAX_DELAY_MS: "50", WORKER_HEARTBEAT_INTERVAL_MS: "100" },
    });
  });
  afterAll(() => conveyor?.dispose());
  beforeEach(() => calls.clear());

  const statusOf = async (id: string) => (await conveyor.jobs.find(id))!.status;

  it("retries a failing job until it succeeds, each attempt recorded", async () => {
    const { job } = await conveyor.jobs.enqueue({ type: "fails-twice", owner: "alice", maxAttempts: 3 }, "alice");
    await eventually(async () => (await statusOf(job.id)) === "COMPLETED");
    const done = await conveyor.jobs.find(job.id);
    expect(done!.retryCount).toBe(2);
    expect(done!.result).toEqual({ attempt: 3 });
    expect(calls.get(job.id)).toBe(3);
    const transitions = await conveyor.database.pool.query("SELECT to_status FROM job_events WHERE job_id = $1 ORDER BY id", [job.id]);
    expect(transitions.rows.map((event) => event.to_status)).toEqual(["QUEUED", "PROCESSING", "RETRYING", "PROCESSING", "RETRYING", "PROCESSING", "COMPLETED"]);
  });

  it("gives 50 concurrent enqueues with one idempotency key one row and one id", async () => {
    const results = await Promise.all(
      Array.from({ length: 50 }, () => conveyor.jobs.enqueue({ type: "quick", owner: "alice", idempotencyKey: "order-1234" }, "alice")),
    );
    expect(new Set(results.map((result) => result.job.id)).size).toBe(1);
    expect(results.filter((result) => result.created)).toHaveLength(1);
    const rows = await conveyor.database.pool.query("SELECT count(*)::int AS n FROM processing_jobs WHERE idempotency_key = 'order-1234'");
    expect(rows.rows[0].n).toBe(1);
    await eventually(async () => (await statusOf(results[0]!.job.id)) === "COMPLETED");
    expect(calls.get(results[0]!.job.id)).toBe(1);
  });

  it("gives 50 concurrent enqueues for one (assessment, correlation id, schema version) one row", async () => {
    const assessment = await conveyor.database.prisma.assessment.create({ data: { owner: "alice", kind: "skills-check" } });
    const results = await Promise.all(
      Array.from({ length: 50 }, () =>
        enqueueJob(conveyor.database.pool, { type: "quick", owner: "alice", assessmentId: assessment.id, correlationId: "c-1", schemaVersion: "v1" }, { actor: "alice" }),
      ),
    );
    expect(new Set(results.map((result) => result.job.id)).size).toBe(1);
    expect(results.filter((result) => result.created)).toHaveLength(1);
  });

  it("cancels a running job by aborting its handler's signal", async () => {
    const { job } = await conveyor.jobs.enqueue({ type: "waits-for-signal", owner: "alice" }, "alice");
    await eventually(async () => (await conveyor.jobs.find(job.id))!.stage === "waiting");
    expect((await conveyor.jobs.cancel(job.id, "alice")).outcome).toBe("requested");
    await eventually(async () => (await statusOf(job.id)) === "CANCELLED");
    const done = await conveyor.jobs.find(job.id);
    expect([done!.errorCode, done!.lockedBy]).toEqual(["CANCELLED", null]);
    expect(calls.get(job.id)).toBe(1);
  });

  it("times out a handler through its signal, retries it, and fails it with TIMEOUT when attempts run out", async () => {
    const { job } = await conveyor.jobs.enqueue({ type: "waits-for-signal", owner: "alice", maxAttempts: 2, timeoutMs: 50 }, "alice");
    await eventually(async () => (await statusOf(job.id)) === "FAILED");
    const done = await conveyor.jobs.find(job.id);
    expect([done!.errorCode, done!.retryCount, done!.errorRecoverable]).toEqual(["TIMEOUT", 1, true]);
    expect(calls.get(job.id)).toBe(2);
  });
});

describe("graceful shutdown", () => {
  it("waits for jobs that finish within the grace period, and hands back the others", async () => {
    const gates: (() => void)[] = [];
    const handler: JobHandler = {
      type: "slow",
      run: (_payload, context) =>
        new Promise((resolve, reject) => {
          gates.push(() => resolve("done"));
          context.signal.addEventListener("abort", () => reject(context.signal.reason), { once: true });
        }),
    };
    const conveyor = await startTestConveyor({ handlers: [handler], environment: { WORKER_ENABLED: "true", WORKER_CONCURRENCY: "2" } });
    try {
      const first = await conveyor.jobs.enqueue({ type: "slow", owner: "alice" }, "alice");
      const second = await conveyor.jobs.enqueue({ type: "slow", owner: "alice" }, "alice");
      await eventually(() => gates.length === 2);
      const stopping = conveyor.workerPool!.stop(300);
      gates[0]!(); // finishes within the grace period
      await stopping;
      const [done, released] = await Promise.all([conveyor.jobs.find(first.job.id), conveyor.jobs.find(second.job.id)]);
      expect(done!.status).toBe("COMPLETED");
      expect([released!.status, released!.lockedBy, released!.retryCount]).toEqual(["QUEUED", null, 0]);

      // Another pool picks the released job up.
      const { WorkerPool } = await import("../../src/jobs/worker-pool.js");
      const next = new WorkerPool({
        lifecycle: conveyor.lifecycle,
        registry: conveyor.registry,
        logger: conveyor.logger,
        concurrency: 1,
        pollIntervalMs: 50,
        heartbeatIntervalMs: 1000,
        jobTimeoutMs: 10_000,
        shutdownGraceMs: 1000,
      });
      await next.start();
      await eventually(() => gates.length === 3);
      gates[2]!();
      await eventually(async () => (await conveyor.jobs.find(second.job.id))!.status === "COMPLETED");
      await next.stop();
    } finally {
      await conveyor.dispose();
    }
  });
});

describe("enqueue's answer", () => {
  let conveyor: TestConveyor;
  beforeAll(async () => {
    conveyor = await startTestConveyor({ handlers: [{ type: "quick", run: async () => null }], environment: { WORKER_ENABLED: "false" } });
  });
  afterAll(() => conveyor?.dispose());

  it("is each created job exactly as stored: the database's times and normalized JSON, the columns' defaults", async () => {
    const inputs = [
      { type: "quick", owner: "alice" },
      { type: "quick", owner: "alice", payload: { b: 1.5, a: [1, "two", null], nested: { z: true, é: "ü\n\"" } }, priority: "HIGH" as const, maxAttempts: 7 },
      { type: "quick", owner: "bob", payload: "text", runAt: new Date(Date.now() + 3_600_000), idempotencyKey: "k-1", timeoutMs: 1500, metadata: { source: "import" } },
      { type: "quick", owner: "bob", payload: null, runAt: new Date(Date.now() - 3_600_000), correlationId: "c-1", schemaVersion: "v2" },
    ];
    const results = await conveyor.jobs.enqueueMany(inputs, "alice");
    expect(results.map((result) => result.created)).toEqual([true, true, true, true]);
    for (const { job } of results) expect(job).toEqual(await conveyor.jobs.find(job.id));
    // A job whose key exists comes back as stored too.
    const [again] = await conveyor.jobs.enqueueMany([{ type: "quick", owner: "bob", idempotencyKey: "k-1" }], "bob");
    expect(again!.created).toBe(false);
    expect(again!.job).toEqual(results[2]!.job);
    for (const runAt of [new Date(Number.NaN), new Date("+010000-01-01T00:00:00Z")]) {
      await expect(conveyor.jobs.enqueue({ type: "quick", owner: "alice", runAt }, "alice")).rejects.toMatchObject({
        problems: ["runAt must be a valid date between the years 1 and 9999"],
      });
    }
    await expect(conveyor.jobs.enqueue({ type: "quick", owner: "alice", assessmentId: "not-a-uuid" }, "alice")).rejects.toMatchObject({
      problems: ["assessmentId must be a UUID"],
    });
    for (const timeoutMs of [-1, 1.5, 2 ** 31]) {
      await expect(conveyor.jobs.enqueue({ type: "quick", owner: "alice", timeoutMs }, "alice")).rejects.toMatchObject({
        problems: ["timeoutMs must be a whole number of milliseconds from 0 to 2147483647"],
      });
    }
  });

  it("stores a payload or metadata that JSON writes as null (NaN, a function) as {}, as it stores none", async () => {
    const results = await conveyor.jobs.enqueueMany(
      [{ type: "quick", owner: "dora", payload: Number.NaN }, { type: "quick", owner: "dora", payload: () => 1, metadata: { toJSON: () => null } as never }],
      "dora",
    );
    for (const { job } of results) {
      expect(job).toMatchObject({ payload: {}, metadata: {} });
      expect(job).toEqual(await conveyor.jobs.find(job.id));
    }
  });

  it("never deadlocks two batches that share keys in opposite orders; each key gets one job", async () => {
    const keys = Array.from({ length: 40 }, (_, i) => `swap-${i}`);
    const batch = (order: string[]) => conveyor.jobs.enqueueMany(order.map((idempotencyKey) => ({ type: "quick", owner: "erin", idempotencyKey })), "erin");
    for (let round = 0; round < 5; round++) {
      const [forward, backward] = await Promise.all([batch(keys.map((key) => `${key}-${round}`)), batch([...keys].reverse().map((key) => `${key}-${round}`))]);
      const ids = new Map(forward.map((result) => [result.job.idempotencyKey, result.job.id]));
      for (const result of backward) expect(result.job.id).toBe(ids.get(result.job.idempotencyKey));
    }
  });

  it("stores an assessment id as PostgreSQL spells it, and finds its duplicate whatever the case", async () => {
    const assessmentId = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11";
    await conveyor.database.pool.query("INSERT INTO assessments (id, owner, kind) VALUES ($1, 'alice', 'quiz') ON CONFLICT DO NOTHING", [assessmentId]);
    const key = { type: "quick", owner: "alice", assessmentId: assessmentId.toUpperCase(), correlationId: "c-case" };
    const [first] = await conveyor.jobs.enqueueMany([key], "alice");
    expect(first!.job.assessmentId).toBe(assessmentId);
    expect(first!.job).toEqual(await conveyor.jobs.find(first!.job.id));
    const [again] = await conveyor.jobs.enqueueMany([key], "alice");
    expect(again).toMatchObject({ created: false, job: { id: first!.job.id } });
  });

  it("stores text with a lone UTF-16 surrogate as PostgreSQL does, with U+FFFD in its place", async () => {
    const [result] = await conveyor.jobs.enqueueMany([{ type: "quick", owner: "carol\uD800", idempotencyKey: "key-\uDC00-end" }], "carol");
    expect(result!.job).toMatchObject({ owner: "carol\uFFFD", idempotencyKey: "key-\uFFFD-end" });
    expect(result!.job).toEqual(await conveyor.jobs.find(result!.job.id));
  });
});
