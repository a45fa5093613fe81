// Jobs of equal priority and due time run in the order they were enqueued, within one batch too:
// job ids are time-ordered (UUIDv7), and the claim takes equal jobs in id order.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JobHandler } from "../../src/handlers/registry.js";
import { eventually, startTestConveyor, type TestConveyor } from "../support/conveyor.js";

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
    conveyor = await startTestConveyor({ handlers: [numbered], environment: { WORKER_ENABLED: "true", WORKER_CONCURRENCY: "1" } });
  });
  afterAll(() => conveyor?.dispose());

  it("runs the jobs of one batch, then of the next, in the order they were given", async () => {
    // Several rounds: the second batch of a round is enqueued as the first one's first job (handed
    // to the idle pool) finishes, before the first batch's NOTIFY reaches the pool.
    for (let round = 0; round < 5; round++) {
      ran.length = 0;
      const batch = (from: number) => Array.from({ length: 30 }, (_, index) => ({ type: "numbered", owner: "alice", payload: { index: from + index } }));
      const first = await conveyor.jobs.enqueueMany(batch(0), "alice");
      const second = await conveyor.jobs.enqueueMany(batch(30), "alice");
      const ids = [...first, ...second].map((result) => result.job.id);
      expect([...ids].sort()).toEqual(ids);
      await eventually(() => ran.length === 60);
      expect(ran, `round ${round + 1}`).toEqual(Array.from({ length: 60 }, (_, index) => index));
      // The pool's last claim comes back empty before the next round, as after a quiet moment.
      await eventually(() => conveyor.workerPool!.idleSlots() > 0);
    }
  });
});
