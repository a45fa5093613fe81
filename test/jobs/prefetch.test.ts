import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JobHandler } from "../../src/handlers/registry.js";
import { testWorkerPool } from "../support/worker-pool.js";
import { eventually, startTestConveyor, type TestConveyor } from "../support/conveyor.js";

describe("jobs claimed ahead of free slots", () => {
  let conveyor: TestConveyor;
  const started: string[] = [];
  let release: () => void = () => {};
  const held: JobHandler = {
    type: "held",
    async run(_payload, context) {
      started.push(context.job.id);
      await new Promise<void>((resolve) => (release = resolve));
      return "done";
    },
  };
  beforeAll(async () => {
    conveyor = await startTestConveyor({ handlers: [held], start: false });
  });
  afterAll(() => conveyor?.dispose());

  const find = async (id: string) => (await conveyor.jobs.find(id))!;

  it("wait in the pool without running, are cancelled without starting, and go back to the queue on shutdown", async () => {
    const jobs = await conveyor.jobs.enqueueMany(
      Array.from({ length: 4 }, () => ({ type: "held", owner: "alice" })),
      "alice",
    );
    const ids = jobs.map((result) => result.job.id);
    const pool = testWorkerPool(conveyor, { prefetch: 2 });
    await pool.start();
    await eventually(() => started.length === 1 && pool.stats().prefetched === 2);
    const statuses = async () => Object.fromEntries(await Promise.all(ids.map(async (id) => [id, (await find(id)).status] as const)));
    // One slot, two more claimed ahead, the fourth left to other pools.
    const before = await statuses();
    const running = started[0]!;
    const ahead = ids.filter((id) => id !== running && before[id] === "PROCESSING");
    const left = ids.filter((id) => before[id] === "QUEUED");
    expect([ahead.length, left.length]).toEqual([2, 1]);

    // Cancelled while waiting here: it ends CANCELLED and its handler never runs.
    const [cancelled, next] = ahead as [string, string];
    expect((await conveyor.jobs.cancel(cancelled, "alice")).outcome).toBe("requested");
    await eventually(async () => (await find(cancelled)).status === "CANCELLED");
    release();
    await eventually(async () => (await find(running)).status === "COMPLETED");
    await eventually(() => started.length === 2);
    expect(started).toEqual([running, next]);

    // The last job was claimed ahead meanwhile; on shutdown it goes back at once, its attempt uncounted.
    await eventually(() => pool.stats().prefetched === 1);
    const stopping = pool.stop(5000);
    await eventually(async () => (await find(left[0]!)).status === "QUEUED");
    release();
    await stopping;
    expect([(await find(left[0]!)).retryCount, started.includes(left[0]!), started.includes(cancelled)]).toEqual([0, false, false]);
    expect((await find(next)).status).toBe("COMPLETED");
  });

  it("automatic: jobs of seconds are claimed for free slots alone, jobs of a millisecond many at a time", async () => {
    const slow = await startTestConveyor({
      handlers: [
        // Seconds: longer than a claim on a loaded machine by far, whose timers can fire 400 ms late.
        { type: "slow", run: () => new Promise((resolve) => setTimeout(() => resolve(null), 2000)) },
        { type: "instant", run: async () => null },
      ],
      start: false,
    });
    const pool = testWorkerPool(slow, { concurrency: 2, prefetch: "auto" });
    // How many jobs each claim asked for: the free slots plus what the pool chose to hold; and
    // with what the pool had, the slots plus the prefetch it chose then.
    const asked: number[] = [];
    const chosen: number[] = [];
    const claim = slow.lifecycle.claim.bind(slow.lifecycle);
    slow.lifecycle.claim = (workerId, types, limit, excluded) => {
      asked.push(limit);
      const { busySlots, prefetched } = pool.stats();
      chosen.push(limit + busySlots + prefetched);
      return claim(workerId, types, limit, excluded);
    };
    try {
      await slow.jobs.enqueueMany(Array.from({ length: 4 }, () => ({ type: "slow", owner: "alice" })), "alice");
      await pool.start();
      await eventually(async () => (await slow.jobs.stats(3_600_000)).counts.completed === 4, 20_000);
      expect(Math.max(...asked)).toBeLessThanOrEqual(2);

      asked.length = 0;
      chosen.length = 0;
      await slow.jobs.enqueueMany(Array.from({ length: 3000 }, () => ({ type: "instant", owner: "alice" })), "alice");
      await eventually(async () => (await slow.jobs.stats(3_600_000)).counts.completed === 3004, 30_000);
      // Many ahead of the 2 slots, up to the ceiling: at most 10 per slot, and at least 20. (What
      // one claim asks for also depends on how full the slots and the local queue are then.)
      expect(Math.max(...chosen)).toBe(22);
      expect(Math.max(...asked)).toBeGreaterThan(2);
    } finally {
      await pool.stop();
      await slow.dispose();
    }
  });
});

describe("progress reports", () => {
  it("never make a handler wait for a commit, and still leave every stage in the timeline and the latest report stored", async () => {
    const chatty: JobHandler = {
      type: "chatty",
      async run(_payload, context) {
        for (let percent = 0; percent < 1000; percent++) {
          await context.progress(percent < 500 ? "reading" : percent < 999 ? "writing" : "finishing", percent / 10, { bytesDone: percent, bytesTotal: 999 });
        }
        return "ok";
      },
    };
    const conveyor = await startTestConveyor({ handlers: [chatty], environment: { WORKER_ENABLED: "true" } });
    // Count the progress statements the worker's connections receive.
    const workerPool = conveyor.database.workerPool;
    const query = workerPool.query.bind(workerPool) as (...args: unknown[]) => unknown;
    let progressWrites = 0;
    (workerPool as { query: unknown }).query = (...args: unknown[]) => {
      if ((args[0] as { name?: string } | undefined)?.name === "conveyor-progress") progressWrites++;
      return query(...args);
    };
    try {
      const { job } = await conveyor.jobs.enqueue({ type: "chatty", owner: "alice" }, "alice");
      await eventually(async () => (await conveyor.jobs.find(job.id))!.status === "COMPLETED");
      // 1,000 reports, coalesced: a handful of writes, not one each.
      expect(progressWrites).toBeGreaterThan(0);
      expect(progressWrites).toBeLessThanOrEqual(5);
      const { rows } = await conveyor.database.pool.query("SELECT to_status, stage FROM job_events WHERE job_id = $1 ORDER BY id", [job.id]);
      expect(rows.map((row) => `${row.to_status}${row.stage ? `:${row.stage}` : ""}`)).toEqual([
        "QUEUED",
        "PROCESSING",
        "PROCESSING:reading",
        "PROCESSING:writing",
        "PROCESSING:finishing",
        "COMPLETED:finishing",
      ]);
      const stored = (await conveyor.jobs.find(job.id))!;
      expect([stored.stage, stored.progress, stored.bytesDone, stored.bytesTotal]).toEqual(["finishing", 100, 999, 999]);
    } finally {
      await conveyor.dispose();
    }
  });

});
