// API throughput against the framework's own: requests/s at concurrency 10 (autocannon, keep-alive,
// DURATION seconds each, after a warm-up), one run after the other on this machine, REPS times (3),
// each repetition starting with a different one of the three, for
//   - a bare graphql-yoga server answering `{ hello }` (bench/support/bare-yoga.ts),
//   - Conveyor's `job(id)` of a finished job, and of a running one, with a user's token,
// and the ratios (targets: ≥ 0.7× the bare server for a finished job, ≥ 0.5× for a running one).
// The Conveyor server runs as shipped for production (NODE_ENV=production, no worker pool), in a
// process of its own; the load generator is another process on the same 2 cores.
// Prints every measurement, then the medians and the ratios of the medians.
//   npx tsx bench/api-throughput.ts            (DURATION=10 CONNECTIONS=10 REPS=3)
import autocannon from "autocannon";
import pg from "pg";
import { applyMigrations } from "../src/db/migrate.js";
import { signToken } from "../src/graphql/auth.js";
import { createLogger } from "../src/logger.js";
import { profileFlags, serverEnvironment, startChild, type Child } from "./support/child.js";
import { createBenchDatabase } from "./support/database.js";

const duration = Number(process.env.DURATION ?? 10);
const connections = Number(process.env.CONNECTIONS ?? 10);
const repetitions = Number(process.env.REPS ?? 3);
const secret = "api-throughput-bench-secret-0123456789abcdef";

const database = await createBenchDatabase();
const children: Child[] = [];
try {
  const pool = new pg.Pool({ connectionString: database.url, max: 1 });
  const client = await pool.connect();
  await applyMigrations(client, createLogger("warn"));
  client.release();
  const { rows } = await pool.query<{ id: string; status: string }>(
    `INSERT INTO processing_jobs (id, type, owner, correlation_id, status, progress, started_at, completed_at, processing_time_ms, heartbeat_at, result)
     VALUES (gen_random_uuid(), 'report', 'alice', 'c-1', 'COMPLETED', 100, now() - interval '2 seconds', now(), 2000, NULL, '{"rows": 42}'),
            (gen_random_uuid(), 'report', 'alice', 'c-2', 'PROCESSING', 40, now(), NULL, NULL, now(), NULL)
     RETURNING id, status`,
  );
  await pool.end();
  const idOf = (status: string) => rows.find((row) => row.status === status)!.id;
  const token = await signToken(secret, { id: "alice", role: "user" });

  const bare = await startChild("bare-yoga.ts", { env: { ...process.env } });
  children.push(bare);
  // PROFILE=<directory>: a V8 CPU profile of the Conveyor server (written when it stops).
  const server = await startChild("api-server.ts", {
    nodeArgs: profileFlags(),
    env: serverEnvironment(database.url, secret, { WORKER_ENABLED: "false" }),
  });
  children.push(server);

  const jobQuery = (id: string) =>
    JSON.stringify({ query: `query Job($id: ID!) { job(id: $id) { id status progress completedAt processingTimeMs result } }`, variables: { id } });
  const runs = [
    { label: "bare yoga { hello }", url: `${bare.url}/graphql`, body: JSON.stringify({ query: "{ hello }" }), headers: {} },
    { label: "job(id), finished job", url: `${server.url}/graphql`, body: jobQuery(idOf("COMPLETED")), headers: { authorization: `Bearer ${token}` } },
    { label: "job(id), running job", url: `${server.url}/graphql`, body: jobQuery(idOf("PROCESSING")), headers: { authorization: `Bearer ${token}` } },
  ];
  const results: Record<string, { rps: number; p99: number; errors: number }[]> = {};
  for (let repetition = 0; repetition < repetitions; repetition++) {
    // Rotated, so that none of the three always runs first (or last) on a machine whose speed drifts.
    const order = runs.map((_, index) => runs[(index + repetition) % runs.length]!);
    for (const run of order) {
      const options = { url: run.url, method: "POST" as const, body: run.body, headers: { "content-type": "application/json", ...run.headers }, connections };
      await autocannon({ ...options, duration: 2 }); // warm-up: V8 optimizes the hot paths first
      const result = await autocannon({ ...options, duration });
      const measured = { rps: Math.round(result.requests.average), p99: result.latency.p99, errors: result.errors + result.non2xx };
      (results[run.label] ??= []).push(measured);
      console.log(`${run.label.padEnd(24)} ${String(measured.rps).padStart(6)} req/s  p99 ${measured.p99} ms  errors ${measured.errors}`);
    }
  }
  const median = (label: string) => {
    const rates = results[label]!.map((result) => result.rps).sort((a, b) => a - b);
    return rates[Math.floor(rates.length / 2)]!;
  };
  console.log(`\nmedians of ${repetitions}: ${runs.map((run) => `${run.label} ${median(run.label)} req/s`).join(", ")}`);
  const bareRps = median("bare yoga { hello }");
  const perRepetition = results["bare yoga { hello }"]!.map((bare, index) =>
    `${(results["job(id), finished job"]![index]!.rps / bare.rps).toFixed(2)}× / ${(results["job(id), running job"]![index]!.rps / bare.rps).toFixed(2)}×`,
  );
  console.log(`ratios to the bare server in each repetition (finished / running): ${perRepetition.join(", ")}`);
  console.log(`ratio to the bare server: finished ${(median("job(id), finished job") / bareRps).toFixed(2)}× (target ≥ 0.7), running ${(median("job(id), running job") / bareRps).toFixed(2)}× (target ≥ 0.5)`);
} finally {
  await Promise.all(children.map((child) => child.stop().catch(() => undefined)));
  await database.drop();
}
