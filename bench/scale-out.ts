// Scale-out (issue 11): several Conveyor processes on one PostgreSQL.
//
// SHAPE=workers: 1, 2 and 4 worker processes (PROCESSES) on one database. The workload of
//   bench/throughput.ts: JOBS (10,000) no-op jobs enqueued first through the engine (enqueueJobs,
//   batches of 1,000, on a fresh database, never ANALYZEd), then the worker processes started
//   together. Each process is a child running a full Conveyor (bench/support/scale-out-worker.ts:
//   WORKER_ENABLED=true, PORT=0, the engine's defaults, WORKER_CONCURRENCY = CONCURRENCY, default 10)
//   whose pool's start() is held until every process is up, then released in all of them at once.
//   Prints jobs/s for each process count (from the release to the last completion committed), how
//   the jobs split between the processes (their handler calls), the busy cores of each process and
//   of PostgreSQL, the peak of connections to the database, and exactly-once: COMPLETED jobs = JOBS,
//   handler calls = JOBS, one PROCESSING and one COMPLETED JobEvent per job.
//
// SHAPE=fanout: the jobProgress fan-out of bench/subscription-fanout.ts (SHAPE ticker) split over
//   SERVERS (2) server processes (bench/support/fanout-server.ts) on one database, events between
//   them over PostgreSQL LISTEN/NOTIFY (REDIS_URL unset; REDIS=redis://… to use Redis). JOBS_FANOUT
//   (50) ticker jobs enqueued through server 1's API; each server's pool has ceil(JOBS_FANOUT /
//   SERVERS) slots and WORKER_PREFETCH=0 (the setting docs/operations.md gives for long jobs spread
//   evenly), so the jobs are claimed by every server; the benchmark waits until all are claimed and
//   prints the split. SUBSCRIBERS (2000) subscribers, one WebSocket each, dealt round-robin over
//   the servers (one client process per server by default, CLIENT_PROCS to have more); each
//   subscribes to a job whichever server runs it. Then "go" to every server: each job reports
//   TICKS (30) progress every TICK_MS (100). Prints what bench:fanout prints: events received
//   against expected, latency p50/p99, RSS per server, busy cores; plus how many subscriptions
//   follow a job run by another server.
//
//   npm run bench:scale-out                                  (both shapes)
//   npm run bench:scale-out -- SHAPE=workers PROCESSES=1,2,4 JOBS=10000 CONCURRENCY=10
//   npm run bench:scale-out -- SHAPE=fanout SERVERS=2 SUBSCRIBERS=2000 CALLERS=distinct
// DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/postgres) names the PostgreSQL server;
// each run creates a database conveyor_bench_<random> and drops it. WORKER_DURABLE_COMMITS,
// WORKER_ASYNC_OUTCOMES and WORKER_PREFETCH reach the worker processes only when set.
import pg from "pg";
import { applyMigrations } from "../src/db/migrate.js";
import { signToken } from "../src/graphql/auth.js";
import { enqueueJobs } from "../src/jobs/queue.js";
import { createLogger } from "../src/logger.js";
import { ChildExitedError, request, serverEnvironment, startChild, type Child } from "./support/child.js";
import type { Report, ServerStats } from "./support/fanout-report.js";
import { createBenchDatabase } from "./support/database.js";
import { cpuMeter, percentile, rssMegabytes } from "./support/proc.js";

// Arguments set the same variables: `npm run bench:scale-out -- SHAPE=fanout SUBSCRIBERS=2000`.
for (const argument of process.argv.slice(2)) {
  const match = /^(?:--)?([A-Za-z_][\w-]*)=(.*)$/.exec(argument);
  if (!match) throw new Error(`arguments are NAME=value (the variables described at the top of this file), not ${JSON.stringify(argument)}`);
  process.env[match[1]!.replace(/-/g, "_").toUpperCase()] = match[2];
}

