// Outcomes at the edges: a cancel that meets a shutdown or a claim on its way, attempts longer than
// the duration column holds, progress reported after the handler returned, and a completion whose
// answer is lost after its commit. Each test failed on the code before its fix.
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { JobContext } from "../../src/handlers/registry.js";
import { loadConfig } from "../../src/config.js";
import { jobTopic, type JobChange } from "../../src/events/messages.js";
import type { WorkerPool } from "../../src/jobs/worker-pool.js";
import { eventually, startTestConveyor, type TestConveyor } from "../support/conveyor.js";
import { testWorkerPool } from "../support/worker-pool.js";

/** A promise with its resolver outside, to hold a handler or a statement at a chosen point. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
}

describe("outcomes at the edges", () => {
  let conveyor: TestConveyor;
  let run: (context: JobContext) => Promise<unknown> = async () => "done";
  const runs = new Map<string, number>();
  const pools: WorkerPool[] = [];

  beforeAll(async () => {
    conveyor = await startTestConveyor({
      handlers: [
        {
          type: "edge",
          async run(_payload: unknown, context: JobContext) {
            runs.set(context.job.id, (runs.get(context.job.id) ?? 0) + 1);
            return run(context);
          },
        },
      ],
    });
  });
  afterEach(async () => {
    await Promise.all(pools.splice(0).map((pool) => pool.stop(100)));
    run = async () => "done";
  });
  afterAll(() => conveyor?.dispose());

  const enqueue = async () => (await conveyor.jobs.enqueue({ type: "edge", owner: "alice", maxAttempts: 3 }, "alice")).job;
  const find = async (id: string) => (await conveyor.jobs.find(id))!;
  const startPool = async (options: Parameters<typeof testWorkerPool>[1] = {}) => {
    const pool = testWorkerPool(conveyor, options);
    pools.push(pool);
    await pool.start();
    return pool;
  };

  it("a cancel requested while its pool shuts down ends the job CANCELLED: it is not handed back to run again", async () => {
    const stopped = gate();
    const mayThrow = gate();
    run = async (context) => {
      await new Promise((resolve) => context.signal.addEventListener("abort", resolve, { once: true }));
      stopped.open();
      await mayThrow.opened; // a handler's clean-up after its signal, a moment long
      throw context.signal.reason;
    };
    const pool = testWorkerPool(conveyor, { shutdownGraceMs: 5000 });
    await pool.start();
    const job = await enqueue();
    await eventually(async () => (await find(job.id)).status === "PROCESSING");
    const stopping = pool.stop(5000); // the pool no longer hears cancels
    await stopped.opened;
    expect((await conveyor.jobs.cancel(job.id, "operator")).outcome).toBe("requested");
    mayThrow.open();
    await stopping;

    const released = await find(job.id);
    expect([released.status, released.errorCode, released.retryCount, released.lockToken]).toEqual(["CANCELLED", "CANCELLED", 0, null]);
    expect(released.completedAt).not.toBeNull();
    run = async () => "ran again";
    await startPool();
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect([(await find(job.id)).status, runs.get(job.id)]).toEqual(["CANCELLED", 1]);
    const events = await conveyor.database.pool.query("SELECT to_status, message FROM job_events WHERE job_id = $1 ORDER BY id DESC LIMIT 1", [job.id]);
    expect(events.rows[0]).toEqual({ to_status: "CANCELLED", message: "cancelled on shutdown" });
  });

  it("a cancel whose notification overtakes the claim that took the job ends it CANCELLED without starting it", async () => {
    const job = await enqueue();
    const claimAnswered = gate();
    const lifecycle = conveyor.lifecycle;
    const claim = lifecycle.claim;
    lifecycle.claim = async function (this: typeof lifecycle, ...args: Parameters<typeof claim>) {
      const jobs = await claim.apply(this, args);
      if (jobs.some((claimed) => claimed.id === job.id)) await claimAnswered.opened; // the answer is still on its way
      return jobs;
    } as typeof claim;
    try {
      await startPool();
      await eventually(async () => (await find(job.id)).status === "PROCESSING");
      expect((await conveyor.jobs.cancel(job.id, "operator")).outcome).toBe("requested");
      await new Promise((resolve) => setTimeout(resolve, 200)); // the cancel's NOTIFY reaches the pool first
      claimAnswered.open();
      await eventually(async () => (await find(job.id)).status === "CANCELLED");
      expect(runs.get(job.id)).toBeUndefined();
    } finally {
      lifecycle.claim = claim;
    }
  });

  it("an attempt longer than 24.8 days completes, and one stalled that long is recovered, its duration capped", async () => {
    const long = await enqueue();
    const stalled = await enqueue();
    const recent = await enqueue();
    const claimed = await conveyor.lifecycle.claim("gone", ["edge"], 3);
    expect(claimed).toHaveLength(3);
    const monthAgo = "now() - interval '30 days'";
    await conveyor.database.pool.query(`UPDATE processing_jobs SET started_at = ${monthAgo}, heartbeat_at = ${monthAgo} WHERE id = $1`, [stalled.id]);
    await conveyor.database.pool.query(`UPDATE processing_jobs SET heartbeat_at = now() - interval '10 minutes' WHERE id = $1`, [recent.id]);
    const recovered = await conveyor.lifecycle.recoverStalled(5 * 60_000);
    expect(recovered.map((change) => change.jobId).sort()).toEqual([stalled.id, recent.id].sort());
    expect([(await find(stalled.id)).status, (await find(stalled.id)).processingTimeMs]).toEqual(["RETRYING", 2_147_483_647]);

    await conveyor.database.pool.query(`UPDATE processing_jobs SET started_at = ${monthAgo} WHERE id = $1`, [long.id]);
    const longClaim = claimed.find((job) => job.id === long.id)!;
    expect(await conveyor.lifecycle.complete({ id: long.id, token: longClaim.lockToken! }, "done")).toBe(true);
    expect([(await find(long.id)).status, (await find(long.id)).processingTimeMs]).toEqual(["COMPLETED", 2_147_483_647]);
  });

  it("refuses a retry multiplier over 100, whose backoff stalled recovery could not compute in SQL", () => {
    expect(() => loadConfig({ RETRY_MULTIPLIER: "101" })).toThrow(/RETRY_MULTIPLIER/);
    expect(loadConfig({ RETRY_MULTIPLIER: "100" }).retry.multiplier).toBe(100);
  });

  it("progress reported after the handler returned is neither published nor kept as the job's latest", async () => {
    const reported = gate();
    run = async (context) => {
      // Work the handler left running: it reports once the attempt is over.
      setTimeout(() => void context.progress("late", 50).finally(reported.open), 100);
      return "done";
    };
    await startPool();
    const job = await enqueue();
    const seen: JobChange[] = [];
    const stop = conveyor.events.listen<JobChange>(jobTopic(job.id), (change) => seen.push(change));
    try {
      await eventually(async () => (await find(job.id)).status === "COMPLETED");
      await reported.opened;
      await new Promise((resolve) => setTimeout(resolve, 100));
    } finally {
      stop();
    }
    expect(seen.map((change) => change.stage)).not.toContain("late");
    expect(seen.at(-1)?.status).toBe("COMPLETED");
    expect(conveyor.jobs.publishedProgress(job.id)).toBeNull();
  });

  it("a completion whose answer is lost after its commit is still published here, once", async () => {
    const outcomePool = conveyor.database.outcomePool;
    const query = outcomePool.query;
    let dropped = 0;
    outcomePool.query = async function (this: typeof outcomePool, ...args: unknown[]) {
      const result = await (query as (...a: unknown[]) => Promise<{ rows: unknown[] }>).apply(this, args);
      const config = args[0] as { name?: string };
      if (config?.name === "conveyor-complete" && dropped === 0 && result.rows.length > 0) {
        dropped++;
        throw Object.assign(new Error("Connection terminated unexpectedly"), { code: "ECONNRESET" });
      }
      return result;
    } as typeof query;
    try {
      await startPool();
      const job = await enqueue();
      const seen: string[] = [];
      const stop = conveyor.events.listen<JobChange>(jobTopic(job.id), (change) => seen.push(change.status));
      try {
        await eventually(() => seen.includes("COMPLETED"));
        await new Promise((resolve) => setTimeout(resolve, 200));
      } finally {
        stop();
      }
      expect(dropped).toBe(1);
      expect(seen.filter((status) => status === "COMPLETED")).toHaveLength(1);
      expect([(await find(job.id)).status, runs.get(job.id)]).toEqual(["COMPLETED", 1]);
    } finally {
      outcomePool.query = query;
    }
  });
});
