// Subscription fan-out: SUBSCRIBERS graphql-ws subscriptions to jobProgress, spread over
// CONNECTIONS WebSockets, on one server process; prints event latency p50/p99, events received
// against expected, and the server's resident memory.
//   npx tsx bench/subscription-fanout.ts        (SUBSCRIBERS=1000,10000 JOBS=20 TICKS=10 TICK_MS=500)
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { createClient, type Client } from "graphql-ws";
import WebSocket from "ws";
import { signToken } from "../src/graphql/auth.js";
import { createBenchDatabase } from "./support/database.js";

const sizes = (process.env.SUBSCRIBERS ?? "1000,10000").split(",").map(Number);
const jobCount = Number(process.env.JOBS ?? 20);
const ticks = Number(process.env.TICKS ?? 10);
const tickMs = Number(process.env.TICK_MS ?? 500);
const perConnection = Number(process.env.PER_CONNECTION ?? 100);
// 1: jobs report at evenly spread moments of each tick; 0: all in the same instant (worst case).
const stagger = process.env.STAGGER !== "0";
// 1: every connection is a different operator, so no two subscriptions can share an execution.
const distinctCallers = process.env.DISTINCT_CALLERS === "1";
const secret = "fanout-bench-secret-fanout-bench-secret-1";

/** CPU seconds (user + system) a process has used so far. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function rssMegabytes(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((entry) => entry.startsWith("VmRSS:"))!;
  return Math.round(Number(line.replace(/\D+/g, "")) / 1024);
}

async function run(subscribers: number) {
  const database = await createBenchDatabase();
  const server = spawn(process.execPath, [...(process.env.PROFILE ? ["--cpu-prof", "--cpu-prof-dir=.data/profiles"] : []), "--import", "tsx", fileURLToPath(new URL("./support/fanout-server.ts", import.meta.url))], {
    env: { ...process.env, DATABASE_URL: database.url, PORT: "0", LOG_LEVEL: "warn", JWT_SECRET: secret, WORKER_CONCURRENCY: String(jobCount), WORKER_POLL_INTERVAL_MS: "200", TICKS: String(ticks), TICK_MS: String(tickMs), REDIS_URL: "" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const clients: Client[] = [];
  try {
    const url = await new Promise<string>((resolve, reject) => {
      server.stdout!.on("data", (chunk: Buffer) => {
        const match = /listening (\S+)/.exec(chunk.toString());
        if (match) resolve(match[1]!);
      });
      server.once("exit", (code) => reject(new Error(`server exited with ${code}`)));
    });
    const token = await signToken(secret, { id: "fan", role: "user" });
    const idleRss = rssMegabytes(server.pid!);

    // Jobs start a few seconds from now, once every subscriber is listening.
    const startAt = new Date(Date.now() + Number(process.env.START_DELAY_MS ?? 5000 + subscribers));
    const jobIds: string[] = [];
    for (let i = 0; i < jobCount; i++) {
      const response = await fetch(`${url}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify({
          query: `mutation($runAt: DateTime, $payload: JSON) { enqueueJob(input: { type: "ticker", runAt: $runAt, payload: $payload }) { job { id } } }`,
          variables: { runAt: startAt.toISOString(), payload: { offset: stagger ? Math.round((i / jobCount) * tickMs) : 0 } },
        }),
      });
      jobIds.push(((await response.json()) as any).data.enqueueJob.job.id);
    }

    const latencies: number[] = [];
    let received = 0;
    let subscribed = 0;
    let allSubscribedAt = 0;
    let ready = 0;
    let finished = 0;
    let errors = 0;
    const subscribeStart = Date.now();
    const allDone = new Promise<void>(async (resolve) => {
      const connections = Math.ceil(subscribers / perConnection);
      for (let c = 0; c < connections; c++) {
        const callerToken = distinctCallers ? await signToken(secret, { id: `operator-${c}`, role: "operator" }) : token;
        const client = createClient({ url: url.replace("http", "ws") + "/graphql", webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${callerToken}` }, retryAttempts: 0 });
        clients.push(client);
        for (let s = 0; s < perConnection && c * perConnection + s < subscribers; s++) {
          const jobId = jobIds[(c * perConnection + s) % jobIds.length]!;
          client.subscribe<{ jobProgress: { status: string; stage: string | null } }>(
            { query: `subscription($id: ID!) { jobProgress(jobId: $id) { status stage progress } }`, variables: { id: jobId } },
            {
              next: (event) => {
                if (event.data?.jobProgress.status === "QUEUED" && ++ready === subscribers) allSubscribedAt = Date.now();
                const stage = event.data?.jobProgress.stage;
                if (stage === undefined) return;
                if (stage === null) {
                  subscribed++;
                  return;
                }
                received++;
                if (stage.startsWith("sent-")) latencies.push(Date.now() - Number(stage.slice(5)));
              },
              error: () => {
                errors++;
                if (++finished === subscribers) resolve();
              },
              complete: () => {
                if (++finished === subscribers) resolve();
              },
            },
          );
        }
      }
    });
    let peakRss = idleRss;
    const delivery: { start: { server: number; client: number; at: number } | null } = { start: null };
    const cpuTimer = setTimeout(() => {
      delivery.start = { server: cpuSeconds(server.pid!), client: process.cpuUsage().user / 1e6 + process.cpuUsage().system / 1e6, at: Date.now() };
    }, Math.max(0, startAt.getTime() - Date.now()));
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, rssMegabytes(server.pid!))), 200);
    await allDone;
    clearInterval(sampler);
    clearTimeout(cpuTimer);
    const deliveryStart = delivery.start;
    const elapsed = deliveryStart ? (Date.now() - deliveryStart.at) / 1000 : 0;
    const clientCpu = () => (process.cpuUsage().user + process.cpuUsage().system) / 1e6;
    const serverCpuShare = deliveryStart ? Number(((cpuSeconds(server.pid!) - deliveryStart.server) / elapsed).toFixed(2)) : null;
    const clientCpuShare = deliveryStart ? Number(((clientCpu() - deliveryStart.client) / elapsed).toFixed(2)) : null;
    latencies.sort((a, b) => a - b);
    const at = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))];
    // Each subscriber gets every progress report plus the completion (whose stage is the last one).
    const expected = subscribers * (ticks + 1);
    console.log(
      JSON.stringify({ subscribers, distinctCallers, staggered: stagger, connections: Math.ceil(subscribers / perConnection), jobs: jobCount, initialEvents: subscribed, eventsReceived: received, eventsExpected: expected, errors, latencyP50Ms: at(50), latencyP99Ms: at(99), subscribeSeconds: allSubscribedAt ? (allSubscribedAt - subscribeStart) / 1000 : null, subscribedBeforeStart: allSubscribedAt > 0 && allSubscribedAt < startAt.getTime(), serverCpuCores: serverCpuShare, clientCpuCores: clientCpuShare, serverRssIdleMb: idleRss, serverRssPeakMb: peakRss }),
    );
  } finally {
    await Promise.all(clients.map((client) => client.dispose()));
    server.kill("SIGTERM");
    await new Promise((resolve) => server.once("exit", resolve));
    await database.drop();
  }
}

for (const size of sizes) await run(size);
