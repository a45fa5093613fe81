import { describe, expect, it } from "vitest";
import { startTestConveyor } from "../support/conveyor.js";

const setting = async (pool: { query: (text: string) => Promise<{ rows: { value: string }[] }> }) =>
  (await pool.query("SELECT current_setting('synchronous_commit') AS value")).rows[0]!.value;

describe("worker connections", () => {
  it("commit claims, progress and heartbeats asynchronously by default, outcomes and the API durably", async () => {
    const cases: { environment: Record<string, string>; expected: { worker: string; outcomes: string } }[] = [
      { environment: {}, expected: { worker: "off", outcomes: "on" } },
      { environment: { WORKER_DURABLE_COMMITS: "true" }, expected: { worker: "on", outcomes: "on" } },
      { environment: { WORKER_ASYNC_OUTCOMES: "true" }, expected: { worker: "off", outcomes: "off" } },
    ];
    for (const { environment, expected } of cases) {
      const conveyor = await startTestConveyor({ start: false, environment });
      try {
        const found = {
          worker: await setting(conveyor.database.workerPool),
          outcomes: await setting(conveyor.database.outcomePool),
          api: await setting(conveyor.database.pool),
        };
        expect(found).toEqual({ ...expected, api: "on" });
      } finally {
        await conveyor.dispose();
      }
    }
  });
});

describe("worker connections' planner", () => {
  it("plan by index whatever the statistics, and never JIT-compile (a disabled node's cost would trigger it on every statement)", async () => {
    const conveyor = await startTestConveyor({ start: false });
    try {
      const { rows } = await conveyor.database.workerPool.query(
        `SELECT current_setting('enable_seqscan') AS seqscan, current_setting('enable_sort') AS sort, current_setting('jit') AS jit`,
      );
      expect(rows[0]).toEqual({ seqscan: "off", sort: "off", jit: "off" });
    } finally {
      await conveyor.dispose();
    }
  });
});
