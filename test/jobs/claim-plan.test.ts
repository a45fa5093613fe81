import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { enqueueJobs } from "../../src/jobs/queue.js";
import * as sql from "../../src/jobs/sql.js";
import { startTestConveyor, type TestConveyor } from "../support/conveyor.js";

interface PlanNode {
  "Node Type": string;
  "Relation Name"?: string;
  "Index Name"?: string;
  "Actual Rows"?: number;
  Plans?: PlanNode[];
}

const nodes = (plan: PlanNode): PlanNode[] => [plan, ...(plan.Plans ?? []).flatMap(nodes)];

describe("the claim's plan", () => {
  let conveyor: TestConveyor;
  beforeAll(async () => {
    conveyor = await startTestConveyor({ handlers: [{ type: "noop", run: async () => null }], start: false });
  });
  afterAll(() => conveyor?.dispose());

  it("walks the runnable index in order on a fresh, never-analyzed table holding 10,000 waiting jobs", async () => {
    for (let batch = 0; batch < 10; batch++) {
      const inputs = Array.from({ length: 1000 }, (_, index) => ({ type: "noop", owner: `user-${index % 50}`, payload: { batch, index } }));
      await enqueueJobs(conveyor.database.pool, inputs, { actor: "test" });
    }
    const { rows } = await conveyor.database.pool.query<{ reltuples: number; last_analyze: Date | null; last_autoanalyze: Date | null }>(
      `SELECT c.reltuples, s.last_analyze, s.last_autoanalyze FROM pg_class c JOIN pg_stat_user_tables s ON s.relid = c.oid WHERE c.relname = 'processing_jobs'`,
    );
    // The situation under test: the planner knows nothing about the rows just written.
    expect(rows[0]!.last_analyze).toBeNull();

    // Through the worker's own connections, as the pool runs it; rolled back, since EXPLAIN ANALYZE runs it.
    const client = await conveyor.database.workerPool.connect();
    try {
      await client.query("BEGIN");
      const explained = await client.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${sql.CLAIM}`, [null, "explain", ["noop"], 10, []]);
      await client.query("ROLLBACK");
      const plan = (explained.rows[0]["QUERY PLAN"] as { Plan: PlanNode }[])[0]!.Plan;
      const all = nodes(plan);
      const onJobs = all.filter((node) => node["Relation Name"] === "processing_jobs");
      expect(all.filter((node) => node["Node Type"] === "Sort")).toEqual([]);
      expect(onJobs.filter((node) => /Seq Scan|Bitmap/.test(node["Node Type"]))).toEqual([]);
      const runnable = all.find((node) => node["Index Name"] === "processing_jobs_runnable_idx");
      expect(runnable?.["Node Type"]).toBe("Index Scan");
      // It stops after the rows it claims instead of reading every waiting job.
      expect(runnable!["Actual Rows"]).toBeLessThanOrEqual(10);
    } finally {
      client.release();
    }
  });
});
