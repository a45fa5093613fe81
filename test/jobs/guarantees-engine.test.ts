// Issue 9's engine guarantees, one test (or more) per item: each failed on the code before the fix.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { JobContext, JobHandler } from "../../src/handlers/registry.js";
import { JobAbortReason } from "../../src/jobs/job-errors.js";
import type { Claim } from "../../src/jobs/lifecycle.js";
import { WorkerPool } from "../../src/jobs/worker-pool.js";
import type { Job } from "../../src/jobs/types.js";
import { eventually, startTestConveyor, type TestConveyor } from "../support/conveyor.js";
import { graphql, tokenFor } from "../support/graphql-client.js";

/** A promise with its resolver outside, to hold a handler at a chosen point. */
function gate<T = void>() {
  let open!: (value: T) => void;
  const opened = new Promise<T>((resolve) => (open = resolve));
  return { open, opened };
}

const claimOf = (job: Job): Claim => ({ id: job.id, token: job.lockToken! });

function poolFor(conveyor: TestConveyor, options: { workerId?: string; concurrency?: number; heartbeatIntervalMs?: number } = {}) {
  return new WorkerPool({
    lifecycle: conveyor.lifecycle,
    registry: conveyor.registry,
    logger: conveyor.logger,
    connectionString: conveyor.databaseUrl,
    concurrency: options.concurrency ?? 2,
    pollIntervalMs: 50,
    heartbeatIntervalMs: options.heartbeatIntervalMs ?? 60_000,
    jobTimeoutMs: 60_000,
    shutdownGraceMs: 500,
    workerId: options.workerId,
  });
}

/** Makes a running job look stalled and recovers it, runnable again at once. */
async function stallAndRecover(conveyor: TestConveyor, jobId: string) {
  await conveyor.database.pool.query("UPDATE processing_jobs SET heartbeat_at = now() - interval '1 hour' WHERE id = $1", [jobId]);
  const recovered = await conveyor.lifecycle.recoverStalled(60_000);
  expect(recovered.map((change) => change.jobId)).toContain(jobId);
  await conveyor.database.pool.query("UPDATE processing_jobs SET run_at = now() WHERE id = $1", [jobId]);
}

