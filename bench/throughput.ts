// Throughput of the job engine: N no-op jobs at several concurrencies, full lifecycle persisted
// (claim, completion, JobEvents, audit), then enqueue→handler-start latency with an idle pool.
//   npm run bench                       (DATABASE_URL defaults to the local PostgreSQL)
//   JOBS=10000 CONCURRENCY=1,10,50 LATENCY_JOBS=2000 LATENCY_RATE=500 npm run bench
import { createConveyor, type Conveyor } from "../src/app.js";
import { loadConfig } from "../src/config.js";
import type { JobHandler } from "../src/handlers/registry.js";
import { enqueueJobs } from "../src/jobs/queue.js";
import { WorkerPool } from "../src/jobs/worker-pool.js";
import { createBenchDatabase } from "./support/database.js";

const jobCount = Number(process.env.JOBS ?? 10_000);
const concurrencies = (process.env.CONCURRENCY ?? "1,10,50").split(",").map(Number);
const latencyJobs = Number(process.env.LATENCY_JOBS ?? 2000);
const latencyRate = Number(process.env.LATENCY_RATE ?? 500);

let onRun: (payload: { sent?: number }) => void = () => {};
const noop: JobHandler<{ sent?: number }, null> = {
  type: "noop",
  async run(payload) {
    onRun(payload);
    return null;
  },
};

async function withConveyor<T>(concurrency: number, work: (conveyor: Conveyor) => Promise<T>): Promise<T> {
  const database = await createBenchDatabase();
  const config = loadConfig({ DATABASE_URL: database.url, PORT: "0", LOG_LEVEL: "warn", WORKER_ENABLED: "false", DATABASE_POOL_SIZE: "30", WORKER_CONCURRENCY: String(concurrency), WORKER_DURABLE_COMMITS: process.env.WORKER_DURABLE_COMMITS ?? "false" });
  const conveyor = await createConveyor({ config, handlers: [noop] });
  try {
    return await work(conveyor);
  } finally {
    await conveyor.stop();
    await database.drop();
  }
}

function startPool(conveyor: Conveyor, concurrency: number): WorkerPool {
  return new WorkerPool({
    lifecycle: conveyor.lifecycle,
    registry: conveyor.registry,
    logger: conveyor.logger,
    connectionString: conveyor.database.url,
    concurrency,
    pollIntervalMs: 1000,
    heartbeatIntervalMs: 15_000,
    jobTimeoutMs: 60_000,
    shutdownGraceMs: 1000,
  });
}

async function waitForCompleted(conveyor: Conveyor, count: number): Promise<void> {
  for (;;) {
    const { rows } = await conveyor.database.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM processing_jobs WHERE status = 'COMPLETED'");
    if (rows[0]!.n >= count) return;
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

async function throughput(concurrency: number) {
  return withConveyor(concurrency, async (conveyor) => {
    const enqueueStart = performance.now();
    for (let i = 0; i < jobCount; i += 1000) {
      const batch = Array.from({ length: Math.min(1000, jobCount - i) }, () => ({ type: "noop", owner: "bench" }));
      await enqueueJobs(conveyor.database.pool, batch, { actor: "bench" });
    }
    const enqueueSeconds = (performance.now() - enqueueStart) / 1000;
    // A long-lived queue table has statistics; a freshly filled one gets them from autovacuum
    // within a minute. Take them now so the run measures the steady state.
    await conveyor.database.pool.query("ANALYZE processing_jobs");
    let handled = 0;
    onRun = () => void handled++;
    const pool = startPool(conveyor, concurrency);
    const start = performance.now();
    await pool.start();
    await waitForCompleted(conveyor, jobCount);
    const seconds = (performance.now() - start) / 1000;
    await pool.stop(1000);
    const events = await conveyor.database.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM job_events");
    return { concurrency, jobs: jobCount, handled, jobsPerSecond: Math.round(jobCount / seconds), enqueuePerSecond: Math.round(jobCount / enqueueSeconds), jobEvents: events.rows[0]!.n };
  });
}

async function latency(concurrency: number) {
  return withConveyor(concurrency, async (conveyor) => {
    const samples: number[] = [];
    let resolveAll = () => {};
    const all = new Promise<void>((resolve) => (resolveAll = resolve));
    onRun = (payload) => {
      samples.push(performance.now() - payload.sent!);
      if (samples.length === latencyJobs) resolveAll();
    };
    const pool = startPool(conveyor, concurrency);
    await pool.start();
    const intervalMs = 1000 / latencyRate;
    const begin = performance.now();
    for (let i = 0; i < latencyJobs; i++) {
      const due = begin + i * intervalMs;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      await enqueueJobs(conveyor.database.pool, [{ type: "noop", owner: "bench", payload: { sent: performance.now() } }], { actor: "bench" });
    }
    await all;
    await pool.stop(1000);
    samples.sort((a, b) => a - b);
    const ms = (value: number) => Number(value.toFixed(2));
    return { concurrency, jobs: latencyJobs, ratePerSecond: latencyRate, p50Ms: ms(percentile(samples, 50)), p95Ms: ms(percentile(samples, 95)), p99Ms: ms(percentile(samples, 99)) };
  });
}

console.log(`Conveyor throughput benchmark on ${new URL(process.env.DATABASE_URL ?? "postgresql://127.0.0.1:5432").host}, Node ${process.version}`);
for (const concurrency of concurrencies) console.log("throughput", JSON.stringify(await throughput(concurrency)));
for (const concurrency of concurrencies) console.log("enqueue→start latency", JSON.stringify(await latency(concurrency)));
