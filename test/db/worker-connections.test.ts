import pg from "pg";
import { describe, expect, it } from "vitest";
import { createConveyor } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/logger.js";
import { startTestConveyor, testEnvironment } from "../support/conveyor.js";
import { createTestDatabase } from "../support/database.js";

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

  it("commit outcomes and the API durably on a database whose default is synchronous_commit = off", async () => {
    const database = await createTestDatabase();
    const admin = new pg.Client({ connectionString: database.url });
    await admin.connect();
    try {
      await admin.query(`DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET synchronous_commit = off', current_database()); END $$`);
    } finally {
      await admin.end();
    }
    const config = loadConfig({ ...testEnvironment(), DATABASE_URL: database.url });
    const conveyor = await createConveyor({ config, logger: createLogger(config.logLevel) });
    try {
      const probe = new pg.Client({ connectionString: database.url });
      await probe.connect();
      const serverDefault = await setting(probe);
      await probe.end();
      expect(serverDefault).toBe("off");
      const found = { worker: await setting(conveyor.database.workerPool), outcomes: await setting(conveyor.database.outcomePool), api: await setting(conveyor.database.pool) };
      expect(found).toEqual({ worker: "off", outcomes: "on", api: "on" });
    } finally {
      await conveyor.stop();
      await database.drop();
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
