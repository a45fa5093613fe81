// EXPLAIN (ANALYZE, BUFFERS) of every hot statement of the engine against a table of ROWS jobs (a
// week of history, 1,000,000 by default) plus BACKLOG runnable jobs, first as a burst leaves it
// (never analyzed: the planner knows nothing) and then after ANALYZE. Each statement runs on the
// connection settings the engine gives it (the worker's for claim, progress and heartbeat), as the
// prepared statement the engine runs (the plan PostgreSQL keeps for it: test/support/prepared-plan.ts),
// inside a transaction that is rolled back. Prints time, whether the plan is generic or made for
// each execution, the plan's shape, and a warning for every sequential scan of a big table or sort
// of many rows.
//   npx tsx bench/explain-hot-statements.ts            (ROWS=1000000 BACKLOG=10000)
import { randomUUID } from "node:crypto";
import { v7 as uuidv7 } from "uuid";
import pg from "pg";
import { WORKER_PLANNER_SETTINGS } from "../src/db/database.js";
import { applyMigrations } from "../src/db/migrate.js";
import { STATS_SQL } from "../src/jobs/health.js";
import { enqueueJobs } from "../src/jobs/queue.js";
import * as sql from "../src/jobs/sql.js";
import { createLogger } from "../src/logger.js";
import { createBenchDatabase } from "./support/database.js";
import { seedJobs } from "./support/seed-jobs.js";
import { explainPrepared, planNodes, type PlanNode } from "../test/support/prepared-plan.js";

const rows = Number(process.env.ROWS ?? 1_000_000);
const backlog = Number(process.env.BACKLOG ?? 10_000);
/** The statements the engine sends by name, which pg prepares once per connection; it sends the others unnamed, planned each time. */
const PREPARED = new Set([sql.ENQUEUE_MANY, sql.SELECT_JOB_DOCUMENTS, sql.CLAIM, sql.PROGRESS_MANY, sql.COMPLETE_MANY, sql.FAIL_MANY, sql.HEARTBEAT]);


const database = await createBenchDatabase();
const plain = new pg.Pool({ connectionString: database.url, max: 2 });
const worker = new pg.Pool({ connectionString: database.url, max: 2, options: WORKER_PLANNER_SETTINGS });
try {
  const client = await plain.connect();
  await applyMigrations(client, createLogger("warn"));
  client.release();
  const seeded = await seedJobs(plain, { rows, owners: 1000, eventSample: 0.1, analyze: false });
  for (let done = 0; done < backlog; done += 1000) {
    await enqueueJobs(plain, Array.from({ length: Math.min(1000, backlog - done) }, (_, i) => ({ type: "noop", owner: `user-${i % 1000}`, idempotencyKey: `key-${done + i}` })), {
      actor: "bench",
    });
  }
  console.log(`${seeded.jobs.toLocaleString("en")} jobs of history and ${backlog.toLocaleString("en")} runnable ones; statements on ${new URL(database.url).host}`);
  for (const phase of ["never analyzed", "after ANALYZE"]) {
    if (phase === "after ANALYZE") await plain.query("ANALYZE processing_jobs; ANALYZE job_events; ANALYZE audit_events");
    console.log(`\n=== ${phase}`);
    await explainAll();
  }
} finally {
  await plain.end();
  await worker.end();
  await database.drop();
}

