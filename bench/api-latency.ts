// API latency with a week of history in the table (1,000,000 jobs by default): job(id), the first
// page of jobs(first: 20) for one owner, and queueHealth, over HTTP with real tokens, against one
// Conveyor in a child process (WORKER_ENABLED=false, PORT=0). Prints p50/p95/p99 and requests/s,
// the busy cores of client, server and PostgreSQL, then EXPLAIN (ANALYZE, BUFFERS) of every
// statement those requests sent to PostgreSQL (Prisma's and src/jobs/health.ts's).
//
//   npx tsx bench/api-latency.ts
//   ROWS=1000000 REQUESTS=2000 CONCURRENCY=1,10 UNCACHED_REQUESTS=200 PLANS=1 npx tsx bench/api-latency.ts
//
// DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/postgres) names the server; a fresh
// database conveyor_bench_<random> is created there and dropped at the end, Ctrl-C included.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import http from "node:http";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import { applyMigrations } from "../src/db/migrate.js";
import { signToken } from "../src/graphql/auth.js";
import { createLogger } from "../src/logger.js";
import { profileFlags, serverEnvironment, startChild, type Child } from "./support/child.js";
import { createBenchDatabase } from "./support/database.js";
import { cpuMeter, ownCpuSeconds, percentile } from "./support/proc.js";
import { seedJobs } from "./support/seed-jobs.js";

const rows = Number(process.env.ROWS ?? 1_000_000);
const owners = Number(process.env.OWNERS ?? 1000);
const requests = Number(process.env.REQUESTS ?? 2000);
const warmup = Number(process.env.WARMUP ?? 200);
const concurrencies = (process.env.CONCURRENCY ?? "1,10").split(",").map(Number);
const uncachedRequests = Number(process.env.UNCACHED_REQUESTS ?? 200);
const showPlans = process.env.PLANS !== "0";
const secret = "api-latency-bench-secret-0123456789abcdef";
const TARGET_P99_MS: Record<string, number> = { "job(id)": 10, "jobs(first: 20)": 20, queueHealth: 100 };
// The shipped server shares one health computation for HEALTH_CACHE_MS, so most of its queueHealth
// requests are cache hits; the uncached server computes it on every request. Both are reported,
// labelled, since only the second measures the health SQL.
const CACHED_HEALTH = "queueHealth (cached, HEALTH_CACHE_MS=2000)";
const UNCACHED_HEALTH = "queueHealth (uncached)";

const QUERIES = {
  job: `query Job($id: ID!) { job(id: $id) { id type status stage progress priority retryCount createdAt startedAt completedAt processingTimeMs error { category message } } }`,
  jobWithEvents: `query JobTimeline($id: ID!) { job(id: $id) { id type status progress createdAt completedAt processingTimeMs error { category message } events { toStatus stage at } } }`,
  jobs: `query MyJobs { jobs(first: 20) { edges { cursor node { id type status progress createdAt completedAt error { category message } } } pageInfo { hasNextPage endCursor } } }`,
  queueHealth: `query Health { queueHealth { status reasons checkedAt stats { counts { queued processing retrying completed failed validationFailed cancelled } successRate averageProcessingMs averageQueueMs throughput { lastHour lastDay lastWeek } stalled oldestQueuedAgeMs failuresByCategory { category count } byType { type status count } } } }`,
};

const database = await createBenchDatabase();
const pool = new pg.Pool({ connectionString: database.url, max: 2 });
const children: Child[] = [];
const scratch = mkdtempSync(path.join(tmpdir(), "conveyor-bench-"));
let cleaned: Promise<void> | null = null;
const cleanup = () =>
  (cleaned ??= (async () => {
    await Promise.all(children.map((child) => child.stop().catch(() => undefined)));
    await pool.end().catch(() => undefined);
    await database.drop();
    rmSync(scratch, { recursive: true, force: true });
    console.log(`dropped ${new URL(database.url).pathname.slice(1)}`);
  })());
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => void cleanup().finally(() => process.exit(130)));
}

const results: { label: string; concurrency: number; p50: number; p95: number; p99: number; rps: number; cores: Record<string, number> }[] = [];

