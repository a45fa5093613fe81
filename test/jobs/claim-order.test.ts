// Jobs of equal priority and due time are claimed in the order they were enqueued, within one batch
// too: job ids are time-ordered (UUIDv7), and claimed jobs are started in claim order. An idle pool
// that takes the first jobs from the enqueue itself (WorkerPool.offerSlots) starts them first.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JobHandler } from "../../src/handlers/registry.js";
import { eventually, startTestConveyor, type TestConveyor } from "../support/conveyor.js";
import { testWorkerPool } from "../support/worker-pool.js";

const ran: number[] = [];
const numbered: JobHandler<{ index: number }, null> = {
  type: "numbered",
  async run(payload) {
    ran.push(payload.index);
    return null;
  },
};

describe("claim order", () => {
  let conveyor: TestConveyor;
  beforeAll(async () => {
    conveyor = await startTestConveyor({ handlers: [numbered], environment: { WORKER_ENABLED: "false" } });
  });
  afterAll(() => conveyor?.dispose());

  it("runs the jobs of one batch, then of the next, in the order they were given", async () => {
    const batch = (from: number) => Array.from({ length: 30 }, (_, index) => ({ type: "numbered", owner: "alice", payload: { index: from + index } }));
    const first = await conveyor.jobs.enqueueMany(batch(0), "alice");
    const second = await conveyor.jobs.enqueueMany(batch(30), "alice");
    const ids = [...first, ...second].map((result) => result.job.id);
    expect([...ids].sort()).toEqual(ids);
    // A pool of one slot started once both batches wait: every job goes through claims.
    const pool = testWorkerPool(conveyor, { prefetch: 7 });
    await pool.start();
    try {
      await eventually(() => ran.length === 60);
      expect(ran).toEqual(Array.from({ length: 60 }, (_, index) => index));
    } finally {
      await pool.stop();
    }
  });
});

describe("claim order with a running pool", () => {
  let conveyor: TestConveyor;
  beforeAll(async () => {
    conveyor = await startTestConveyor({ handlers: [numbered], environment: { WORKER_ENABLED: "true", WORKER_CONCURRENCY: "2", REDIS_URL: "" } });
  });
  afterAll(() => conveyor?.dispose());

  it("starts the jobs an idle pool took from the enqueue first, then the rest of both batches in order", async () => {
    // Several rounds: each first batch is handed to the idle pool in part, and the statement's own
    // NOTIFY (which may arrive before its answer) wakes a claim while it runs.
    for (let round = 0; round < 5; round++) {
      await eventually(() => conveyor.workerPool!.idleSlots() === 2);
      ran.length = 0;
      const batch = (from: number) => Array.from({ length: 30 }, (_, index) => ({ type: "numbered", owner: "alice", payload: { index: from + index } }));
      const first = await conveyor.jobs.enqueueMany(batch(0), "alice");
      await conveyor.jobs.enqueueMany(batch(30), "alice");
      expect(first.slice(0, 2).map((result) => result.job.status)).toEqual(["PROCESSING", "PROCESSING"]);
      await eventually(() => ran.length === 60);
      expect(ran, `round ${round + 1}`).toEqual(Array.from({ length: 60 }, (_, index) => index));
    }
  });
});