const shapes = (process.env.SHAPE ?? "workers,fanout").split(",").filter(Boolean);
const secret = "scale-out-bench-secret-scale-out-bench-secret";
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const fixed = (value: number) => Number(value.toFixed(1));
const thousands = (value: number) => Math.round(value).toLocaleString("en");

let active: { children: Child[]; drop: () => Promise<void> } | null = null;
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    const current = active;
    void (async () => {
      if (current) {
        await Promise.all(current.children.map((child) => child.stop().catch(() => undefined)));
        await current.drop().catch(() => undefined);
      }
      process.exit(130);
    })();
  });
}

/** Starts `count` children together; each is kept in `children` as soon as it is up (for cleanup). */
async function startAll(count: number, script: string, env: NodeJS.ProcessEnv, children: Child[]): Promise<Child[]> {
  return Promise.all(Array.from({ length: count }, () => startChild(script, { env, ipc: true }).then((child) => (children.push(child), child))));
}

/** The pid in a worker id (`host:pid:random`, src/jobs/worker-pool.ts). */
function pidOf(workerId: string): number {
  return Number(workerId.split(":").at(-2));
}

/** The engine's knobs, passed on only when set: otherwise the defaults are measured. */
function engineKnobs(): Record<string, string> {
  return Object.fromEntries(["WORKER_DURABLE_COMMITS", "WORKER_ASYNC_OUTCOMES", "WORKER_PREFETCH"].flatMap((name) => (process.env[name] ? [[name, process.env[name]!]] : [])));
}

for (const shape of shapes) {
  if (shape === "workers") await workers();
  else if (shape === "fanout") await fanout();
  else throw new Error(`SHAPE is workers, fanout or both (comma-separated), not ${shape}`);
}
process.exit(0);

// ---------------------------------------------------------------------------------------------
// SHAPE=workers

async function workers() {
  const jobs = Number(process.env.JOBS ?? 10_000);
  const counts = (process.env.PROCESSES ?? "1,2,4").split(",").filter(Boolean).map(Number);
  const concurrency = Number(process.env.CONCURRENCY ?? 10);
  console.log(
    `scale-out: ${jobs.toLocaleString("en")} no-op jobs enqueued through the engine (batches of 1,000) on a fresh database (no ANALYZE), then ${counts.join(", ")} worker process(es) ` +
      `started together on one PostgreSQL (${new URL(process.env.DATABASE_URL ?? "postgresql://127.0.0.1:5432").host}), each a full Conveyor at WORKER_CONCURRENCY ${concurrency}` +
      `${Object.keys(engineKnobs()).length ? ` with ${JSON.stringify(engineKnobs())}` : ", the engine's defaults otherwise"}; Node ${process.version}; this machine has the cores it has (all processes and PostgreSQL share them)`,
  );
  let single: number | null = null;
  for (const count of counts) {
    const rate = await workersRun(count, jobs, concurrency, single);
    if (count === 1) single = rate;
  }
}