try {
  console.log(`database ${new URL(database.url).pathname.slice(1)} on ${new URL(database.url).host}`);
  const client = await pool.connect();
  await applyMigrations(client, createLogger("warn"));
  client.release();
  const seeded = await seedJobs(pool, { rows, owners, eventSample: 0.1 });
  console.log(
    `seeded ${seeded.jobs.toLocaleString("en")} jobs (${seeded.owners} owners) and ${seeded.events.toLocaleString("en")} job events in ${seeded.seconds.toFixed(1)} s, VACUUM ANALYZE included`,
  );
  console.log(`  by status: ${Object.entries(seeded.byStatus).map(([status, count]) => `${status} ${count.toLocaleString("en")}`).join(", ")}`);
  const sizes = await pool.query<{ name: string; size: string }>(
    `SELECT c.relname AS name, pg_size_pretty(pg_relation_size(c.oid)) AS size FROM pg_class c
     WHERE c.relname LIKE 'processing_jobs%' OR c.relname LIKE 'job_events%' ORDER BY pg_relation_size(c.oid) DESC`,
  );
  console.log(`  sizes: ${sizes.rows.map((row) => `${row.name} ${row.size}`).join(", ")}`);
  const counters = await pool.query<{ rows: number }>(`SELECT count(*)::int AS rows FROM job_outcome_counts`);
  console.log(`  outcome counters (what queueHealth reads): ${counters.rows[0]!.rows.toLocaleString("en")} rows, a week by the hour and the last two hours by the minute`);

  // Random jobs anywhere in the table, and every owner (with a token each).
  const sample = (await pool.query<{ id: string; owner: string }>(`SELECT id, owner FROM processing_jobs TABLESAMPLE BERNOULLI (1)`)).rows;
  const ownerList = (await pool.query<{ owner: string }>(`SELECT DISTINCT owner FROM processing_jobs`)).rows.map((row) => row.owner);
  const tokens = new Map<string, string>();
  for (const owner of ownerList) tokens.set(owner, await signToken(secret, { id: owner, role: "user" }));
  const operatorToken = await signToken(secret, { id: "olga", role: "operator" });

  const environment = (extra: Record<string, string>) => serverEnvironment(database.url, secret, { WORKER_ENABLED: "false", ...extra });

  // --- the shipped configuration (queue health shared for HEALTH_CACHE_MS = 2 s, set explicitly so the label holds) ---
  const sqlLog = path.join(scratch, "statements.json");
  // PROFILE=<directory>: a V8 CPU profile of the server (written when it stops).
  const nodeArgs = profileFlags();
  const server = await startChild("api-server.ts", { env: environment({ HEALTH_CACHE_MS: "2000", BENCH_SQL_LOG: sqlLog }), nodeArgs });
  children.push(server);
  const call = httpCaller(server.url);
  const random = mulberry32(7);
  const pick = <T>(items: T[]) => items[Math.floor(random() * items.length)]!;

  // Every response is checked: a GraphQL error stops the benchmark rather than being timed.
  const requestsOf = {
    "job(id)": () => {
      const job = pick(sample);
      return call(QUERIES.job, { id: job.id }, tokens.get(job.owner)!);
    },
    "job(id) + events": () => {
      const job = pick(sample);
      return call(QUERIES.jobWithEvents, { id: job.id }, tokens.get(job.owner)!);
    },
    "jobs(first: 20)": () => call(QUERIES.jobs, {}, tokens.get(pick(ownerList))!),
    [CACHED_HEALTH]: () => call(QUERIES.queueHealth, {}, operatorToken),
  };

  const health = await call(QUERIES.queueHealth, {}, operatorToken);
  console.log(`first queueHealth (computed, nothing cached): ${health.ms.toFixed(1)} ms`);
  // Warm the server (V8 optimizes the hot paths after a few thousand requests) and the caches.
  for (const request of Object.values(requestsOf)) {
    await Promise.all(Array.from({ length: 10 }, async () => {
      for (let i = 0; i < 100; i++) await request();
    }));
  }
  console.log(`\n${requests} requests per line after ${warmup} warm-up requests (and 1,000 of each kind before the first line); keep-alive HTTP/1.1, one connection per concurrent caller`);
  for (const concurrency of concurrencies) {
    for (const [label, request] of Object.entries(requestsOf)) {
      results.push(await measure(label, concurrency, requests, request, server.pid));
    }
  }
  await server.stop();

  // --- queueHealth computed on every request (HEALTH_CACHE_MS=0): the SQL's own cost ---
  const uncachedSqlLog = path.join(scratch, "statements-uncached.json");
  const uncached = await startChild("api-server.ts", { env: environment({ HEALTH_CACHE_MS: "0", BENCH_SQL_LOG: uncachedSqlLog }) });
  children.push(uncached);
  const callUncached = httpCaller(uncached.url);
  console.log(`\nqueueHealth with HEALTH_CACHE_MS=0 (every request runs the health SQL), ${uncachedRequests} requests per line`);
  for (const concurrency of concurrencies) {
    results.push(await measure(UNCACHED_HEALTH, concurrency, uncachedRequests, () => callUncached(QUERIES.queueHealth, {}, operatorToken), uncached.pid));
  }
  await uncached.stop();
  const statements = mergeStatements([sqlLog, uncachedSqlLog]);

  console.log(`\nstatements sent to PostgreSQL during the measurements (client round trip, from the server process):`);
  for (const statement of statements) {
    console.log(`  ${String(statement.calls).padStart(6)} calls  ${(statement.totalMs / statement.calls).toFixed(2).padStart(7)} ms avg  ${oneLine(statement.text).slice(0, 150)}`);
  }

  if (showPlans) {
    console.log(`\nEXPLAIN (ANALYZE, BUFFERS) of each, with the parameters of its first call:`);
    // Only reads: EXPLAIN ANALYZE runs the statement.
    for (const statement of statements.filter((entry) => /^\s*(SELECT|WITH)\b/i.test(entry.text) && !/\b(INSERT|UPDATE|DELETE)\b/i.test(entry.text))) {
      console.log(`\n--- ${oneLine(statement.text).slice(0, 300)}`);
      console.log(`    parameters: ${JSON.stringify(statement.values).slice(0, 200)}`);
      for (let i = 0; i < 2; i++) await pool.query(statement.text, statement.values); // warm
      const plan = await pool.query(`EXPLAIN (ANALYZE, BUFFERS) ${statement.text}`, statement.values);
      const lines = plan.rows.map((row: Record<string, string>) => row["QUERY PLAN"]!);
      console.log(lines.map((line: string) => `    ${line}`).join("\n"));
    }
  }

  console.log(`\nsummary (p99 targets: job(id) < 10 ms, jobs(first: 20) < 20 ms, queueHealth < 100 ms):`);
  for (const result of results) {
    const target = TARGET_P99_MS[result.label.replace(/ \(.*\)$/, "")];
    const verdict = target === undefined ? "" : result.p99 < target ? `  target ${target} ms: met` : `  target ${target} ms: MISSED`;
    console.log(
      `  ${result.label.padEnd(44)} c=${String(result.concurrency).padEnd(3)} p50 ${result.p50.toFixed(2).padStart(6)}  p95 ${result.p95.toFixed(2).padStart(6)}  p99 ${result.p99.toFixed(2).padStart(6)} ms  ${String(result.rps).padStart(5)} req/s${verdict}`,
    );
  }
} finally {
  await cleanup();
}