async function explainAll() {
  const sample = (await plain.query<{ id: string; owner: string }>(`SELECT id, owner FROM processing_jobs WHERE status = 'QUEUED' ORDER BY run_at DESC LIMIT 20`)).rows;
  // A job this "worker" holds, claimed for real (rolled back with each statement's transaction).
  const withClaim = async (run: (client: pg.PoolClient, claim: { id: string; token: string }) => Promise<void>) => {
    const connection = await worker.connect();
    try {
      await connection.query("BEGIN");
      const claimed = await connection.query(sql.CLAIM, [null, "explain", ["noop"], 1, []]);
      await run(connection, { id: claimed.rows[0].id, token: claimed.rows[0].lock_token });
    } finally {
      await connection.query("ROLLBACK");
      connection.release();
    }
  };
  const ids = (n: number) => sample.slice(0, n).map((row) => row.id);

  const newJob = (owner: string, idempotencyKey: string | null, handoff = false) => {
    const fields: Record<sql.EnqueueField, unknown> = {
      id: uuidv7(), type: "noop", owner, assessment_id: null, correlation_id: randomUUID(), schema_version: "v1", idempotency_key: idempotencyKey,
      priority: "NORMAL", priority_rank: 1, max_attempts: 3, run_at: null, timeout_ms: null, payload: {}, metadata: {}, handoff,
    };
    return sql.ENQUEUE_FIELD_ORDER.map((name) => fields[name]);
  };
  await explain("enqueue, one new job and one whose idempotency key exists", plain, sql.ENQUEUE_MANY, () => [
    null,
    JSON.stringify([newJob("user-1", null), newJob("user-2", "key-2")]),
    "bench",
    null,
  ]);
  await explain("enqueue, one job handed off to an idle pool here", plain, sql.ENQUEUE_MANY, () => [null, JSON.stringify([newJob("user-3", null, true)]), "bench", "explain"]);
  await explain("enqueue's re-read of existing keys", plain, sql.FIND_EXISTING, [["key-2"], [null], ["x"], ["v1"], ["user-2"]]);
  await explain("claim 10 (worker connection)", worker, sql.CLAIM, [null, "explain", ["noop"], 10, []]);
  await withClaim((client, claim) => explainOn("complete (batch of 1)", client, sql.COMPLETE_MANY, [null, [claim.id], [claim.token], ["{}"]]));
  await withClaim((client, claim) =>
    explainOn("fail (batch of 1)", client, sql.FAIL_MANY, [null, [claim.id], [claim.token], ["RETRYING"], [0], ["WORKER_ERROR"], ["x"], ["{}"], [true]]),
  );
  await withClaim((client, claim) =>
    explainOn("progress (batch of 1, with a stage)", client, sql.PROGRESS_MANY, [null, [claim.id], [claim.token], ["reading"], [10], [null], [null], [JSON.stringify([{ stage: "reading", progress: 10, at: new Date() }])]]),
  );
  await withClaim((client, claim) => explainOn("heartbeat", client, sql.HEARTBEAT, [null, [claim.id], [claim.token]]));
  await explain("stalled recovery (batch of 500)", plain, sql.RECOVER_STALLED, [null, 300_000, 500, "stalled", 1000, 2, 60_000, 0.1]);
  await explain("job(id) reads that arrived together (10 rows as JSON)", plain, sql.SELECT_JOB_DOCUMENTS, [ids(10)]);
  await explain("queue positions of a page of 20", plain, sql.QUEUE_POSITIONS, [ids(20), null]);
  await explain("health aggregates, 1 h window", plain, STATS_SQL, [null, 3_600_000, 300_000]);
  await explain("health aggregates, 7 d window", plain, STATS_SQL, [null, 7 * 86_400_000, 300_000]);
  await explain("retention batch (1,000 finished jobs older than 7 days)", plain, sql.DELETE_FINISHED_BATCH, [null, 7 * 86_400_000, 1000]);
}

/** `values`: a function when each execution needs values of its own (new jobs' ids). */
type Values = unknown[] | (() => unknown[]);

async function explain(label: string, pool: pg.Pool, text: string, values: Values) {
  const client = await pool.connect();
  try {
    await client.query("BEGIN");
    await explainOn(label, client, text, values);
  } finally {
    await client.query("ROLLBACK");
    client.release();
  }
}

async function explainOn(label: string, client: pg.PoolClient, text: string, values: Values) {
  const report = PREPARED.has(text) ? await explainPrepared(client, text, values, { buffers: true }) : await explainUnnamed(client, text, values);
  const planKind = PREPARED.has(text) ? (report.generic ? "prepared, generic plan" : "prepared, planned per execution") : "unnamed, planned per execution";
  const nodes = planNodes(report.plan);
  const warnings = nodes
    .filter((node) => (node["Node Type"] === "Seq Scan" && /processing_jobs|job_events|audit_events/.test(node["Relation Name"] ?? "")) || (node["Node Type"] === "Sort" && (node["Actual Rows"] ?? 0) > 1000))
    .map((node) => `${node["Node Type"]} ${node["Relation Name"] ?? ""} (${node["Actual Rows"]} rows)`.trim());
  const scans = nodes
    .filter((node) => node["Relation Name"] || node["Index Name"])
    .map((node) => `${node["Node Type"]}${node["Index Name"] ? ` ${node["Index Name"]}` : node["Relation Name"] ? ` ${node["Relation Name"]}` : ""}×${(node["Actual Rows"] ?? 0) * (node["Actual Loops"] ?? 1)}`);
  const planning = report.planningMs > 0.05 ? `, planning ${report.planningMs.toFixed(2)} ms` : "";
  console.log(`${label.padEnd(62)} ${report.executionMs.toFixed(2).padStart(8)} ms  ${planKind}${planning}  ${warnings.length ? `WARNING ${warnings.join(", ")}` : "ok"}`);
  console.log(`    ${[...new Set(scans)].join(", ")}`);
}

async function explainUnnamed(client: pg.PoolClient, text: string, values: Values) {
  const { rows } = await client.query(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${text}`, typeof values === "function" ? values() : values);
  const report = (rows[0]["QUERY PLAN"] as { Plan: PlanNode; "Execution Time": number; "Planning Time": number }[])[0]!;
  return { plan: report.Plan, executionMs: report["Execution Time"], planningMs: report["Planning Time"], generic: false };
}
