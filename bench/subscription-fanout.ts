// Subscription fan-out: 1,000 then 10,000 graphql-ws subscribers to `jobProgress` on one Conveyor
// server process. JOBS ticker jobs report progress every TICK_MS (100 ms) TICKS times (30: 3 s), each
// report carrying its send time; subscribers time every progress event (receive time − send time).
// Prints event latency p50/p99, events received against expected, the server's RSS (VmRSS of its
// process: idle, with everyone subscribed, peak while delivering) and the busy cores of server,
// clients and PostgreSQL.
//
//   npx tsx bench/subscription-fanout.ts
//   SUBSCRIBERS=1000,10000 PER_CONNECTION=1 CALLERS=distinct JOBS=50 TICKS=30 TICK_MS=100 CLIENT_PROCS=1 npx tsx bench/subscription-fanout.ts
//
// PER_CONNECTION: subscriptions per WebSocket (1: one per connection, like one browser tab each).
// CALLERS=distinct: every connection is a different viewer (an operator, so it may watch any job),
//   so no two subscriptions can share an execution; CALLERS=shared: every connection is the jobs'
//   owner, so identical subscriptions share one execution per event (the server's best case).
// CLIENT_PROCS: child processes the subscribers are spread over. PROFILE=<dir>: server CPU profile.
// DATABASE_URL (default postgresql://postgres@127.0.0.1:5432/postgres) names the PostgreSQL server;
// each run creates a database conveyor_bench_<random> and drops it.
import path from "node:path";
import { signToken } from "../src/graphql/auth.js";
import { startChild, type Child } from "./support/child.js";
import { createBenchDatabase } from "./support/database.js";
import { cpuMeter, percentile, rssMegabytes } from "./support/proc.js";

const sizes = (process.env.SUBSCRIBERS ?? "1000,10000").split(",").map(Number);
const perConnection = Number(process.env.PER_CONNECTION ?? 1);
const callers = (process.env.CALLERS ?? "distinct") as "distinct" | "shared";
const jobCount = Number(process.env.JOBS ?? 50);
const ticks = Number(process.env.TICKS ?? 30);
const tickMs = Number(process.env.TICK_MS ?? 100);
const clientProcesses = Number(process.env.CLIENT_PROCS ?? 1);
const stagger = process.env.STAGGER !== "0";
const secret = "fanout-bench-secret-fanout-bench-secret-1";
const owner = "fan-owner";

type Report = {
  counts: { progress: number; progressBeforeMeasuring: number; completed: number; other: number; errors: number; ended: number; subscriptions: number };
  last: { progressMs: number; completedMs: number; endedMs: number };
  errorSamples: string[];
  latencies: number[];
  fromDatabaseClock: number[];
  fromDue: number[];
  cpuCores: number;
  eventLoopDelayMs: { p50: number; p99: number; max: number };
};
type ServerStats = { memory: Record<string, number>; eventLoopDelayMs: { p50: number; p99: number; max: number } };

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

console.log(
  `jobProgress fan-out: ${jobCount} jobs × ${ticks} progress reports every ${tickMs} ms${stagger ? " (spread over the tick)" : " (all at once)"}; ` +
    `${perConnection} subscription(s) per WebSocket; callers ${callers}; subscribers in ${clientProcesses} client process(es); ${2} CPU cores shared by all`,
);
for (const size of sizes) await run(size);