async function workersRun(processes: number, jobs: number, concurrency: number, single: number | null): Promise<number> {
  const database = await createBenchDatabase();
  const children: Child[] = [];
  active = { children, drop: () => database.drop() };
  const db = new pg.Pool({ connectionString: database.url, max: 2 });
  try {
    const client = new pg.Client({ connectionString: database.url });
    await client.connect();
    await applyMigrations(client, createLogger("warn"));
    await client.end();

    const enqueueStart = performance.now();
    for (let i = 0; i < jobs; i += 1000) {
      const batch = Array.from({ length: Math.min(1000, jobs - i) }, () => ({ type: "noop", owner: "bench" }));
      await enqueueJobs(db, batch, { actor: "bench" });
    }
    const enqueueSeconds = (performance.now() - enqueueStart) / 1000;

    const env = serverEnvironment(database.url, secret, { ...engineKnobs(), WORKER_ENABLED: "true", WORKER_CONCURRENCY: String(concurrency) });
    const pool = await startAll(processes, "scale-out-worker.ts", env, children);

    // Connections to this database (sampled every 250 ms: a small, steady load).
    let peakConnections = 0;
    const sampleConnections = async () => {
      const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database()`);
      peakConnections = Math.max(peakConnections, rows[0]!.n);
    };
    await sampleConnections();
    const connectionSampler = setInterval(() => void sampleConnections().catch(() => undefined), 250);

    const meter = cpuMeter(Object.fromEntries(pool.map((child, index) => [`worker${index + 1}`, child.pid])));
    const start = performance.now();
    const started = await Promise.all(pool.map((child) => request<{ workerId: string; concurrency: number; prefetch: number }>(child, { type: "start-pool" }, "pool-started")));
    // Until the handlers have run JOBS times (asked over IPC, nothing on the database), then until
    // JOBS completions are committed (polled only for the last few, as bench/throughput.ts does).
    const deadline = performance.now() + 120_000 + jobs * 10;
    let calls: number[] = [];
    for (;;) {
      calls = (await Promise.all(pool.map((child) => request<{ calls: number }>(child, { type: "count" }, "count")))).map((answer) => answer.calls);
      if (calls.reduce((sum, n) => sum + n, 0) >= jobs || performance.now() > deadline) break;
      await sleep(20);
    }
    let completed = 0;
    while (performance.now() < deadline) {
      completed = (await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM processing_jobs WHERE status = 'COMPLETED' AND completed_at IS NOT NULL`)).rows[0]!.n;
      if (completed >= jobs) break;
      await sleep(2);
    }
    const seconds = (performance.now() - start) / 1000;
    const cores = meter();
    clearInterval(connectionSampler);
    calls = (await Promise.all(pool.map((child) => request<{ calls: number }>(child, { type: "count" }, "count")))).map((answer) => answer.calls);

    const check = (
      await db.query<{ completed: number; other: number; events_processing: number; events_completed: number; jobs_not_one_claim: number; jobs_not_one_completion: number }>(
        `WITH per_job AS (
           SELECT j.id,
                  count(e.*) FILTER (WHERE e.to_status = 'PROCESSING') AS p,
                  count(e.*) FILTER (WHERE e.to_status = 'COMPLETED') AS c
           FROM processing_jobs j LEFT JOIN job_events e ON e.job_id = j.id GROUP BY j.id)
         SELECT (SELECT count(*) FROM processing_jobs WHERE status = 'COMPLETED')::int AS completed,
                (SELECT count(*) FROM processing_jobs WHERE status <> 'COMPLETED')::int AS other,
                (SELECT sum(p) FROM per_job)::int AS events_processing,
                (SELECT sum(c) FROM per_job)::int AS events_completed,
                (SELECT count(*) FROM per_job WHERE p <> 1)::int AS jobs_not_one_claim,
                (SELECT count(*) FROM per_job WHERE c <> 1)::int AS jobs_not_one_completion`,
      )
    ).rows[0]!;
    const stats = (await db.query<{ last_autoanalyze: Date | null }>(`SELECT last_autoanalyze FROM pg_stat_user_tables WHERE relname = 'processing_jobs'`)).rows[0];
    const handlerCalls = calls.reduce((sum, n) => sum + n, 0);
    const exactlyOnce = check.completed === jobs && check.other === 0 && handlerCalls === jobs && check.jobs_not_one_claim === 0 && check.jobs_not_one_completion === 0;
    const rate = jobs / seconds;
    const split = calls.map((n, index) => `worker${index + 1} ${n.toLocaleString("en")} (${((100 * n) / jobs).toFixed(1)} %)`).join(", ");
    console.log(`\n${processes} worker process(es) × concurrency ${started[0]!.concurrency} (prefetch ${started[0]!.prefetch}): ${thousands(rate)} jobs/s (${jobs.toLocaleString("en")} jobs in ${seconds.toFixed(2)} s)${single ? `, ×${(rate / single).toFixed(2)} the 1-process rate` : ""}; enqueue ${thousands(jobs / enqueueSeconds)} jobs/s`);
    console.log(`  split by handler calls: ${split}`);
    console.log(
      `  exactly once: ${exactlyOnce ? "yes" : "NO"} — COMPLETED ${check.completed.toLocaleString("en")} of ${jobs.toLocaleString("en")} (other statuses ${check.other}), handler calls ${handlerCalls.toLocaleString("en")}, ` +
        `JobEvents PROCESSING ${check.events_processing.toLocaleString("en")} / COMPLETED ${check.events_completed.toLocaleString("en")}, jobs without exactly one claim ${check.jobs_not_one_claim}, without exactly one completion ${check.jobs_not_one_completion}`,
    );
    console.log(
      `  busy cores: ${Object.entries(cores).map(([name, value]) => `${name} ${value}`).join(", ")}; peak connections to the database ${peakConnections}; ` +
        `jobs table ${stats?.last_autoanalyze ? `autoanalyzed at ${stats.last_autoanalyze.toISOString()}, during the run` : "never analyzed"}`,
    );
    return rate;
  } catch (error) {
    if (!(error instanceof ChildExitedError)) throw error;
    console.log(`\n${processes} worker process(es): FAILED: ${error.message} (its error is printed above)`);
    return NaN;
  } finally {
    await db.end();
    await Promise.all(children.map((child) => child.stop().catch(() => undefined)));
    await database.drop();
    active = null;
  }
}