describe("engine guarantees", () => {
  let conveyor: TestConveyor;
  // Per job: how many handler runs started, and how many ran at the same moment at most.
  const started = new Map<string, number>();
  const live = new Map<string, number>();
  const mostAtOnce = new Map<string, number>();
  const handlers = new Map<string, (payload: any, context: JobContext) => Promise<unknown>>();
  const pools: WorkerPool[] = [];

  const track = (type: string): JobHandler => ({
    type,
    async run(payload, context) {
      const id = context.job.id;
      started.set(id, (started.get(id) ?? 0) + 1);
      live.set(id, (live.get(id) ?? 0) + 1);
      mostAtOnce.set(id, Math.max(mostAtOnce.get(id) ?? 0, live.get(id)!));
      try {
        return await handlers.get(type)!(payload, context);
      } finally {
        live.set(id, live.get(id)! - 1);
      }
    },
  });

  beforeAll(async () => {
    for (const type of ["held", "returns", "flaky", "five-attempts"]) handlers.set(type, async () => "default");
    conveyor = await startTestConveyor({
      handlers: [track("held"), track("returns"), track("flaky"), { ...track("five-attempts"), maxAttempts: 5 }],
      environment: { RETRY_INITIAL_DELAY_MS: "10", RETRY_MAX_DELAY_MS: "20", RETRY_JITTER: "0" },
    });
  });
  afterEach(async () => {
    await Promise.all(pools.splice(0).map((pool) => pool.stop(100)));
  });
  afterAll(() => conveyor?.dispose());

  const enqueue = async (type: string, extra: Record<string, unknown> = {}) => (await conveyor.jobs.enqueue({ type, owner: "alice", ...extra }, "alice")).job;
  const find = async (id: string) => (await conveyor.jobs.find(id))!;

  it("item 3: idempotency keys are unique per owner, not global", async () => {
    const alice = await tokenFor(conveyor, "alice");
    const bob = await tokenFor(conveyor, "bob");
    const enqueueWithKey = (token: string) =>
      graphql(conveyor, `mutation { enqueueJob(input: { type: "returns", idempotencyKey: "import-42" }) { created job { id owner } } }`, {}, { token });
    const first = await enqueueWithKey(alice);
    const other = await enqueueWithKey(bob);
    const again = await enqueueWithKey(alice);
    expect(first.errors).toBeUndefined();
    expect(other.errors).toBeUndefined();
    expect(other.data.enqueueJob).toMatchObject({ created: true, job: { owner: "bob" } });
    expect(other.data.enqueueJob.job.id).not.toBe(first.data.enqueueJob.job.id);
    expect(again.data.enqueueJob).toEqual({ created: false, job: first.data.enqueueJob.job });
  });

  it("item 4: a runAt in the past is stored as now", async () => {
    const before = Date.now();
    const job = await enqueue("held", { runAt: new Date(0) });
    expect(job.runAt.getTime()).toBeGreaterThanOrEqual(before - 5);
    await conveyor.jobs.cancel(job.id, "alice");
  });

  it("item 8: a stale attempt cannot write once the job is re-claimed, even under the same worker id", async () => {
    const stale = { progressRefused: false, abortKind: "" };
    const firstRelease = gate();
    const secondRelease = gate();
    let attempt = 0;
    handlers.set("held", async (_payload, context) => {
      const mine = ++attempt;
      await context.progress("started", 10);
      await (mine === 1 ? firstRelease : secondRelease).opened;
      if (mine === 1) {
        // Refused when written: the attempt is then told through its signal.
        await context.progress("late", 50).catch(() => undefined);
        await new Promise((resolve) => (context.signal.aborted ? resolve(null) : context.signal.addEventListener("abort", resolve, { once: true })));
        stale.progressRefused = true;
        stale.abortKind = (context.signal.reason as JobAbortReason).kind;
        return "stale";
      }
      return "fresh";
    });
    // Two pools under one worker id: a restarted container whose host name and pid came back.
    const first = poolFor(conveyor, { workerId: "worker-a" });
    pools.push(first);
    await first.start();
    const job = await enqueue("held");
    await eventually(async () => (await find(job.id)).stage === "started");
    // The first pool's heartbeat never comes (60 s interval): its attempt looks stalled.
    const [firstClaim] = (await conveyor.database.pool.query("SELECT lock_token FROM processing_jobs WHERE id = $1", [job.id])).rows;

    await stallAndRecover(conveyor, job.id);
    const second = poolFor(conveyor, { workerId: "worker-a" });
    pools.push(second);
    await second.start();
    // Re-claimed (by either pool: they share the worker id) under a new token.
    await eventually(async () => {
      const [row] = (await conveyor.database.pool.query("SELECT status, lock_token FROM processing_jobs WHERE id = $1", [job.id])).rows;
      return row.status === "PROCESSING" && row.lock_token !== firstClaim.lock_token;
    });

    firstRelease.open();
    await eventually(() => stale.progressRefused);
    expect(stale.abortKind).toBe("lost");
    expect(await conveyor.lifecycle.complete({ id: job.id, token: firstClaim.lock_token }, "stale")).toBe(false);
    expect((await find(job.id)).status).toBe("PROCESSING");
    expect((await find(job.id)).stage).not.toBe("late");

    await eventually(() => attempt === 2);
    secondRelease.open();
    await eventually(async () => (await find(job.id)).status === "COMPLETED");
    expect((await find(job.id)).result).toBe("fresh");
  });

  it("item 9: completions and failures commit durably before they are published", async () => {
    // A trigger records the synchronous_commit of the transaction that wrote each outcome.
    await conveyor.database.pool.query(`
      CREATE TABLE IF NOT EXISTS outcome_commits (job_id uuid, status text, synchronous_commit text);
      CREATE OR REPLACE FUNCTION record_outcome_commit() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO outcome_commits VALUES (NEW.id, NEW.status::text, current_setting('synchronous_commit'));
        RETURN NEW;
      END $$;
      DROP TRIGGER IF EXISTS record_outcome_commit ON processing_jobs;
      CREATE TRIGGER record_outcome_commit AFTER UPDATE OF status ON processing_jobs
        FOR EACH ROW WHEN (NEW.status IN ('COMPLETED', 'FAILED', 'RETRYING')) EXECUTE FUNCTION record_outcome_commit();`);
    try {
      handlers.set("returns", async () => "ok");
      handlers.set("flaky", async () => {
        throw new Error("upstream down");
      });
      const pool = poolFor(conveyor);
      pools.push(pool);
      await pool.start();
      const completed = await enqueue("returns");
      const failed = await enqueue("flaky", { maxAttempts: 2 });
      await eventually(async () => (await find(completed.id)).status === "COMPLETED" && (await find(failed.id)).status === "FAILED");
      const { rows } = await conveyor.database.pool.query("SELECT status, synchronous_commit FROM outcome_commits WHERE job_id = ANY($1) ORDER BY status", [
        [completed.id, failed.id],
      ]);
      expect(rows).toEqual([
        { status: "COMPLETED", synchronous_commit: "on" },
        { status: "FAILED", synchronous_commit: "on" },
        { status: "RETRYING", synchronous_commit: "on" },
      ]);
    } finally {
      await conveyor.database.pool.query("DROP TRIGGER IF EXISTS record_outcome_commit ON processing_jobs");
    }
  });

  it("item 10: a job whose cancel was requested ends CANCELLED, even when its attempt then fails recoverably", async () => {
    const job = await enqueue("held", { maxAttempts: 3 });
    const [claimed] = await conveyor.lifecycle.claim("w", ["held"], 1);
    expect(claimed?.id).toBe(job.id);
    expect((await conveyor.jobs.cancel(job.id, "alice")).outcome).toBe("requested");
    const outcome = await conveyor.lifecycle.fail(claimed!, claimed!.lockToken!, new Error("connection reset"));
    expect(outcome?.status).toBe("CANCELLED");
    const stored = await find(job.id);
    expect([stored.status, stored.errorCode, stored.retryCount]).toEqual(["CANCELLED", "CANCELLED", 0]);

    // The same for a job recovered as stalled after its cancel was requested.
    const stalled = await enqueue("held", { maxAttempts: 3 });
    await conveyor.lifecycle.claim("w", ["held"], 1);
    await conveyor.jobs.cancel(stalled.id, "alice");
    await conveyor.database.pool.query("UPDATE processing_jobs SET heartbeat_at = now() - interval '1 hour' WHERE id = $1", [stalled.id]);
    await conveyor.lifecycle.recoverStalled(60_000);
    expect((await find(stalled.id)).status).toBe("CANCELLED");

    // The documented race: a handler that had already succeeded when the request came completes.
    const finished = await enqueue("held");
    const [running] = await conveyor.lifecycle.claim("w", ["held"], 1);
    await conveyor.jobs.cancel(finished.id, "alice");
    expect(await conveyor.lifecycle.complete(claimOf(running!), "done")).toBe(true);
    expect((await find(finished.id)).status).toBe("COMPLETED");
  });

  it("item 11: a result JSON cannot represent fails at once as RESULT_ERROR, the handler is not run again", async () => {
    handlers.set("returns", async (payload: { kind: string }) => {
      if (payload.kind === "bigint") return { total: 10n };
      const cycle: Record<string, unknown> = {};
      cycle.self = cycle;
      return cycle;
    });
    const pool = poolFor(conveyor);
    pools.push(pool);
    await pool.start();
    const bigint = await enqueue("returns", { payload: { kind: "bigint" }, maxAttempts: 3 });
    const circular = await enqueue("returns", { payload: { kind: "cycle" }, maxAttempts: 3 });
    for (const job of [bigint, circular]) {
      await eventually(async () => (await find(job.id)).status === "FAILED");
      const stored = await find(job.id);
      expect([stored.errorCode, stored.retryCount, stored.errorRecoverable, started.get(job.id)]).toEqual(["RESULT_ERROR", 0, false, 1]);
    }
  });

  it("item 11: a database error while recording a completion retries the write, not the handler", async () => {
    handlers.set("returns", async () => ({ ok: true }));
    const lifecycle = conveyor.lifecycle;
    const original = lifecycle.complete;
    let failures = 2;
    lifecycle.complete = function (this: typeof lifecycle, ...args: Parameters<typeof original>) {
      if (failures-- > 0) return Promise.reject(Object.assign(new Error("Connection terminated unexpectedly"), { code: "57P01" }));
      return original.apply(this, args);
    } as typeof original;
    try {
      const pool = poolFor(conveyor);
      pools.push(pool);
      await pool.start();
      const job = await enqueue("returns", { maxAttempts: 3 });
      await eventually(async () => (await find(job.id)).status === "COMPLETED");
      const stored = await find(job.id);
      expect([stored.retryCount, stored.result, started.get(job.id)]).toEqual([0, { ok: true }, 1]);
    } finally {
      lifecycle.complete = original;
    }
  });

  it("item 12: a handler that ignores its signal keeps its slot, and its job's next attempt never starts beside it", async () => {
    const release = gate();
    handlers.set("held", async (_payload, context) => {
      if (context.attempt === 1) await release.opened; // ignores the timeout's abort
      return `attempt ${context.attempt}`;
    });
    const pool = poolFor(conveyor, { concurrency: 2 });
    pools.push(pool);
    await pool.start();
    const job = await enqueue("held", { timeoutMs: 50, maxAttempts: 2 });
    // Timed out, failure recorded after the settle grace, retry due at once: still not started here.
    await eventually(async () => (await find(job.id)).status === "RETRYING", 10_000);
    expect(pool.stats()).toMatchObject({ busySlots: 1, abandonedHandlers: 1 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(started.get(job.id)).toBe(1);
    expect((await find(job.id)).status).toBe("RETRYING");
    release.open();
    await eventually(async () => (await find(job.id)).status === "COMPLETED");
    expect([started.get(job.id), mostAtOnce.get(job.id), (await find(job.id)).result]).toEqual([2, 1, "attempt 2"]);
    expect(pool.stats()).toMatchObject({ busySlots: 0, abandonedHandlers: 0 });
  });

  it("item 12: the same pool does not re-claim a recovered job while its first attempt still runs", async () => {
    const release = gate();
    handlers.set("held", async (_payload, context) => {
      if (context.attempt === 1) await release.opened;
      return `attempt ${context.attempt}`;
    });
    const pool = poolFor(conveyor, { concurrency: 4 });
    pools.push(pool);
    await pool.start();
    const job = await enqueue("held", { maxAttempts: 3 });
    await eventually(() => started.get(job.id) === 1);
    await stallAndRecover(conveyor, job.id);
    pool.wake();
    handlers.set("returns", async () => "other");
    const other = await enqueue("returns");
    await eventually(async () => (await find(other.id)).status === "COMPLETED");
    expect(started.get(job.id)).toBe(1);
    release.open();
    await eventually(async () => (await find(job.id)).status === "COMPLETED");
    expect([mostAtOnce.get(job.id), (await find(job.id)).result]).toEqual([1, "attempt 2"]);
  });

  it("item 13: shutdown aborts first, hands back only handlers that stopped, and keeps the claim of one that did not", async () => {
    const stubbornRelease = gate();
    const statusWhenAborted = new Map<string, string>();
    handlers.set("held", async (payload: { polite: boolean }, context) => {
      if (!payload.polite) return stubbornRelease.opened.then(() => "late");
      return new Promise((_resolve, reject) => {
        context.signal.addEventListener(
          "abort",
          () =>
            void conveyor.jobs.find(context.job.id).then((job) => {
              statusWhenAborted.set(context.job.id, job!.status);
              reject(context.signal.reason);
            }),
          { once: true },
        );
      });
    });
    const pool = poolFor(conveyor);
    await pool.start();
    const polite = await enqueue("held", { payload: { polite: true } });
    const stubborn = await enqueue("held", { payload: { polite: false } });
    await eventually(() => started.get(polite.id) === 1 && started.get(stubborn.id) === 1);
    await pool.stop(400);
    expect(statusWhenAborted.get(polite.id)).toBe("PROCESSING");
    const [politeAfter, stubbornAfter] = [await find(polite.id), await find(stubborn.id)];
    expect([politeAfter.status, politeAfter.retryCount]).toEqual(["QUEUED", 0]);
    // Still running here: not handed back, so no other instance can start it meanwhile.
    expect([stubbornAfter.status, stubbornAfter.lockedBy]).toEqual(["PROCESSING", pool.workerId]);
    stubbornRelease.open();
    await eventually(async () => (await find(stubborn.id)).status !== "PROCESSING");
    await conveyor.jobs.cancel(polite.id, "alice");
  });

  it("item 14: stalled recovery applies the retry backoff", async () => {
    const slow = await startTestConveyor({
      handlers: [track("held")],
      start: false,
      environment: { RETRY_INITIAL_DELAY_MS: "60000", RETRY_MAX_DELAY_MS: "600000", RETRY_JITTER: "0.1" },
    });
    try {
      const { job } = await slow.jobs.enqueue({ type: "held", owner: "alice", maxAttempts: 3 }, "alice");
      await slow.lifecycle.claim("w", ["held"], 1);
      await slow.database.pool.query("UPDATE processing_jobs SET heartbeat_at = now() - interval '1 hour' WHERE id = $1", [job.id]);
      await slow.lifecycle.recoverStalled(60_000);
      const { rows } = await slow.database.pool.query("SELECT status, EXTRACT(EPOCH FROM run_at - now()) * 1000 AS wait_ms FROM processing_jobs WHERE id = $1", [job.id]);
      expect(rows[0].status).toBe("RETRYING");
      expect(Number(rows[0].wait_ms)).toBeGreaterThan(53_000);
      expect(Number(rows[0].wait_ms)).toBeLessThan(67_000);
    } finally {
      await slow.dispose();
    }
  });

  it("item 15: a handler's maxAttempts holds when the API caller sets none", async () => {
    const token = await tokenFor(conveyor, "alice");
    const response = await graphql(conveyor, `mutation { enqueueJob(input: { type: "five-attempts", runAt: "2999-01-01T00:00:00Z" }) { job { maxAttempts } } }`, {}, { token });
    expect(response.errors).toBeUndefined();
    expect(response.data.enqueueJob.job.maxAttempts).toBe(5);
    const chosen = await graphql(conveyor, `mutation { enqueueJob(input: { type: "five-attempts", maxAttempts: 2, runAt: "2999-01-01T00:00:00Z" }) { job { maxAttempts } } }`, {}, { token });
    expect(chosen.data.enqueueJob.job.maxAttempts).toBe(2);
  });

  it("item 16: completeAssessment stays idempotent after retention deletes the job, and says so", async () => {
    const token = await tokenFor(conveyor, "alice");
    const created = await graphql(conveyor, `mutation { createAssessment(kind: "skills-check", answers: {}) { id } }`, {}, { token });
    const id = created.data.createAssessment.id;
    const complete = () =>
      graphql(conveyor, `mutation($id: ID!) { completeAssessment(id: $id) { alreadyCompleted jobExpired message job { id } } }`, { id }, { token });
    const first = (await complete()).data.completeAssessment;
    expect(first.job.id).toBeTruthy();
    await conveyor.database.pool.query("UPDATE processing_jobs SET status = 'COMPLETED', completed_at = now() - interval '30 days' WHERE id = $1", [first.job.id]);
    expect(await conveyor.jobs.cleanup(7 * 86_400_000)).toBeGreaterThanOrEqual(1);
    const again = (await complete()).data.completeAssessment;
    expect(again).toMatchObject({ alreadyCompleted: true, jobExpired: true, job: null });
    expect(again.message).toMatch(/no longer kept/);
    const jobs = await conveyor.database.pool.query("SELECT count(*)::int AS n FROM processing_jobs WHERE assessment_id = $1", [id]);
    expect(jobs.rows[0].n).toBe(0);
  });

  it("item 16: audit events are kept by default, and deleted past AUDIT_RETENTION_MAX_AGE_MS when set", async () => {
    await conveyor.database.pool.query("INSERT INTO audit_events (actor, action, entity_type, entity_id, at) VALUES ('x', 'old', 'T', 'old-1', now() - interval '400 days')");
    expect(await conveyor.maintenance.cleanupAudit()).toBe(0);
    const short = await startTestConveyor({ start: false, environment: { AUDIT_RETENTION_MAX_AGE_MS: String(30 * 86_400_000) } });
    try {
      await short.database.pool.query("INSERT INTO audit_events (actor, action, entity_type, entity_id, at) VALUES ('x', 'old', 'T', 'old-1', now() - interval '400 days'), ('x', 'new', 'T', 'new-1', now())");
      expect(await short.maintenance.cleanupAudit()).toBe(1);
      const left = await short.database.pool.query("SELECT entity_id FROM audit_events WHERE entity_type = 'T'");
      expect(left.rows).toEqual([{ entity_id: "new-1" }]);
    } finally {
      await short.dispose();
    }
  });

  it("item 17: retryJob keeps a runAt still in the future", async () => {
    const token = await tokenFor(conveyor, "alice");
    const inAnHour = new Date(Date.now() + 3_600_000);
    const job = await enqueue("returns", { runAt: inAnHour });
    await conveyor.jobs.cancel(job.id, "alice");
    const retried = await graphql(conveyor, `mutation($id: ID!) { retryJob(id: $id) { status runAt } }`, { id: job.id }, { token });
    expect(retried.errors).toBeUndefined();
    expect(retried.data.retryJob.status).toBe("QUEUED");
    expect(new Date(retried.data.retryJob.runAt).getTime()).toBe(inAnHour.getTime());
  });
});
