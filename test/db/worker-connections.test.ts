import { describe, expect, it } from "vitest";
import { startTestConveyor } from "../support/conveyor.js";

describe("worker connections", () => {
  it("commit asynchronously by default, durably when asked, while the API's connections stay durable", async () => {
    for (const [durable, expected] of [["false", "off"], ["true", "on"]] as const) {
      const conveyor = await startTestConveyor({ start: false, environment: { WORKER_DURABLE_COMMITS: durable } });
      try {
        const worker = await conveyor.database.workerPool.query("SELECT current_setting('synchronous_commit') AS value");
        const api = await conveyor.database.pool.query("SELECT current_setting('synchronous_commit') AS value");
        expect([worker.rows[0].value, api.rows[0].value]).toEqual([expected, "on"]);
      } finally {
        await conveyor.dispose();
      }
    }
  });
});
