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
    const first = await conveyor.jobs.enqueueMany(Array.from({ length: 30 }, (_, index) => ({ type: "numbered", owner: "alice", payload: { index } })), "alice");
    const second = await conveyor.jobs.enqueueMany(Array.from({ length: 30 }, (_, index) => ({ type: "numbered", owner: "alice", payload: { index: 30 + index } })), "alice");
    const ids = [...first, ...second].map((result) => result.job.id);
    expect([...ids].sort()).toEqual(ids);
    await eventually(() => ran.length === 60);
    expect(ran).toEqual(Array.from({ length: 60 }, (_, index) => index));
  });
});
