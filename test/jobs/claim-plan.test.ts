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

const planOf = (rows: Record<string, unknown>[]) => (rows[0]!["QUERY PLAN"] as { Plan: PlanNode }[])[0]!.Plan;

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

  it("finds each job of a completion, failure, heartbeat or progress batch through the primary key, after thousands of jobs ran", async () => {
    // Jobs claimed and completed leave dead entries in the heartbeat index until a vacuum; a plan
    // that reads the PROCESSING rows through it visits them all, for every batch.
    const { lifecycle, database } = conveyor;
    for (let round = 0; round < 6; round++) {
      const claimed = await lifecycle.claim("churn", ["noop"], 500);
      await Promise.all(claimed.map((job) => lifecycle.complete({ id: job.id, token: job.lockToken! }, null)));
    }
    const batch = await lifecycle.claim("explain", ["noop"], 200);
    expect(batch).toHaveLength(200);
    const ids = `{${batch.map((job) => job.id).join(",")}}`;
    const tokens = `{${batch.map((job) => job.lockToken).join(",")}}`;
    const many = <T>(value: T) => batch.map(() => value);
    const statements: [name: string, pool: typeof database.workerPool, text: string, values: unknown[]][] = [
      ["complete", database.outcomePool, sql.COMPLETE_MANY, [null, ids, tokens, many("null")]],
      ["fail", database.outcomePool, sql.FAIL_MANY, [null, ids, tokens, many("RETRYING"), many(0), many("X"), many("m"), many("{}"), many(true)]],
      ["heartbeat", database.workerPool, sql.HEARTBEAT, [null, ids, tokens]],
      ["progress", database.workerPool, sql.PROGRESS_MANY, [null, ids, tokens, many("s"), many(5), many(null), many(null), ids, many("s"), many(5), many(new Date())]],
    ];
    for (const [name, pool, text, values] of statements) {
      const client = await pool.connect();
      try {
        await client.query("BEGIN");
        const explained = await client.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${text}`, values);
        await client.query("ROLLBACK");
        const onJobs = nodes(planOf(explained.rows)).filter((node) => node["Relation Name"] === "processing_jobs" && node["Node Type"] !== "ModifyTable");
        expect({ name, scans: onJobs.filter((node) => node["Index Name"] !== "processing_jobs_pkey").map((node) => node["Node Type"]) }).toEqual({ name, scans: [] });
        // One probe per job: the lock, then the update, each through the primary key.
        expect({ name, probes: onJobs.map((node) => node["Actual Rows"]) }).toEqual({ name, probes: [1, 1] });
      } finally {
        client.release();
      }
    }
  });
});
