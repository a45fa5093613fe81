// API latency with a large jobs table: job(id), the first page of jobs for one owner, queueHealth.
//   npx tsx bench/api-latency.ts            (ROWS=1000000 REQUESTS=2000 CONCURRENCY=10)
import { createConveyor } from "../src/app.js";
import { loadConfig } from "../src/config.js";
import { signToken } from "../src/graphql/auth.js";
import { createBenchDatabase } from "./support/database.js";

const rows = Number(process.env.ROWS ?? 1_000_000);
const requests = Number(process.env.REQUESTS ?? 2000);
const concurrencies = (process.env.CONCURRENCY ?? "1,10").split(",").map(Number);
const owners = 1000;

const database = await createBenchDatabase();

const config = loadConfig({ DATABASE_URL: database.url, PORT: "0", LOG_LEVEL: "warn", WORKER_ENABLED: "false", NODE_ENV: "production", JWT_SECRET: "bench-secret-bench-secret-bench-secret-123" });
const conveyor = await createConveyor({ config });
try {
  const seedStart = performance.now();
  // Mostly finished jobs spread over a week, ~1,000 owners, some failures and some waiting.
  await conveyor.database.pool.query(
    `INSERT INTO processing_jobs (id, type, owner, correlation_id, status, priority, priority_rank, created_at, updated_at, started_at, completed_at, processing_time_ms, error_code, run_at, payload)
     SELECT gen_random_uuid(), CASE WHEN i % 3 = 0 THEN 'report' ELSE 'assessment' END, 'user-' || (i % ${owners}), 'c-' || i,
       s.status::"JobStatus", 'NORMAL', 1, t.created, t.created, t.created + interval '1 second',
       CASE WHEN s.status IN ('COMPLETED', 'FAILED') THEN t.created + interval '2 seconds' END,
       CASE WHEN s.status IN ('COMPLETED', 'FAILED') THEN 1000 + (i % 500) END,
       CASE WHEN s.status = 'FAILED' THEN (ARRAY['WORKER_ERROR', 'TIMEOUT', 'VALIDATION_ERROR'])[1 + i % 3] END,
       t.created, jsonb_build_object('n', i)
     FROM generate_series(1, $1) AS i,
       LATERAL (SELECT now() - (i % 604800) * interval '1 second' AS created) t,
       LATERAL (SELECT CASE WHEN i % 100 = 0 THEN 'FAILED' WHEN i % 1000 = 1 THEN 'QUEUED' WHEN i % 5000 = 2 THEN 'PROCESSING' ELSE 'COMPLETED' END AS status) s`,
    [rows],
  );
  await conveyor.database.pool.query(
    `INSERT INTO job_events (job_id, from_status, to_status, attempt, at) SELECT id, 'QUEUED', 'PROCESSING', 1, started_at FROM processing_jobs TABLESAMPLE SYSTEM (5)`,
  );
  await conveyor.database.pool.query("VACUUM ANALYZE processing_jobs");
  await conveyor.database.pool.query("VACUUM ANALYZE job_events");
  console.log(`seeded ${rows} jobs in ${((performance.now() - seedStart) / 1000).toFixed(1)} s`);
  await conveyor.start();

  const ids = (await conveyor.database.pool.query<{ id: string; owner: string }>(`SELECT id, owner FROM processing_jobs TABLESAMPLE SYSTEM (1) LIMIT 5000`)).rows;
  const operator = await signToken(config.auth.secret!, { id: "olga", role: "operator" });
  const userTokens = new Map<string, string>();
  const tokenOf = async (owner: string) => userTokens.get(owner) ?? userTokens.set(owner, await signToken(config.auth.secret!, { id: owner, role: "user" })).get(owner)!;

  const post = async (query: string, variables: Record<string, unknown>, token: string) => {
    const response = await fetch(`${conveyor.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
      body: JSON.stringify({ query, variables }),
    });
    const body = (await response.json()) as { errors?: unknown[] };
    if (body.errors) throw new Error(JSON.stringify(body.errors));
  };

  async function measure(label: string, concurrency: number, makeRequest: (index: number) => Promise<void>) {
    for (let i = 0; i < 100; i++) await makeRequest(i);
    const samples: number[] = [];
    let next = 0;
    const start = performance.now();
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        for (let index = next++; index < requests; index = next++) {
          const begin = performance.now();
          await makeRequest(index);
          samples.push(performance.now() - begin);
        }
      }),
    );
    const seconds = (performance.now() - start) / 1000;
    samples.sort((a, b) => a - b);
    const at = (p: number) => samples[Math.min(samples.length - 1, Math.floor((p / 100) * samples.length))]!.toFixed(2);
    console.log(`${label.padEnd(28)} c=${String(concurrency).padEnd(3)} p50 ${at(50)} ms  p95 ${at(95)} ms  p99 ${at(99)} ms  ${Math.round(requests / seconds)} req/s`);
  }

  const healthStart = performance.now();
  await conveyor.jobs.health();
  console.log(`queue health computed in SQL once: ${(performance.now() - healthStart).toFixed(1)} ms`);
  console.log(`${requests} requests each, ${rows} jobs in the table`);
  for (const concurrency of concurrencies) {
  await measure("job(id)", concurrency, async (index) => {
    const job = ids[index % ids.length]!;
    await post(`query($id: ID!) { job(id: $id) { id status type progress createdAt completedAt processingTimeMs error { category message } } }`, { id: job.id }, await tokenOf(job.owner));
  });
  await measure("jobs(first: 20) of one owner", concurrency, async (index) => {
    const owner = `user-${index % owners}`;
    await post(`{ jobs(first: 20) { edges { cursor node { id status type createdAt } } pageInfo { hasNextPage endCursor } } }`, {}, await tokenOf(owner));
  });
  await measure("queueHealth", concurrency, async () => {
    await post(`{ queueHealth { status reasons stats { counts { queued processing completed failed } successRate averageProcessingMs throughput { lastHour lastDay lastWeek } stalled oldestQueuedAgeMs failuresByCategory { category count } } } }`, {}, operator);
  });
  }
} finally {
  await conveyor.stop();
  await database.drop();
}
