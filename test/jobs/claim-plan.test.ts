import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { enqueueJobs } from "../../src/jobs/queue.js";
import * as sql from "../../src/jobs/sql.js";
import { startTestConveyor, type TestConveyor } from "../support/conveyor.js";
import { explainPrepared, planNodes as nodes, type PlanNode } from "../support/prepared-plan.js";

async function enqueueTenThousand(conveyor: TestConveyor): Promise<void> {
  for (let batch = 0; batch < 10; batch++) {
    const inputs = Array.from({ length: 1000 }, (_, index) => ({ type: "noop", owner: `user-${index % 50}`, payload: { batch, index } }));
    await enqueueJobs(conveyor.database.pool, inputs, { actor: "test" });
  }
}

/**
 * The claim of 10 as the pool runs it: prepared on the worker's own connections, so the plan
 * PostgreSQL keeps; rolled back, since EXPLAIN ANALYZE runs it. Checks what holds with statistics
 * or without: one plan kept rather than one made per claim, down the runnable index, stopping after
 * the rows it claims, and no read of more jobs than that (a hash join built on every job, say).
 */
async function checkClaimPlan(conveyor: TestConveyor): Promise<PlanNode[]> {
  const client = await conveyor.database.workerPool.connect();
  try {
    await client.query("BEGIN");
    const { plan, generic } = await explainPrepared(client, sql.CLAIM, [null, "explain", ["noop"], 10, []]);
    await client.query("ROLLBACK");
    expect(generic).toBe(true);
    const all = nodes(plan);
    const runnable = all.find((node) => node["Index Name"] === "processing_jobs_runnable_idx");
    expect(runnable?.["Node Type"]).toBe("Index Scan");
    const reads = all.filter((node) => node["Relation Name"] === "processing_jobs" && node["Node Type"] !== "ModifyTable");
    expect(reads.map((node) => node["Actual Rows"]).filter((rows) => rows! > 10)).toEqual([]);
    return all;
  } finally {
    client.release();
  }
}

describe("the claim's plan", () => {
  let conveyor: TestConveyor;
  beforeAll(async () => {
    conveyor = await startTestConveyor({ handlers: [{ type: "noop", run: async () => null }], start: false });
  });
  afterAll(() => conveyor?.dispose());

  it("walks the runnable index in order on a fresh, never-analyzed table holding 10,000 waiting jobs", async () => {
    await enqueueTenThousand(conveyor);
    const { rows } = await conveyor.database.pool.query<{ reltuples: number; last_analyze: Date | null; last_autoanalyze: Date | null }>(
      `SELECT c.reltuples, s.last_analyze, s.last_autoanalyze FROM pg_class c JOIN pg_stat_user_tables s ON s.relid = c.oid WHERE c.relname = 'processing_jobs'`,
    );
    // The situation under test: the planner knows nothing about the rows just written.
    expect(rows[0]!.last_analyze).toBeNull();

    const all = await checkClaimPlan(conveyor);
    expect(all.filter((node) => node["Node Type"] === "Sort")).toEqual([]);
    expect(all.filter((node) => node["Relation Name"] === "processing_jobs" && /Seq Scan|Bitmap/.test(node["Node Type"]))).toEqual([]);
  });

  it("finds each job of a completion, failure, heartbeat or progress batch through the primary key, after thousands of jobs ran, with statistics or without", async () => {
    // Jobs claimed and completed leave dead entries in the heartbeat index until a vacuum; a plan
    // that reads the PROCESSING rows through it visits them all, for every job of every batch. With
    // statistics taken while few jobs ran, the generic plan a prepared statement keeps chose it.
    const { lifecycle, database } = conveyor;
    for (let round = 0; round < 6; round++) {
      const claimed = await lifecycle.claim("churn", ["noop"], 500);
      await Promise.all(claimed.map((job) => lifecycle.complete({ id: job.id, token: job.lockToken! }, null)));
    }
    for (const phase of ["never analyzed", "analyzed"]) {
      // Taken while no job runs: the planner then expects next to no PROCESSING rows.
      if (phase === "analyzed") await database.pool.query("ANALYZE processing_jobs");
      const batch = await lifecycle.claim("explain", ["noop"], 200);
      expect(batch).toHaveLength(200);
      const ids = `{${batch.map((job) => job.id).join(",")}}`;
      const tokens = `{${batch.map((job) => job.lockToken).join(",")}}`;
      const many = <T>(value: T) => batch.map(() => value);
      const statements: [name: string, pool: typeof database.workerPool, text: string, values: unknown[]][] = [
        ["complete", database.outcomePool, sql.COMPLETE_MANY, [null, ids, tokens, many("null")]],
        ["fail", database.outcomePool, sql.FAIL_MANY, [null, ids, tokens, many("RETRYING"), many(0), many("X"), many("m"), many("{}"), many(true)]],
        ["heartbeat", database.workerPool, sql.HEARTBEAT, [null, ids, tokens]],
        ["progress", database.workerPool, sql.PROGRESS_MANY, [null, ids, tokens, many("s"), many(5), many(null), many(null), many(JSON.stringify([{ stage: "s", progress: 5, at: new Date() }]))]],
      ];
      for (const [statement, pool, text, values] of statements) {
        const name = `${statement}, ${phase}`;
        const client = await pool.connect();
        try {
          await client.query("BEGIN");
          const { plan } = await explainPrepared(client, text, values);
          await client.query("ROLLBACK");
          const onJobs = nodes(plan).filter((node) => node["Relation Name"] === "processing_jobs" && node["Node Type"] !== "ModifyTable");
          expect({ name, scans: onJobs.filter((node) => node["Index Name"] !== "processing_jobs_pkey").map((node) => node["Node Type"]) }).toEqual({ name, scans: [] });
          // One probe per job: the lock, then the update, each through the primary key.
          expect({ name, probes: onJobs.map((node) => node["Actual Rows"]) }).toEqual({ name, probes: [1, 1] });
          // And nothing visits rows per job of the batch per job (a nested loop over another step's rows, say).
          const handled = (node: PlanNode) => (node["Actual Rows"] ?? 0) * (node["Actual Loops"] ?? 1);
          expect({ name, large: nodes(plan).filter((node) => handled(node) > 3 * batch.length).map((node) => `${node["Node Type"]} ×${handled(node)}`) }).toEqual({ name, large: [] });
        } finally {
          client.release();
        }
      }
      await lifecycle.release(batch.map((job) => ({ id: job.id, token: job.lockToken! })));
    }
  });
});