async function measure(label: string, concurrency: number, count: number, request: () => Promise<{ ms: number }>, serverPid: number) {
  let next = 0;
  const run = async (total: number, samples: number[] | null) => {
    next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next++ < total) {
          const { ms } = await request();
          samples?.push(ms);
        }
      }),
    );
  };
  await run(warmup, null);
  const samples: number[] = [];
  const meter = cpuMeter({ client: ownCpuSeconds, server: serverPid });
  const started = performance.now();
  await run(count, samples);
  const seconds = (performance.now() - started) / 1000;
  const cores = meter();
  samples.sort((a, b) => a - b);
  const result = {
    label,
    concurrency,
    p50: percentile(samples, 50),
    p95: percentile(samples, 95),
    p99: percentile(samples, 99),
    rps: Math.round(count / seconds),
    cores,
  };
  console.log(
    `  ${label.padEnd(44)} c=${String(concurrency).padEnd(3)} p50 ${result.p50.toFixed(2).padStart(6)}  p95 ${result.p95.toFixed(2).padStart(6)}  p99 ${result.p99.toFixed(2).padStart(6)}  max ${samples[samples.length - 1]!.toFixed(1).padStart(6)} ms  ${String(result.rps).padStart(5)} req/s   busy cores: client ${cores.client}, server ${cores.server}, postgres ${cores.postgres}`,
  );
  return result;
}

/** POST /graphql over a keep-alive agent (lighter than fetch, so the client's CPU stays small). */
function httpCaller(base: string) {
  const url = new URL("/graphql", base);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  return (query: string, variables: Record<string, unknown>, token: string) =>
    new Promise<{ ms: number; body: unknown }>((resolve, reject) => {
      const body = JSON.stringify({ query, variables });
      const began = performance.now();
      const request = http.request(
        url,
        {
          method: "POST",
          agent,
          headers: { "content-type": "application/json", "content-length": Buffer.byteLength(body), authorization: `Bearer ${token}` },
        },
        (response) => {
          const chunks: Buffer[] = [];
          response.on("data", (chunk: Buffer) => chunks.push(chunk));
          response.on("end", () => {
            const ms = performance.now() - began;
            const parsed = JSON.parse(Buffer.concat(chunks).toString("utf8")) as { errors?: unknown[]; data?: unknown };
            if (response.statusCode !== 200 || parsed.errors) reject(new Error(`HTTP ${response.statusCode}: ${JSON.stringify(parsed.errors ?? parsed).slice(0, 500)}`));
            else resolve({ ms, body: parsed.data });
          });
          response.on("error", reject);
        },
      );
      request.on("error", reject);
      request.end(body);
    });
}

type RecordedStatement = { text: string; values: unknown[]; calls: number; totalMs: number };

function mergeStatements(files: string[]): RecordedStatement[] {
  const merged = new Map<string, RecordedStatement>();
  for (const file of files) {
    for (const statement of JSON.parse(readFileSync(file, "utf8")) as RecordedStatement[]) {
      const existing = merged.get(statement.text);
      if (existing) {
        existing.calls += statement.calls;
        existing.totalMs += statement.totalMs;
      } else merged.set(statement.text, { ...statement });
    }
  }
  return [...merged.values()].sort((a, b) => b.totalMs - a.totalMs);
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}

/** A small seeded PRNG, so two runs ask for the same ids and owners. */
function mulberry32(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
