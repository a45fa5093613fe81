// Throughput of the job engine, measured the way a new user meets it: every run on a fresh database
// whose jobs table was never analyzed (nothing here runs ANALYZE; autovacuum may, and each line
// says whether it had), with the engine's defaults (WORKER_DURABLE_COMMITS is passed on only when
// set in the environment).
//   1. JOBS no-op jobs enqueued through the engine in batches of 1,000, then one pool started, at
//      each of CONCURRENCY: jobs/s with the full lifecycle persisted (claim, completion, JobEvents).
//   2. The backlog series: concurrency 1 with BACKLOGS jobs waiting, timing only the processing of
//      the first BACKLOG_MEASURED of them, so the cost per job can be compared across backlogs.
//      BACKLOG_REPS times (default 3), each repetition starting one size further along, then the
//      median of each size and how far it lies from the smallest's: one line per size moves by a
//      fifth between runs on a shared machine, more than the difference being measured.
//      BACKLOG_ANALYZE=1 runs the series again with ANALYZE after each fill (what a user does not
//      have after a burst, for comparison only) and prints each size's median against the
//      never-analyzed one.
//   3. enqueue→handler-start latency into an idle pool of LATENCY_CONCURRENCY slots, one job every
//      1000/LATENCY_RATE ms, open loop: each job's clock starts at its scheduled send time, so a
//      slow enqueue counts against the engine instead of delaying the next send. Twice: enqueued
//      beside a pool of its own (an API instance and a worker instance), and through one instance
//      that runs its own pool (the server's default). Then the floor under both: a one-row INSERT
//      committed on its own, on the same cadence, what any durable enqueue costs at least.
//   npm run bench                       (DATABASE_URL defaults to the local PostgreSQL)
//   JOBS=10000 CONCURRENCY=1,10,50 BACKLOGS=10000,100000,1000000 BACKLOG_MEASURED=10000 BACKLOG_REPS=3 \
//     LATENCY_JOBS=500 LATENCY_RATE=50 LATENCY_CONCURRENCY=10 npm run bench
// An empty CONCURRENCY or BACKLOGS, or LATENCY_JOBS=0, skips that part.
import { createConveyor, type Conveyor } from "../src/app.js";
import { loadConfig } from "../src/config.js";
import type { JobHandler } from "../src/handlers/registry.js";
import { enqueueJobs } from "../src/jobs/queue.js";
import { WorkerPool } from "../src/jobs/worker-pool.js";
import { createBenchDatabase } from "./support/database.js";
import { median, percentile } from "./support/proc.js";

const jobCount = Number(process.env.JOBS ?? 10_000);
const concurrencies = (process.env.CONCURRENCY ?? "1,10,50").split(",").filter(Boolean).map(Number);
const backlogs = (process.env.BACKLOGS ?? "10000,100000,1000000").split(",").filter(Boolean).map(Number);
const backlogMeasured = Number(process.env.BACKLOG_MEASURED ?? 10_000);
// Up to this size a backlog is filled through the engine's own enqueue; above it, one SQL statement
// writes the same rows (enqueueing a million jobs 1,000 at a time would dominate the run).
const backlogEngineMax = Number(process.env.BACKLOG_ENGINE_MAX ?? 100_000);
const backlogReps = Number(process.env.BACKLOG_REPS ?? 3);
const backlogAnalyze = process.env.BACKLOG_ANALYZE === "1";
if (!Number.isInteger(backlogReps) || backlogReps < 1) throw new Error(`BACKLOG_REPS must be a whole number of at least 1, not ${process.env.BACKLOG_REPS}`);
const latencyJobs = Number(process.env.LATENCY_JOBS ?? 500);
const latencyRate = Number(process.env.LATENCY_RATE ?? 50);
const latencyConcurrency = Number(process.env.LATENCY_CONCURRENCY ?? 10);

let onRun: (payload: { due?: number }) => void = () => {};
const noop: JobHandler<{ due?: number }, null> = {
  type: "noop",
  async run(payload) {
    onRun(payload);
    return null;
  },
};

