import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { JobValidationError, UnrepresentableResultError } from "../../src/jobs/job-errors.js";
import { InvalidJobInputError } from "../../src/jobs/enqueue-errors.js";
import { JobAbortReason } from "../../src/jobs/job-errors.js";
import { enqueueJob, enqueueJobs } from "../../src/jobs/queue.js";
import type { JobHandler } from "../../src/handlers/registry.js";
import type { Job } from "../../src/jobs/types.js";
import { startTestConveyor, type TestConveyor } from "../support/conveyor.js";

// Transitions driven directly through the lifecycle with a fake worker id, so each step and the
// metadata it stores can be checked on its own.
const noop: JobHandler = { type: "noop", run: async () => null };
const WORKER = "test-worker-1";
const OTHER_WORKER = "test-worker-2";
/** What a worker holds after claiming: the job's id and its claim's token. */
const claimOf = (job: Job) => ({ id: job.id, token: job.lockToken! });
/** A claim nobody made: a stale or forged token. */
const forged = (job: Job) => ({ id: job.id, token: randomUUID() });

describe("job lifecycle", () => {
  let conveyor: TestConveyor;
  const row = async (id: string) => (await conveyor.database.pool.query("SELECT * FROM processing_jobs WHERE id = $1", [id])).rows[0];
  const events = async (id: string) =>
    (await conveyor.database.pool.query("SELECT from_status, to_status, attempt, stage, message FROM job_events WHERE job_id = $1 ORDER BY id", [id])).rows;
  const enqueue = async (extra: Record<string, unknown> = {}) =>
    (await enqueueJob(conveyor.database.pool, { type: "noop", owner: "alice", ...extra }, { actor: "alice" })).job;
  const claimOne = async (worker = WORKER) => {
    const [job] = await conveyor.lifecycle.claim(worker, ["noop"], 1);
    expect(job).toBeDefined();
    return job!;
  };

  beforeAll(async () => {
    conveyor = await startTestConveyor({ handlers: [noop], start: false, random: () => 0.5 });
  });
  afterAll(() => conveyor?.dispose());
  beforeEach(async () => {
    await conveyor.database.pool.query("DELETE FROM processing_jobs");
  });

  it("claims QUEUED → PROCESSING with start time, heartbeat and owner, highest priority first", async () => {
    const low = await enqueue({ priority: "LOW" });
    const high = await enqueue({ priority: "HIGH" });
    const claimed = await claimOne();
    expect(claimed.id).toBe(high.id);
    const stored = await row(high.id);
    expect(stored.status).toBe("PROCESSING");
    expect(stored.locked_by).toBe(WORKER);
    expect(stored.started_at).toBeInstanceOf(Date);
    expect(stored.heartbeat_at).toBeInstanceOf(Date);
    expect((await row(low.id)).status).toBe("QUEUED");
    expect(await events(high.id)).toEqual([
      { from_status: null, to_status: "QUEUED", attempt: 1, stage: null, message: "created" },
      { from_status: "QUEUED", to_status: "PROCESSING", attempt: 1, stage: null, message: null },
    ]);
  });

  it("does not claim a job whose run_at is in the future, nor types it has no handler for", async () => {
    await enqueue({ runAt: new Date(Date.now() + 60_000) });
    await enqueueJob(conveyor.database.pool, { type: "elsewhere", owner: "alice" }, { actor: "alice" });
    expect(await conveyor.lifecycle.claim(WORKER, ["noop"], 10)).toEqual([]);
  });

  it("records progress, with a JobEvent only when the stage changes", async () => {
    const job = await enqueue();
    const claim = claimOf(await claimOne());
    expect(await conveyor.lifecycle.progress(claim, { stage: "reading", percent: 10, bytesDone: 100, bytesTotal: 1000 })).toBe(true);
    expect(await conveyor.lifecycle.progress(claim, { stage: "reading", percent: 40, bytesDone: 400, bytesTotal: 1000 })).toBe(true);
    expect(await conveyor.lifecycle.progress(claim, { stage: "writing", percent: 150 })).toBe(true);
    const stored = await row(job.id);
    expect([stored.stage, stored.progress]).toEqual(["writing", 100]);
    expect((await events(job.id)).map((event) => event.stage).filter(Boolean)).toEqual(["reading", "writing"]);
    expect(await conveyor.lifecycle.progress(forged(job), { stage: "hijack", percent: 1 })).toBe(false);
  });

  it("completes with result, completion time, a non-negative duration and the lock cleared", async () => {
    const job = await enqueue();
    const claim = claimOf(await claimOne());
    expect(await conveyor.lifecycle.complete(claim, { answer: 42 })).toBe(true);
    const stored = await row(job.id);
    expect(stored.status).toBe("COMPLETED");
    expect(stored.result).toEqual({ answer: 42 });
    expect(stored.completed_at.getTime()).toBeGreaterThanOrEqual(stored.started_at.getTime());
    expect(stored.processing_time_ms).toBeGreaterThanOrEqual(0);
    expect([stored.locked_by, stored.heartbeat_at, stored.progress]).toEqual([null, null, 100]);
    expect(await conveyor.lifecycle.complete(claim, {})).toBe(false);
  });

  it("retries a recoverable failure with backoff, then fails when attempts run out", async () => {
    const job = await enqueue({ maxAttempts: 2 });
    const first = await claimOne();
    const retried = await conveyor.lifecycle.fail(first, first.lockToken!, new Error("flaky upstream"));
    expect(retried?.status).toBe("RETRYING");
    expect(retried?.retryDelayMs).toBe(1000); // random 0.5 → no jitter
    let stored = await row(job.id);
    expect(stored.retry_count).toBe(1);
    expect(stored.last_retry_at).toBeInstanceOf(Date);
    expect(stored.run_at.getTime() - stored.last_retry_at.getTime()).toBe(1000);
    expect([stored.error_code, stored.error_message, stored.error_recoverable]).toEqual(["WORKER_ERROR", "flaky upstream", true]);
    expect(stored.completed_at).toBeNull();

    await conveyor.database.pool.query("UPDATE processing_jobs SET run_at = now() WHERE id = $1", [job.id]);
    const second = await claimOne();
    expect(second.retryCount).toBe(1);
    expect((await conveyor.lifecycle.fail(second, second.lockToken!, new Error("still flaky")))?.status).toBe("FAILED");
    stored = await row(job.id);
    expect([stored.status, stored.retry_count]).toEqual(["FAILED", 1]);
    expect(stored.completed_at).toBeInstanceOf(Date);
    expect((await events(job.id)).map((event) => `${event.to_status}:${event.attempt}`)).toEqual([
      "QUEUED:1",
      "PROCESSING:1",
      "RETRYING:1",
      "PROCESSING:2",
      "FAILED:2",
    ]);
  });

  it("stores a validation failure as VALIDATION_FAILED with per-field details, never retried", async () => {
    const job = await enqueue({ maxAttempts: 5 });
    const claimed = await claimOne();
    const failure = new JobValidationError([{ field: "answers.email", rule: "format", reason: "not an address" }]);
    expect((await conveyor.lifecycle.fail(claimed, claimed.lockToken!, failure))?.status).toBe("VALIDATION_FAILED");
    const stored = await row(job.id);
    expect(stored.error_code).toBe("VALIDATION_ERROR");
    expect(stored.error_recoverable).toBe(false);
    expect(stored.error_details.failures).toEqual([{ field: "answers.email", rule: "format", reason: "not an address" }]);
    expect(stored.retry_count).toBe(0);
    expect(await conveyor.lifecycle.claim(WORKER, ["noop"], 1)).toEqual([]);
  });

  it("computes no duration without a start time, and never a negative one", async () => {
    const missing = await enqueue();
    const claim = claimOf(await claimOne());
    await conveyor.database.pool.query("UPDATE processing_jobs SET started_at = NULL WHERE id = $1", [missing.id]);
    expect(await conveyor.lifecycle.complete(claim, null)).toBe(true);
    expect((await row(missing.id)).processing_time_ms).toBeNull();

    const future = await enqueue();
    const claimed = await claimOne();
    await conveyor.database.pool.query("UPDATE processing_jobs SET started_at = now() + interval '1 hour' WHERE id = $1", [future.id]);
    await conveyor.lifecycle.fail(claimed, claimed.lockToken!, new Error("x"));
    expect((await row(future.id)).processing_time_ms).toBe(0);
  });

  it("truncates a 100 kB error message and still writes the row", async () => {
    const job = await enqueue({ maxAttempts: 1 });
    const claimed = await claimOne();
    expect((await conveyor.lifecycle.fail(claimed, claimed.lockToken!, new Error("x".repeat(100_000))))?.status).toBe("FAILED");
    const stored = await row(job.id);
    expect(stored.error_message.length).toBeLessThanOrEqual(1000);
    expect(stored.error_message).toMatch(/more characters\]$/);
  });

  it("keeps personal data out of stored errors", async () => {
    const job = await enqueue({ maxAttempts: 1 });
    const claimed = await claimOne();
    const error = Object.assign(new Error("Could not mail jane.doe@example.com at +41 79 123 45 67"), { code: "EMAIL_FAILED" });
    await conveyor.lifecycle.fail(claimed, claimed.lockToken!, error);
    const stored = await row(job.id);
    const text = JSON.stringify([stored.error_message, stored.error_details]);
    expect(text).not.toContain("jane.doe");
    expect(text).not.toContain("123 45 67");
    expect(stored.error_message).toContain("[email]");
    expect(stored.error_details.code).toBe("EMAIL_FAILED");
  });

  describe("characters PostgreSQL cannot store, from one handler, among other jobs' writes of the same moment", () => {
    const claimTwo = async () => {
      await enqueue();
      await enqueue();
      const claimed = await conveyor.lifecycle.claim(WORKER, ["noop"], 2);
      expect(claimed).toHaveLength(2);
      return claimed as [Job, Job];
    };

    it("stores progress whose stage a cut left with half a surrogate pair, or that holds a NUL, and the other jobs' too", async () => {
      const [a, b] = await claimTwo();
      const written = await Promise.all([
        conveyor.lifecycle.progress(claimOf(a), { stage: "x".repeat(199) + "😀", percent: 10 }),
        conveyor.lifecycle.progress(claimOf(b), { stage: "b\u0000", percent: 20 }),
      ]);
      expect(written).toEqual([true, true]);
      expect((await row(a.id)).stage).toBe("x".repeat(199) + "\uFFFD");
      expect((await row(b.id)).stage).toBe("b\uFFFD");
      expect((await events(b.id)).map((event) => event.stage).filter(Boolean)).toEqual(["b\uFFFD"]);
    });

    it("stores progress whose byte counts are not whole numbers (NaN, 1.5, negative), and the other jobs' too", async () => {
      const [a, b] = await claimTwo();
      const written = await Promise.all([
        conveyor.lifecycle.progress(claimOf(a), { stage: "reading", percent: 10, bytesDone: 1.5, bytesTotal: Number.NaN }),
        conveyor.lifecycle.progress(claimOf(b), { stage: "reading", percent: 20, bytesDone: -3, bytesTotal: Infinity }),
      ]);
      expect(written).toEqual([true, true]);
      expect([(await row(a.id)).bytes_done, (await row(a.id)).bytes_total]).toEqual([2, null]);
      expect([(await row(b.id)).bytes_done, (await row(b.id)).bytes_total, (await row(b.id)).progress]).toEqual([0, null, 20]);
    });

    it("stores a failure whose message and details hold a NUL and an unpaired surrogate, and the other job's failure", async () => {
      const [a, b] = await claimTwo();
      const unstorable = Object.assign(new Error("broke\u0000 at \ud800"), { code: "E\udfff" });
      const outcomes = await Promise.all([
        conveyor.lifecycle.fail(a, a.lockToken!, unstorable),
        conveyor.lifecycle.fail(b, b.lockToken!, new Error("plain")),
      ]);
      expect(outcomes.map((outcome) => outcome?.status)).toEqual(["RETRYING", "RETRYING"]);
      const stored = await row(a.id);
      expect(stored.error_message).toBe("broke\uFFFD at \uFFFD");
      expect(stored.error_details.code).toBe("E\uFFFD");
      expect((await row(b.id)).error_message).toBe("plain");
    });

    it("fails a job whose result holds an unpaired surrogate, writing nothing of it, and completes the other", async () => {
      const [a, b] = await claimTwo();
      // Refused as complete() is called (UnrepresentableResultError, which the pool turns into the
      // job's failure), before anything joins the batch the other completion is written in.
      const completed = conveyor.lifecycle.complete(claimOf(b), { text: "\\ud83d is how JSON writes it" });
      expect(() => conveyor.lifecycle.complete(claimOf(a), { text: "\ud83d" })).toThrow(UnrepresentableResultError);
      expect(() => conveyor.lifecycle.complete(claimOf(a), { text: "\ud83d" })).toThrow(/an unpaired UTF-16 surrogate/);
      expect(await completed).toBe(true);
      expect((await row(a.id)).status).toBe("PROCESSING");
      expect((await row(b.id)).result).toEqual({ text: "\\ud83d is how JSON writes it" });
    });

    it("refuses an enqueue whose payload holds what jsonb cannot store, naming the job, and keeps a backslash followed by those letters", async () => {
      const call = enqueueJobs(conveyor.database.pool, [{ type: "noop", owner: "alice", payload: { ok: true } }, { type: "noop", owner: "alice", payload: { t: "\ud800" } }], { actor: "alice" });
      await expect(call).rejects.toThrow(InvalidJobInputError);
      await expect(call).rejects.toMatchObject({ problems: ["job 2 of 2: its payload, metadata or text contains an unpaired UTF-16 surrogate, which PostgreSQL cannot store"] });
      await expect(enqueue({ payload: { t: "x\u0000" } })).rejects.toThrow(/the job's payload, metadata or text contains a NUL character/);
      expect((await conveyor.database.pool.query("SELECT count(*)::int AS n FROM processing_jobs")).rows[0].n).toBe(0);
      const kept = await enqueue({ payload: { t: "\\ud800 and \\u0000" } });
      expect((await row(kept.id)).payload).toEqual({ t: "\\ud800 and \\u0000" });
    });
  });

  it("refuses a worker whose claim was taken over", async () => {
    const job = await enqueue();
    const claimed = await claimOne();
    await conveyor.database.pool.query("UPDATE processing_jobs SET heartbeat_at = now() - interval '1 hour' WHERE id = $1", [job.id]);
    const recovered = await conveyor.lifecycle.recoverStalled(60_000);
    expect(recovered.map((change) => [change.jobId, change.status])).toEqual([[job.id, "RETRYING"]]);
    const stored = await row(job.id);
    expect([stored.error_code, stored.locked_by, stored.retry_count]).toEqual(["STALLED", null, 1]);
    await conveyor.database.pool.query("UPDATE processing_jobs SET run_at = now() WHERE id = $1", [job.id]);
    const reclaimed = await claimOne(OTHER_WORKER);
    expect(reclaimed.id).toBe(job.id);
    expect(await conveyor.lifecycle.complete(claimOf(claimed), "late")).toBe(false);
    expect(await conveyor.lifecycle.fail(claimed, claimed.lockToken!, new Error("late"))).toBeNull();
    expect((await conveyor.lifecycle.heartbeat([claimOf(claimed)])).valid.size).toBe(0);
    expect(await conveyor.lifecycle.complete(claimOf(reclaimed), "winner")).toBe(true);
    expect((await row(job.id)).result).toBe("winner");
    const audit = await conveyor.database.pool.query("SELECT action FROM audit_events WHERE entity_id = $1 ORDER BY id", [job.id]);
    expect(audit.rows.map((entry) => entry.action)).toEqual(["job.created", "job.recovered"]);
  });

  it("fails a stalled job that has no attempts left", async () => {
    const job = await enqueue({ maxAttempts: 1 });
    await claimOne();
    await conveyor.database.pool.query("UPDATE processing_jobs SET heartbeat_at = now() - interval '1 hour' WHERE id = $1", [job.id]);
    await conveyor.lifecycle.recoverStalled(60_000);
    const stored = await row(job.id);
    expect([stored.status, stored.error_code]).toEqual(["FAILED", "STALLED"]);
  });

  it("cancels a queued job at once and only asks a running one to stop", async () => {
    const queued = await enqueue();
    expect((await conveyor.lifecycle.cancel(queued.id, "alice")).outcome).toBe("cancelled");
    expect((await row(queued.id)).status).toBe("CANCELLED");
    expect((await conveyor.lifecycle.cancel(queued.id, "alice")).outcome).toBe("not-cancellable");

    const running = await enqueue();
    const claimed = await claimOne();
    expect((await conveyor.lifecycle.cancel(running.id, "alice")).outcome).toBe("requested");
    expect((await conveyor.lifecycle.heartbeat([claimOf(claimed)])).cancelRequested.has(claimed.lockToken!)).toBe(true);
    const outcome = await conveyor.lifecycle.fail(claimed, claimed.lockToken!, new Error("aborted"), new JobAbortReason("cancel", "Cancelled by request"));
    expect(outcome?.status).toBe("CANCELLED");
  });

  it("retries by hand FAILED, VALIDATION_FAILED and CANCELLED jobs with fresh attempts", async () => {
    const job = await enqueue({ maxAttempts: 1 });
    const claimed = await claimOne();
    await conveyor.lifecycle.fail(claimed, claimed.lockToken!, new Error("boom"));
    const change = await conveyor.lifecycle.retry(job.id, "olga");
    expect(change?.status).toBe("QUEUED");
    const stored = await row(job.id);
    expect([stored.retry_count, stored.error_code, stored.completed_at, stored.started_at]).toEqual([0, null, null, null]);
    expect(await conveyor.lifecycle.retry(job.id, "olga")).toBeNull();
  });

  it("releases a worker's running jobs back to the queue without counting the attempt", async () => {
    const job = await enqueue();
    const claimed = await claimOne();
    expect(await conveyor.lifecycle.release([forged(claimed)])).toBe(0);
    expect(await conveyor.lifecycle.release([claimOf(claimed)])).toBe(1);
    const stored = await row(job.id);
    expect([stored.status, stored.retry_count, stored.locked_by]).toEqual(["QUEUED", 0, null]);
    expect((await events(job.id)).at(-1)).toMatchObject({ to_status: "QUEUED", message: "released on shutdown" });
  });

  it("reports the 1-based queue position in claim order, null once not waiting", async () => {
    // Equal run_at values are ordered by id; distinct ones make the expected order explicit.
    const first = await enqueue({ runAt: new Date(Date.now() + 60_000) });
    const second = await enqueue({ runAt: new Date(Date.now() + 120_000) });
    const urgent = await enqueue({ priority: "HIGH" });
    expect(await conveyor.jobs.queuePosition(urgent.id)).toBe(1);
    expect(await conveyor.jobs.queuePosition(first.id)).toBe(2);
    expect(await conveyor.jobs.queuePosition(second.id)).toBe(3);
    await claimOne();
    expect(await conveyor.jobs.queuePosition(urgent.id)).toBeNull();
    expect(await conveyor.jobs.queuePosition(first.id)).toBe(1);
  });

  it("numbers a whole page in one statement: every priority, ties by id, and ids that are not waiting", async () => {
    await conveyor.database.pool.query(`DELETE FROM processing_jobs WHERE status IN ('QUEUED', 'RETRYING')`);
    const at = new Date(Date.now() + 3600_000);
    const low = await enqueue({ priority: "LOW", runAt: at });
    const normal = await Promise.all(Array.from({ length: 5 }, () => enqueue({ runAt: at })));
    // Due before the others: a job of a higher priority counts as ahead once it is due.
    const high = await enqueue({ priority: "HIGH", runAt: new Date(at.getTime() - 1000) });
    // Same run_at: the claim order, and so the positions, follow the ids.
    const normalInOrder = [...normal].sort((a, b) => (a.id < b.id ? -1 : 1));
    const missing = "00000000-0000-4000-8000-000000000000";
    const positions = await conveyor.jobs.queuePositions([low.id, missing, ...normal.map((job) => job.id), high.id]);
    expect(positions.get(high.id)).toBe(1);
    normalInOrder.forEach((job, index) => expect(positions.get(job.id)).toBe(2 + index));
    expect(positions.get(low.id)).toBe(7);
    expect(positions.get(missing)).toBeNull();
    // The deepest job asked about bounds the walk: asking only for the first ones changes nothing.
    const page = await conveyor.jobs.queuePositions([high.id, normalInOrder[0]!.id]);
    expect([page.get(high.id), page.get(normalInOrder[0]!.id)]).toEqual([1, 2]);
  });

  it("counts as ahead only what claims take first: a higher priority's jobs once due by the job's own due time", async () => {
    await conveyor.database.pool.query(`DELETE FROM processing_jobs WHERE status IN ('QUEUED', 'RETRYING')`);
    const inOneHour = new Date(Date.now() + 3600_000);
    const highLater = (await Promise.all(Array.from({ length: 3 }, () => enqueue({ priority: "HIGH", runAt: inOneHour })))).sort((a, b) => (a.id < b.id ? -1 : 1));
    const normalNow = await enqueue();
    const lowNow = await enqueue({ priority: "LOW" });
    const normalLater = await enqueue({ runAt: new Date(Date.now() + 2 * 3600_000) });
    const positions = await conveyor.jobs.queuePositions([normalNow, lowNow, normalLater, ...highLater].map((job) => job.id));
    // The next claim takes normalNow, then lowNow: the HIGH jobs are not due.
    expect([positions.get(normalNow.id), positions.get(lowNow.id)]).toEqual([1, 2]);
    // Due in two hours, it finds the three HIGH jobs due by then ahead of it, and normalNow.
    expect(positions.get(normalLater.id)).toBe(5);
    expect(highLater.map((job) => positions.get(job.id))).toEqual([1, 2, 3]);
    // Each alone, as in a page of its own.
    expect(await conveyor.jobs.queuePosition(lowNow.id)).toBe(2);
    expect(await conveyor.jobs.queuePosition(normalLater.id)).toBe(5);
    const claimed = await claimOne();
    expect(claimed.id).toBe(normalNow.id);
    expect(await conveyor.jobs.queuePosition(lowNow.id)).toBe(1);
  });

  it("deletes finished jobs past retention in bounded batches, with their events", async () => {
    const old = await Promise.all(Array.from({ length: 25 }, () => enqueue()));
    const recent = await enqueue();
    const waiting = await enqueue();
    await conveyor.database.pool.query(
      "UPDATE processing_jobs SET status = 'COMPLETED', completed_at = now() - interval '10 days' WHERE id = ANY($1)",
      [old.map((job) => job.id)],
    );
    await conveyor.database.pool.query("UPDATE processing_jobs SET status = 'COMPLETED', completed_at = now() WHERE id = $1", [recent.id]);
    const { deleteFinishedJobs } = await import("../../src/jobs/retention.js");
    expect(await deleteFinishedJobs(conveyor.database.pool, { maxAgeMs: 7 * 86_400_000, batchSize: 10, maxBatches: 2 })).toBe(20);
    expect(await deleteFinishedJobs(conveyor.database.pool, { maxAgeMs: 7 * 86_400_000, batchSize: 10 })).toBe(5);
    const left = await conveyor.database.pool.query("SELECT id FROM processing_jobs ORDER BY created_at");
    expect(left.rows.map((entry) => entry.id).sort()).toEqual([recent.id, waiting.id].sort());
    const orphanEvents = await conveyor.database.pool.query("SELECT count(*)::int AS n FROM job_events WHERE job_id = ANY($1)", [old.map((job) => job.id)]);
    expect(orphanEvents.rows[0].n).toBe(0);
  });
});