async function run(subscribers: number) {
  const database = await createBenchDatabase();
  const children: Child[] = [];
  active = { children, drop: () => database.drop() };
  try {
    const profile = process.env.PROFILE ? ["--cpu-prof", `--cpu-prof-dir=${path.resolve(process.env.PROFILE)}`] : [];
    const server = await startChild("fanout-server.ts", {
      env: {
        ...process.env,
        DATABASE_URL: database.url,
        PORT: "0",
        HOST: "127.0.0.1",
        NODE_ENV: "production",
        LOG_LEVEL: "warn",
        JWT_SECRET: secret,
        REDIS_URL: "",
        WORKER_CONCURRENCY: String(jobCount),
        WORKER_POLL_INTERVAL_MS: "200",
        TICKS: String(ticks),
        TICK_MS: String(tickMs),
      },
      nodeArgs: profile,
      ipc: true,
    });
    children.push(server);
    const serverStats = () =>
      new Promise<ServerStats>((resolve) => {
        server.process.once("message", (message: ServerStats & { type: string }) => resolve(message));
        server.process.send({ type: "stats" });
      });
    const idleRss = rssMegabytes(server.pid);

    // The jobs: claimed at once, they wait for "go" before their first report.
    const ownerToken = await signToken(secret, { id: owner, role: "user" });
    const jobIds: string[] = [];
    for (let i = 0; i < jobCount; i++) {
      const response = await fetch(`${server.url}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${ownerToken}` },
        body: JSON.stringify({
          query: `mutation($payload: JSON) { enqueueJob(input: { type: "ticker", payload: $payload }) { job { id } } }`,
          variables: { payload: { offset: stagger ? Math.round((i / jobCount) * tickMs) : 0 } },
        }),
      });
      const body = (await response.json()) as { data?: { enqueueJob: { job: { id: string } } }; errors?: unknown };
      if (!body.data) throw new Error(`enqueueJob failed: ${JSON.stringify(body.errors)}`);
      jobIds.push(body.data.enqueueJob.job.id);
    }

    // Connections, each with its viewer and its jobs, dealt round-robin to the client processes.
    const connectionCount = Math.ceil(subscribers / perConnection);
    const plans = Array.from({ length: clientProcesses }, () => ({ url: server.url, connections: [] as { token: string; jobIds: string[] }[], inFlight: 200 }));
    let subscription = 0;
    for (let c = 0; c < connectionCount; c++) {
      const token = callers === "shared" ? ownerToken : await signToken(secret, { id: `watcher-${c}`, role: "operator" });
      const ids: string[] = [];
      for (let s = 0; s < perConnection && subscription < subscribers; s++) ids.push(jobIds[subscription++ % jobIds.length]!);
      plans[c % clientProcesses]!.connections.push({ token, jobIds: ids });
    }
    const clients = await Promise.all(plans.map(() => startChild("fanout-clients.ts", { env: process.env, ipc: true, waitFor: "ready" })));
    children.push(...clients);
    const ask = <T>(child: Child, message: object, reply: string) =>
      new Promise<T>((resolve) => {
        const listener = (answer: { type: string }) => {
          if (answer.type !== reply) return;
          child.process.off("message", listener);
          resolve(answer as T);
        };
        child.process.on("message", listener);
        child.process.send(message);
      });

    const subscribeStarted = performance.now();
    const subscribed = await Promise.all(
      clients.map((client, index) => ask<{ subscriptions: number; errors: number; errorSamples: string[] }>(client, { type: "subscribe", plan: plans[index] }, "subscribed")),
    );
    const subscribeSeconds = (performance.now() - subscribeStarted) / 1000;
    const subscribeErrors = subscribed.reduce((sum, answer) => sum + answer.errors, 0);
    const subscribedRss = rssMegabytes(server.pid);
    const subscribedStats = await serverStats();

    // Go: every job starts reporting; sample the server's memory until every subscription ended.
    let peakRss = subscribedRss;
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, rssMegabytes(server.pid))), 100);
    const meter = cpuMeter({ server: server.pid, ...Object.fromEntries(clients.map((client, index) => [`client${clientProcesses > 1 ? index + 1 : ""}`, client.pid])) });
    for (const client of clients) client.process.send({ type: "measure" });
    server.process.send({ type: "go" });
    const goAt = performance.now();
    const deadline = ticks * tickMs + 60_000 + subscribers * 5;
    const finished = await Promise.race([
      Promise.all(clients.map((client) => new Promise((resolve) => client.process.on("message", (message: { type: string }) => message.type === "ended" && resolve(true))))).then(() => true),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), deadline)),
    ]);
    const deliverySeconds = (performance.now() - goAt) / 1000;
    const deliveryStats = await serverStats();
    const cores = meter();
    clearInterval(sampler);
    const reports = await Promise.all(clients.map((client) => ask<Report>(client, { type: "report" }, "report")));
    const afterRss = rssMegabytes(server.pid);

    const latencies = reports.flatMap((report) => report.latencies).sort((a, b) => a - b);
    const fromAt = reports.flatMap((report) => report.fromDatabaseClock).sort((a, b) => a - b);
    const fromDue = reports.flatMap((report) => report.fromDue).sort((a, b) => a - b);
    const total = (key: keyof Report["counts"]) => reports.reduce((sum, report) => sum + report.counts[key], 0);
    const expectedProgress = subscribers * ticks;
    const fixed = (value: number) => Number(value.toFixed(1));
    console.log(`\n${subscribers.toLocaleString("en")} subscribers over ${connectionCount.toLocaleString("en")} WebSocket(s) (${perConnection} per connection), ${callers} callers, ${jobCount} jobs (${Math.round(subscribers / jobCount)} subscribers per job)`);
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
      `  from when each report was due (includes the handler's own timer lag on the server's event loop): p50 ${fixed(percentile(fromDue, 50))} ms, p99 ${fixed(percentile(fromDue, 99))} ms, max ${fixed(fromDue[fromDue.length - 1] ?? NaN)} ms`,
    );
    const delivered = total("progress") + total("completed");
    const lastOf = (key: keyof Report["last"]) => Math.max(...reports.map((report) => report.last[key])) / 1000;
    console.log(
      `  after "go": last progress event received at ${lastOf("progressMs").toFixed(2)} s, last completion at ${lastOf("completedMs").toFixed(2)} s, every subscription ended at ${lastOf("endedMs").toFixed(2)} s ` +
        `(reports span ${((ticks * tickMs + tickMs) / 1000).toFixed(1)} s)`,
    );
    console.log(
      `  ${Math.round(delivered / deliverySeconds).toLocaleString("en")} events/s delivered on average until the end; ` +
        `server CPU ${Math.round((cores.server! * deliverySeconds * 1e6) / delivered)} µs per delivered event (progress reports, their database writes and the completions included)`,
    );
    console.log(
      `  server RSS: idle ${idleRss} MB, all subscribed ${subscribedRss} MB (heap used ${subscribedStats.memory.heapUsed} MB), peak while delivering ${peakRss} MB, after ${afterRss} MB`,
    );
    console.log(
      `  busy cores while delivering: ${Object.entries(cores).map(([name, value]) => `${name} ${value}`).join(", ")}; ` +
        `event-loop delay p99/max: server ${fixed(deliveryStats.eventLoopDelayMs.p99)}/${fixed(deliveryStats.eventLoopDelayMs.max)} ms, ` +
        reports.map((report, index) => `client${clientProcesses > 1 ? index + 1 : ""} ${fixed(report.eventLoopDelayMs.p99)}/${fixed(report.eventLoopDelayMs.max)} ms`).join(", "),
    );
    const verdict =
      subscribers >= 10_000
        ? `  targets (10,000 subscribers): p99 < 250 ms ${percentile(latencies, 99) < 250 ? "met" : "MISSED"} (from due: ${percentile(fromDue, 99) < 250 ? "met" : "MISSED"}), RSS < 1.5 GB (1,536 MB) ${peakRss < 1536 ? "met" : "MISSED"}`
        : null;
    if (verdict) console.log(verdict);
    for (const client of clients) client.process.send({ type: "close" });
  } finally {
    await Promise.all(children.map((child) => child.stop().catch(() => undefined)));
    await database.drop();
    active = null;
  }
}
