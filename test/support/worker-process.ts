// A worker pool in a process of its own, for the multi-process tests:
//   DATABASE_URL=… CONCURRENCY=8 MODE=record|slow node --import tsx test/support/worker-process.ts
// `record` jobs insert one row into test_runs when their handler finishes; `slow` jobs wait for
// their AbortSignal. Prints "ready <worker id>" once the pool runs; SIGTERM drains it.
import pg from "pg";
import { HandlerRegistry } from "../../src/handlers/registry.js";
import { JobLifecycle } from "../../src/jobs/lifecycle.js";
import { Maintenance } from "../../src/jobs/maintenance.js";
import { WorkerPool } from "../../src/jobs/worker-pool.js";
import { createLogger } from "../../src/logger.js";

const url = process.env.DATABASE_URL!;
const mode = process.env.MODE ?? "record";
const logger = createLogger(process.env.TEST_LOG_LEVEL ?? "silent");
const pool = new pg.Pool({ connectionString: url, max: 10 });
const lifecycle = new JobLifecycle({ pool, logger });
const registry = new HandlerRegistry();
let workerId = "";

registry.register({
  type: "multi",
  async run(_payload, context) {
    if (mode === "slow") {
      await context.progress("slow", 10);
      await new Promise((resolve, reject) => {
        const timer = setTimeout(resolve, 60_000);
        context.signal.addEventListener("abort", () => (clearTimeout(timer), reject(context.signal.reason)), { once: true });
      });
    }
    await pool.query("INSERT INTO test_runs (job_id, worker) VALUES ($1, $2)", [context.job.id, workerId]);
    return { worker: workerId };
  },
});

const workerPool = new WorkerPool({
  lifecycle,
  registry,
  logger,
  connectionString: url,
  concurrency: Number(process.env.CONCURRENCY ?? 8),
  pollIntervalMs: 200,
  heartbeatIntervalMs: Number(process.env.HEARTBEAT_MS ?? 200),
  jobTimeoutMs: 120_000,
  shutdownGraceMs: Number(process.env.GRACE_MS ?? 1000),
});
workerId = workerPool.workerId;
const maintenance = new Maintenance({
  pool,
  lifecycle,
  logger,
  stalledThresholdMs: Number(process.env.STALLED_THRESHOLD_MS ?? 300_000),
  stalledCheckIntervalMs: Number(process.env.STALLED_CHECK_INTERVAL_MS ?? 0),
  retention: { maxAgeMs: 0, intervalMs: 0, batchSize: 1, auditMaxAgeMs: 0 },
  healthWindowMs: 3600_000,
});

process.on("SIGTERM", () => {
  void (async () => {
    await maintenance.stop();
    await workerPool.stop();
    await pool.end();
    process.exit(0);
  })();
});

await workerPool.start();
maintenance.start();
console.log(`ready ${workerId}`);