// ---------------------------------------------------------------------------------------------
// SHAPE=fanout: bench/subscription-fanout.ts's ticker shape over SERVERS server processes.


async function fanout() {
  const servers = Number(process.env.SERVERS ?? 2);
  const sizes = (process.env.SUBSCRIBERS ?? "2000").split(",").filter(Boolean).map(Number);
  const jobCount = Number(process.env.JOBS_FANOUT ?? 50);
  const ticks = Number(process.env.TICKS ?? 30);
  const tickMs = Number(process.env.TICK_MS ?? 100);
  const callers = (process.env.CALLERS ?? "distinct") as "distinct" | "shared";
  const requested = Number(process.env.CLIENT_PROCS ?? servers);
  // One client process per server at least, and the same number for each server.
  const clientProcesses = Math.ceil(Math.max(requested, servers) / servers) * servers;
  const redis = process.env.REDIS ?? "";
  console.log(
    `\njobProgress fan-out over ${servers} server process(es) on one database, events between them over ${redis ? "Redis" : "PostgreSQL LISTEN/NOTIFY"}: ` +
      `${jobCount} jobs × ${ticks} progress reports every ${tickMs} ms (spread over the tick); one subscription per WebSocket, dealt round-robin over the servers; ` +
      `callers ${callers}; subscribers in ${clientProcesses} client process(es); servers, clients and PostgreSQL share this machine's cores`,
  );
  for (const size of sizes) await fanoutRun({ servers, subscribers: size, jobCount, ticks, tickMs, callers, clientProcesses, redis });
}