async function withConveyor<T>(concurrency: number, work: (conveyor: Conveyor) => Promise<T>, workerEnabled = false): Promise<T> {
  const database = await createBenchDatabase();
  const config = loadConfig({
    DATABASE_URL: database.url,
    PORT: "0",
    LOG_LEVEL: "warn",
    WORKER_ENABLED: String(workerEnabled),
    DATABASE_POOL_SIZE: "30",
    WORKER_CONCURRENCY: String(concurrency),
    // The engine's knobs, passed on only when set: otherwise the defaults are measured.
    ...Object.fromEntries(
      ["WORKER_DURABLE_COMMITS", "WORKER_ASYNC_OUTCOMES", "WORKER_PREFETCH"].flatMap((name) => (process.env[name] ? [[name, process.env[name]!]] : [])),
    ),
  });
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
    // The engine's defaults, as a user's server would run them.
    prefetch: conveyor.config.worker.prefetch,
    pollIntervalMs: conveyor.config.worker.pollIntervalMs,
    heartbeatIntervalMs: conveyor.config.worker.heartbeatIntervalMs,
    jobTimeoutMs: conveyor.config.worker.jobTimeoutMs,
    shutdownGraceMs: 1000,
  });
}

/** Resolves once the handler has started `count` jobs, then once `count` completions are committed. */
async function processed(conveyor: Conveyor, count: number): Promise<void> {
  let started = 0;
  await new Promise<void>((resolve) => {
    onRun = () => {
      if (++started === count) resolve();
    };
  });
  // Polled only for the last few jobs still running: a poll through the whole run would take CPU
  // from the engine on a small machine.
  for (;;) {
    const { rows } = await conveyor.database.pool.query<{ n: number }>(
      "SELECT count(*)::int AS n FROM processing_jobs WHERE completed_at IS NOT NULL AND status = 'COMPLETED'",
    );
    if (rows[0]!.n >= count) return;
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

async function enqueueInBatches(conveyor: Conveyor, count: number): Promise<void> {
  for (let i = 0; i < count; i += 1000) {
    const batch = Array.from({ length: Math.min(1000, count - i) }, () => ({ type: "noop", owner: "bench" }));
    await enqueueJobs(conveyor.database.pool, batch, { actor: "bench" });
  }
}

/**
 * The rows enqueueJobs writes (the job with the columns it sets, its 'created' JobEvent and its
 * audit row) for `count` jobs, in one statement; run_at steps by a microsecond so the claim order is
 * the insertion order, as with jobs enqueued one batch after another, and the ids are UUIDv7 in that
 * order as enqueue makes them (a millisecond apart, ending now; version 7, random bits after).
 */
async function fillWithSql(conveyor: Conveyor, count: number): Promise<void> {
  await conveyor.database.pool.query(
    `WITH inserted AS (
       INSERT INTO processing_jobs (id, type, owner, assessment_id, correlation_id, schema_version, idempotency_key, priority,
         priority_rank, max_attempts, run_at, timeout_ms, payload, metadata, created_at, updated_at)
       SELECT encode(set_byte(substring(int8send((extract(epoch FROM now()) * 1000)::bigint - $1 + i) FROM 3) || substring(uuid_send(gen_random_uuid()) FROM 7), 6, (get_byte(uuid_send(gen_random_uuid()), 6) & 15) | 112), 'hex')::uuid, 'noop', 'bench', NULL, gen_random_uuid()::text, 'v1', NULL, 'NORMAL', 1, 3,
         now() - ($1 - i) * interval '1 microsecond', NULL, '{}', '{}', now(), now()
       FROM generate_series(1, $1::int) AS i
       RETURNING id, status, correlation_id, type, created_at
     ),
     events AS (INSERT INTO job_events (job_id, from_status, to_status, attempt, message, at) SELECT id, NULL, status, 1, 'created', created_at FROM inserted)
     INSERT INTO audit_events (actor, action, entity_type, entity_id, correlation_id, metadata, at)
     SELECT 'bench', 'job.created', 'ProcessingJob', id::text, correlation_id, jsonb_build_object('type', type), created_at FROM inserted`,
    [count],
  );
}

/** Whether PostgreSQL had statistics on the jobs table by the end of a run (autovacuum may have taken them). */
async function statistics(conveyor: Conveyor): Promise<string> {
  const { rows } = await conveyor.database.pool.query<{ last_analyze: Date | null; last_autoanalyze: Date | null }>(
    "SELECT last_analyze, last_autoanalyze FROM pg_stat_user_tables WHERE relname = 'processing_jobs'",
  );
  const analyzedAt = rows[0]?.last_autoanalyze ?? rows[0]?.last_analyze ?? null;
  return analyzedAt ? `autoanalyzed at ${analyzedAt.toISOString()}, during the run` : "never analyzed";
}

async function throughput(concurrency: number) {
  return withConveyor(concurrency, async (conveyor) => {
    const enqueueStart = performance.now();
    await enqueueInBatches(conveyor, jobCount);
    const enqueueSeconds = (performance.now() - enqueueStart) / 1000;
    const done = processed(conveyor, jobCount);
    const pool = startPool(conveyor, concurrency);
    const start = performance.now();
    await pool.start();
    await done;
    const seconds = (performance.now() - start) / 1000;
    await pool.stop(1000);
    const events = await conveyor.database.pool.query<{ n: number }>("SELECT count(*)::int AS n FROM job_events");
    return {
      concurrency,
      jobs: jobCount,
      jobsPerSecond: Math.round(jobCount / seconds),
      enqueuePerSecond: Math.round(jobCount / enqueueSeconds),
      jobEvents: events.rows[0]!.n,
      statistics: await statistics(conveyor),
    };
  });
}

async function backlog(size: number, analyze: boolean) {
  return withConveyor(1, async (conveyor) => {
    const fillStart = performance.now();
    const filledWith = size <= backlogEngineMax ? "enqueueJobs, batches of 1,000" : "one INSERT … SELECT generate_series (enqueue's rows)";
    if (size <= backlogEngineMax) await enqueueInBatches(conveyor, size);
    else await fillWithSql(conveyor, size);
    const fillSeconds = (performance.now() - fillStart) / 1000;
    if (analyze) await conveyor.database.pool.query("ANALYZE processing_jobs, job_events, audit_events");
    const measured = Math.min(backlogMeasured, size);
    const done = processed(conveyor, measured);
    const pool = startPool(conveyor, 1);
    const start = performance.now();
    await pool.start();
    await done;
    const seconds = (performance.now() - start) / 1000;
    await pool.stop(1000);
    return {
      backlog: size,
      filledWith,
      fillSeconds: Number(fillSeconds.toFixed(1)),
      measuredJobs: measured,
      jobsPerSecond: Math.round(measured / seconds),
      statistics: await statistics(conveyor),
    };
  });
}

/**
 * "separate": enqueued through one instance's pool of connections, run by a pool of its own, as an
 * API instance and a worker instance would (every job waits for a NOTIFY and a claim). "one
 * instance": the server's default, enqueued through conveyor.jobs.enqueue into the instance's own
 * idle pool, which takes the job from the enqueue itself (WorkerPool.offerSlots).
 */
async function latency(concurrency: number, shape: "separate" | "one instance") {
  return withConveyor(
    concurrency,
    async (conveyor) => {
      const samples: number[] = [];
      let resolveAll = () => {};
      const all = new Promise<void>((resolve) => (resolveAll = resolve));
      onRun = (payload) => {
        samples.push(performance.now() - payload.due!);
        if (samples.length === latencyJobs) resolveAll();
      };
      // Started as a user starts an instance (start() opens and warms its connections), with the
      // worker pool (one instance) or without it beside a pool of its own (separate): without
      // start(), the separate shape's first jobs each opened a connection, and their 90–180 ms
      // were its p99.
      await conveyor.start({ http: false });
      const pool = shape === "separate" ? startPool(conveyor, concurrency) : null;
      await pool?.start();
      const intervalMs = 1000 / latencyRate;
      const sends: Promise<unknown>[] = [];
      const begin = performance.now();
      for (let i = 0; i < latencyJobs; i++) {
        const due = begin + i * intervalMs;
        const wait = due - performance.now();
        if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        const job = { type: "noop", owner: "bench", payload: { due } };
        sends.push(pool ? enqueueJobs(conveyor.database.pool, [job], { actor: "bench" }) : conveyor.jobs.enqueue(job, "bench"));
      }
      await Promise.all(sends);
      const sentSeconds = (performance.now() - begin) / 1000;
      await all;
      await pool?.stop(1000);
      samples.sort((a, b) => a - b);
      const ms = (value: number) => Number(value.toFixed(2));
      return {
        shape,
        concurrency,
        jobs: latencyJobs,
        targetRatePerSecond: latencyRate,
        // Jobs over the time from the first scheduled send to the last enqueue's return.
        achievedRatePerSecond: Number((latencyJobs / sentSeconds).toFixed(1)),
        p50Ms: ms(percentile(samples, 50)),
        p95Ms: ms(percentile(samples, 95)),
        p99Ms: ms(percentile(samples, 99)),
        maxMs: ms(samples.at(-1)!),
      };
    },
    shape === "one instance",
  );
}

/**
 * What any durable enqueue costs at least here, on the same cadence and clock as `latency`: a
 * one-row INSERT that commits on its own (one round trip, one WAL flush) through the engine's pool
 * of connections, from its scheduled send to its return.
 */
async function latencyFloor() {
  return withConveyor(1, async (conveyor) => {
    const pool = conveyor.database.pool;
    await pool.query("CREATE TABLE latency_floor (id bigserial PRIMARY KEY, sent double precision NOT NULL)");
    const samples: number[] = [];
    const intervalMs = 1000 / latencyRate;
    const begin = performance.now();
    for (let i = 0; i < latencyJobs; i++) {
      const due = begin + i * intervalMs;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      await pool.query({ name: "latency-floor", text: "INSERT INTO latency_floor (sent) VALUES ($1)", values: [due] });
      samples.push(performance.now() - due);
    }
    samples.sort((a, b) => a - b);
    const ms = (value: number) => Number(value.toFixed(2));
    return { jobs: latencyJobs, p50Ms: ms(percentile(samples, 50)), p95Ms: ms(percentile(samples, 95)), p99Ms: ms(percentile(samples, 99)), maxMs: ms(samples.at(-1)!) };
  });
}

console.log(`Conveyor throughput benchmark on ${new URL(process.env.DATABASE_URL ?? "postgresql://127.0.0.1:5432").host}, Node ${process.version}; fresh database per line, no ANALYZE`);
for (const concurrency of concurrencies) console.log("throughput", JSON.stringify(await throughput(concurrency)));
/** The backlog series, BACKLOG_REPS times in rotated order: each size's median jobs/s. */
async function backlogSeries(analyze: boolean): Promise<Map<number, number>> {
  const label = analyze ? "backlog, concurrency 1, after ANALYZE" : "backlog, concurrency 1";
  const rates = new Map<number, number[]>(backlogs.map((size) => [size, []]));
  for (let rep = 0; rep < backlogReps; rep++) {
    for (let index = 0; index < backlogs.length; index++) {
      const size = backlogs[(index + rep) % backlogs.length]!;
      const line = await backlog(size, analyze);
      rates.get(size)!.push(line.jobsPerSecond);
      console.log(label, JSON.stringify({ repetition: rep + 1, ...line, ...(analyze ? { statistics: "analyzed after the fill" } : {}) }));
    }
  }
  const medians = new Map(backlogs.map((size) => [size, Math.round(median(rates.get(size)!))]));
  const smallest = medians.get(Math.min(...backlogs))!;
  const summary = backlogs.map((size) => {
    const rate = medians.get(size)!;
    return { backlog: size, medianJobsPerSecond: rate, all: rates.get(size), fromSmallestPercent: Number(((rate / smallest - 1) * 100).toFixed(1)) };
  });
  console.log(`${label}, medians of ${backlogReps}`, JSON.stringify(summary));
  return medians;
}

if (backlogs.length > 0) {
  const neverAnalyzed = await backlogSeries(false);
  if (backlogAnalyze) {
    const analyzed = await backlogSeries(true);
    const compared = backlogs.map((size) => ({
      backlog: size,
      neverAnalyzed: neverAnalyzed.get(size),
      analyzed: analyzed.get(size),
      neverAnalyzedFromAnalyzedPercent: Number(((neverAnalyzed.get(size)! / analyzed.get(size)! - 1) * 100).toFixed(1)),
    }));
    console.log("backlog, concurrency 1, never analyzed against analyzed (medians)", JSON.stringify(compared));
  }
}
if (latencyJobs > 0) {
  for (const shape of ["separate", "one instance"] as const) {
    console.log("enqueue→start latency (from the scheduled send)", JSON.stringify(await latency(latencyConcurrency, shape)));
  }
  console.log("floor: a one-row INSERT committed on its own, same cadence (from the scheduled send)", JSON.stringify(await latencyFloor()));
}