describe("the claim's plan once the table has statistics", () => {
  let conveyor: TestConveyor;
  beforeAll(async () => {
    conveyor = await startTestConveyor({ handlers: [{ type: "noop", run: async () => null }], start: false });
  });
  afterAll(() => conveyor?.dispose());

  it("keeps one plan for every claim, down the runnable index, reading no more jobs than it claims", async () => {
    await enqueueTenThousand(conveyor);
    await conveyor.database.pool.query("ANALYZE processing_jobs");
    // With statistics, PostgreSQL priced the claim's generic plan above its custom ones and planned
    // every claim afresh; kept, that generic plan built a hash of every job to find the ten it
    // locked (LIMIT $4 taken for a tenth of the waiting jobs).
    await checkClaimPlan(conveyor);
  });
});

describe("the claim's plan behind jobs of a higher priority that are not due yet", () => {
  let conveyor: TestConveyor;
  beforeAll(async () => {
    conveyor = await startTestConveyor({ handlers: [{ type: "noop", run: async () => null }], start: false });
  });
  afterAll(() => conveyor?.dispose());

  it("ends each priority's walk at its first job not due, reading none of the 5,000 HIGH jobs due tomorrow", async () => {
    // First in the runnable index's order, and not claimable: a single walk of the whole index
    // read all of them before it reached a due job.
    const tomorrow = new Date(Date.now() + 86_400_000);
    for (let batch = 0; batch < 5; batch++) {
      const later = Array.from({ length: 1000 }, (_, index) => ({ type: "noop", owner: "user-1", priority: "HIGH" as const, runAt: tomorrow, payload: { batch, index } }));
      await enqueueJobs(conveyor.database.pool, later, { actor: "test" });
    }
    const due = Array.from({ length: 20 }, (_, index) => ({ type: "noop", owner: "user-2", payload: { index } }));
    await enqueueJobs(conveyor.database.pool, due, { actor: "test" });

    const all = await checkClaimPlan(conveyor);
    const scans = all.filter((node) => node["Index Name"] === "processing_jobs_runnable_idx");
    // HIGH, NORMAL, LOW in that order: NORMAL fills the claim, and LOW's walk never starts.
    expect(scans.map((node) => node["Actual Rows"] ?? null)).toEqual([0, 10, 0]);
    expect(scans.map((node) => node["Rows Removed by Filter"] ?? 0)).toEqual([0, 0, 0]);
    expect(scans[2]!["Actual Loops"]).toBe(0);
  });
});