async function fanoutRun(options: { servers: number; subscribers: number; jobCount: number; ticks: number; tickMs: number; callers: "distinct" | "shared"; clientProcesses: number; redis: string }) {
  const { servers: serverCount, subscribers, jobCount, ticks, tickMs, callers, clientProcesses, redis } = options;
  const owner = "fan-owner";
  const database = await createBenchDatabase();
  const children: Child[] = [];
  active = { children, drop: () => database.drop() };
  const db = new pg.Pool({ connectionString: database.url, max: 2 });
  try {
    const servers = await startAll(
      serverCount,
      "fanout-server.ts",
      serverEnvironment(database.url, secret, {
        REDIS_URL: redis,
        // Each server holds its share of the jobs (they run until "go" + TICKS × TICK_MS), and
        // claims nothing ahead of a free slot, so every server runs some.
        WORKER_CONCURRENCY: String(Math.ceil(jobCount / serverCount)),
        WORKER_PREFETCH: "0",
        WORKER_POLL_INTERVAL_MS: "200",
        TICKS: String(ticks),
        TICK_MS: String(tickMs),
        // CALLERS=shared is one caller on every socket: past the per-caller limits a deployment keeps.
        ...(callers === "shared" ? { GRAPHQL_MAX_SOCKETS_PER_CALLER: "1000000", GRAPHQL_MAX_STREAMS_PER_CALLER: "1000000" } : {}),
      }),
      children,
    );
    // startAll keeps the order it was given only by index; the servers are interchangeable.
    const serverOfPid = new Map(servers.map((server, index) => [server.pid, index]));
    const serverStats = (server: Child) =>
      new Promise<ServerStats>((resolve) => {
        server.process.once("message", (message: ServerStats & { type: string }) => resolve(message));
        server.process.send({ type: "stats" });
      });
    const idleRss = servers.map((server) => rssMegabytes(server.pid));

    // The jobs, through server 1's API; claimed at once by the servers' pools, they wait for "go".
    const ownerToken = await signToken(secret, { id: owner, role: "user" });
    const jobIds: string[] = [];
    for (let i = 0; i < jobCount; i++) {
      const response = await fetch(`${servers[0]!.url}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${ownerToken}` },
        body: JSON.stringify({
          query: `mutation($payload: JSON) { enqueueJob(input: { type: "ticker", payload: $payload }) { job { id } } }`,
          variables: { payload: { offset: Math.round((i / jobCount) * tickMs) } },
        }),
      });
      const body = (await response.json()) as { data?: { enqueueJob: { job: { id: string } } }; errors?: unknown };
      if (!body.data) throw new Error(`enqueueJob failed: ${JSON.stringify(body.errors)}`);
      jobIds.push(body.data.enqueueJob.job.id);
    }
    // Which server runs each job: its worker id while PROCESSING (they all are, until "go").
    const runnerOf = new Map<string, number>();
    const claimDeadline = performance.now() + 30_000;
    while (performance.now() < claimDeadline) {
      const { rows } = await db.query<{ id: string; locked_by: string }>(`SELECT id, locked_by FROM processing_jobs WHERE status = 'PROCESSING' AND locked_by IS NOT NULL`);
      for (const row of rows) runnerOf.set(row.id, serverOfPid.get(pidOf(row.locked_by)) ?? -1);
      if (runnerOf.size >= jobCount) break;
      await sleep(50);
    }
    const jobsPerServer = servers.map((_, index) => jobIds.filter((id) => runnerOf.get(id) === index).length);

    // Connections dealt round-robin to the client processes; client process p talks to server p % SERVERS.
    const plans = Array.from({ length: clientProcesses }, (_, index) => ({ url: servers[index % serverCount]!.url, server: index % serverCount, connections: [] as { token: string; jobIds: string[] }[], inFlight: 200 }));
    let crossServer = 0;
    for (let c = 0; c < subscribers; c++) {
      const token = callers === "shared" ? ownerToken : await signToken(secret, { id: `watcher-${c}`, role: "operator" });
      const jobId = jobIds[c % jobIds.length]!;
      const plan = plans[c % clientProcesses]!;
      plan.connections.push({ token, jobIds: [jobId] });
      if (runnerOf.get(jobId) !== plan.server) crossServer++;
    }
    const clients = await Promise.all(plans.map(() => startChild("fanout-clients.ts", { env: process.env, ipc: true, waitFor: "ready" }).then((child) => (children.push(child), child))));

    const subscribeStarted = performance.now();
    const subscribed = await Promise.all(
      clients.map((client, index) => request<{ subscriptions: number; errors: number; errorSamples: string[] }>(client, { type: "subscribe", plan: { url: plans[index]!.url, connections: plans[index]!.connections, inFlight: plans[index]!.inFlight } }, "subscribed")),
    );
    const subscribeSeconds = (performance.now() - subscribeStarted) / 1000;
    const subscribeErrors = subscribed.reduce((sum, answer) => sum + answer.errors, 0);
    const subscribedRss = servers.map((server) => rssMegabytes(server.pid));
    const subscribedStats = await Promise.all(servers.map(serverStats));

    // Go: every job (on every server) starts reporting; sample each server's memory until every subscription ended.
    const peakRss = [...subscribedRss];
    const sampler = setInterval(() => servers.forEach((server, index) => (peakRss[index] = Math.max(peakRss[index]!, rssMegabytes(server.pid)))), 100);
    const meter = cpuMeter({
      ...Object.fromEntries(servers.map((server, index) => [`server${index + 1}`, server.pid])),
      ...Object.fromEntries(clients.map((client, index) => [`client${index + 1}`, client.pid])),
    });
    for (const client of clients) client.process.send({ type: "measure" });
    for (const server of servers) server.process.send({ type: "go" });
    const goAt = performance.now();
    const deadline = ticks * tickMs + 60_000 + subscribers * 5;
    const finished = await Promise.race([
      Promise.all(clients.map((client) => new Promise((resolve) => client.process.on("message", (message: { type: string }) => message.type === "ended" && resolve(true))))).then(() => true),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), deadline)),
    ]);
    const deliverySeconds = (performance.now() - goAt) / 1000;
    const deliveryStats = await Promise.all(servers.map(serverStats));
    const cores = meter();
    clearInterval(sampler);
    const reports = await Promise.all(clients.map((client) => request<Report>(client, { type: "report" }, "report")));
    const afterRss = servers.map((server) => rssMegabytes(server.pid));
    const outcome = (await db.query<{ completed: number; other: number }>(`SELECT count(*) FILTER (WHERE status = 'COMPLETED')::int AS completed, count(*) FILTER (WHERE status <> 'COMPLETED')::int AS other FROM processing_jobs`)).rows[0]!;

    const sorted = (values: number[]) => values.sort((a, b) => a - b);
    const latencies = sorted(reports.flatMap((report) => report.latencies));
    const fromAt = sorted(reports.flatMap((report) => report.fromDatabaseClock));
    const fromDue = sorted(reports.flatMap((report) => report.fromDue));
    const total = (key: keyof Report["counts"]) => reports.reduce((sum, report) => sum + report.counts[key], 0);
    const expectedProgress = subscribers * ticks;
    console.log(
      `\n${subscribers.toLocaleString("en")} subscribers over ${serverCount} server(s) (${plans.map((plan) => plan.connections.length).reduce((sum, n, index) => ((sum[index % serverCount] = (sum[index % serverCount] ?? 0) + n), sum), [] as number[]).map((n, index) => `server${index + 1} ${n.toLocaleString("en")}`).join(", ")}), ` +
        `${callers} callers, ${jobCount} jobs (${Math.round(subscribers / jobCount)} subscribers per job)`,
    );
    console.log(
      `  jobs run by ${jobsPerServer.map((n, index) => `server${index + 1} ${n}`).join(", ")}${runnerOf.size < jobCount ? ` (${jobCount - runnerOf.size} not claimed before "go")` : ""}; ` +
        `${crossServer.toLocaleString("en")} of ${subscribers.toLocaleString("en")} subscriptions follow a job run by another server; jobs COMPLETED ${outcome.completed} of ${jobCount} (other ${outcome.other})`,
    );
    console.log(`  subscribed in ${subscribeSeconds.toFixed(1)} s, ${subscribeErrors} refused${finished ? "" : `; NOT all subscriptions ended within ${deadline / 1000} s`}`);
    console.log(
      `  progress events received ${total("progress").toLocaleString("en")} of ${expectedProgress.toLocaleString("en")} expected (${((100 * total("progress")) / expectedProgress).toFixed(2)} %), ` +
        `completions ${total("completed").toLocaleString("en")} of ${subscribers.toLocaleString("en")}, errors ${total("errors")}${reports.flatMap((report) => report.errorSamples).slice(0, 3).map((sample) => ` [${sample}]`).join("")}`,
    );
    console.log(
      `  event latency (handler's send time → subscriber): p50 ${fixed(percentile(latencies, 50))} ms, p90 ${fixed(percentile(latencies, 90))} ms, p99 ${fixed(percentile(latencies, 99))} ms, max ${fixed(latencies[latencies.length - 1] ?? NaN)} ms` +
        `   (from the change's \`at\`, database clock: p50 ${fixed(percentile(fromAt, 50))}, p99 ${fixed(percentile(fromAt, 99))} ms)`,
    );
    console.log(
      `    by the server the subscribers are on: ${servers
        .map((_, server) => {
          const own = sorted(reports.filter((_, index) => plans[index]!.server === server).flatMap((report) => report.latencies));
          return `server${server + 1} p50 ${fixed(percentile(own, 50))} ms, p99 ${fixed(percentile(own, 99))} ms`;
        })
        .join("; ")}`,
    );
    console.log(
      `  from when each report was due (includes the handler's own timer lag on its server's event loop): p50 ${fixed(percentile(fromDue, 50))} ms, p99 ${fixed(percentile(fromDue, 99))} ms, max ${fixed(fromDue[fromDue.length - 1] ?? NaN)} ms`,
    );
    const delivered = total("progress") + total("completed");
    const lastOf = (key: keyof Report["last"]) => Math.max(...reports.map((report) => report.last[key])) / 1000;
    const serverCores = servers.reduce((sum, _, index) => sum + (cores[`server${index + 1}`] ?? 0), 0);
    console.log(
      `  after "go": last progress event received at ${lastOf("progressMs").toFixed(2)} s, last completion at ${lastOf("completedMs").toFixed(2)} s, every subscription ended at ${lastOf("endedMs").toFixed(2)} s ` +
        `(reports span ${((ticks * tickMs + tickMs) / 1000).toFixed(1)} s)`,
    );
    console.log(
      `  ${Math.round(delivered / deliverySeconds).toLocaleString("en")} events/s delivered on average until the end; ` +
        `servers' CPU ${Math.round((serverCores * deliverySeconds * 1e6) / delivered)} µs per delivered event, all servers together (progress reports, their database writes, NOTIFY and the completions included)`,
    );
    servers.forEach((_, index) =>
      console.log(
        `  server${index + 1} RSS: idle ${idleRss[index]} MB, all subscribed ${subscribedRss[index]} MB (heap used ${subscribedStats[index]!.memory.heapUsed} MB), peak while delivering ${peakRss[index]} MB, after ${afterRss[index]} MB; ` +
          `event-loop delay p99/max ${fixed(deliveryStats[index]!.eventLoopDelayMs.p99)}/${fixed(deliveryStats[index]!.eventLoopDelayMs.max)} ms`,
      ),
    );
    console.log(
      `  busy cores while delivering: ${Object.entries(cores).map(([name, value]) => `${name} ${value}`).join(", ")}; ` +
        `client event-loop delay p99/max: ${reports.map((report, index) => `client${index + 1} ${fixed(report.eventLoopDelayMs.p99)}/${fixed(report.eventLoopDelayMs.max)} ms`).join(", ")}`,
    );
    for (const client of clients) client.process.send({ type: "close" });
  } catch (error) {
    if (!(error instanceof ChildExitedError)) throw error;
    console.log(`\n${subscribers.toLocaleString("en")} subscribers over ${serverCount} servers: FAILED: ${error.message} (its error is printed above)`);
  } finally {
    await db.end();
    await Promise.all(children.map((child) => child.stop().catch(() => undefined)));
    await database.drop();
    active = null;
  }
}
