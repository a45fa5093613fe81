// Jobs of equal priority and due time are claimed in the order they were enqueued, within one batch
// too: job ids are time-ordered (UUIDv7), and claimed jobs are started in claim order.
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
