// Subscription fan-out: SUBSCRIBERS graphql-ws subscriptions to jobProgress, spread over
// CONNECTIONS WebSockets, on one server process; prints event latency p50/p99, events received
// against expected, and the server's resident memory.
//   npx tsx bench/subscription-fanout.ts        (SUBSCRIBERS=1000,10000 JOBS=20 TICKS=10 TICK_MS=500)
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { createClient, type Client } from "graphql-ws";
import pg from "pg";
import WebSocket from "ws";
import { createDatabaseIfMissing, quoteIdentifier } from "../src/db/embedded-postgres.js";
import { signToken } from "../src/graphql/auth.js";

const serverUrl = process.env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres";
const sizes = (process.env.SUBSCRIBERS ?? "1000,10000").split(",").map(Number);
const jobCount = Number(process.env.JOBS ?? 20);
const ticks = Number(process.env.TICKS ?? 10);
const tickMs = Number(process.env.TICK_MS ?? 500);
const perConnection = Number(process.env.PER_CONNECTION ?? 100);
const secret = "fanout-bench-secret-fanout-bench-secret-1";

const adminUrl = new URL(serverUrl);
adminUrl.pathname = "/postgres";

function rssMegabytes(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, "utf8").split("\n").find((entry) => entry.startsWith("VmRSS:"))!;
  return Math.round(Number(line.replace(/\D+/g, "")) / 1024);
}

async function run(subscribers: number) {
  const name = `conveyor_bench_${randomBytes(4).toString("hex")}`;
  await createDatabaseIfMissing(adminUrl.toString(), name);
  const databaseUrl = new URL(adminUrl);
  databaseUrl.pathname = `/${name}`;
  const server = spawn(process.execPath, ["--import", "tsx", fileURLToPath(new URL("./support/fanout-server.ts", import.meta.url))], {
    env: { ...process.env, DATABASE_URL: databaseUrl.toString(), PORT: "0", LOG_LEVEL: "warn", JWT_SECRET: secret, WORKER_CONCURRENCY: String(jobCount), WORKER_POLL_INTERVAL_MS: "200", TICKS: String(ticks), TICK_MS: String(tickMs), REDIS_URL: "" },
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
    const startAt = new Date(Date.now() + 5000 + subscribers / 2);
    const jobIds: string[] = [];
    for (let i = 0; i < jobCount; i++) {
      const response = await fetch(`${url}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify({ query: `mutation($runAt: DateTime) { enqueueJob(input: { type: "ticker", runAt: $runAt }) { job { id } } }`, variables: { runAt: startAt.toISOString() } }),
      });
      jobIds.push(((await response.json()) as any).data.enqueueJob.job.id);
    }

    const latencies: number[] = [];
    let received = 0;
    let subscribed = 0;
    let finished = 0;
    let errors = 0;
    const allDone = new Promise<void>((resolve) => {
      const connections = Math.ceil(subscribers / perConnection);
      for (let c = 0; c < connections; c++) {
        const client = createClient({ url: url.replace("http", "ws") + "/graphql", webSocketImpl: WebSocket, connectionParams: { authorization: `Bearer ${token}` }, retryAttempts: 0 });
        clients.push(client);
        for (let s = 0; s < perConnection && c * perConnection + s < subscribers; s++) {
          const jobId = jobIds[(c * perConnection + s) % jobIds.length]!;
          client.subscribe<{ jobProgress: { stage: string | null } }>(
            { query: `subscription($id: ID!) { jobProgress(jobId: $id) { status stage progress } }`, variables: { id: jobId } },
            {
              next: (event) => {
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
    const sampler = setInterval(() => (peakRss = Math.max(peakRss, rssMegabytes(server.pid!))), 200);
    await allDone;
    clearInterval(sampler);
    latencies.sort((a, b) => a - b);
    const at = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))];
    // Each subscriber gets every progress report plus the completion (whose stage is the last one).
    const expected = subscribers * (ticks + 1);
    console.log(
      JSON.stringify({ subscribers, connections: Math.ceil(subscribers / perConnection), jobs: jobCount, initialEvents: subscribed, eventsReceived: received, eventsExpected: expected, errors, latencyP50Ms: at(50), latencyP99Ms: at(99), serverRssIdleMb: idleRss, serverRssPeakMb: peakRss }),
    );
  } finally {
    await Promise.all(clients.map((client) => client.dispose()));
    server.kill("SIGTERM");
    await new Promise((resolve) => server.once("exit", resolve));
    const admin = new pg.Client({ connectionString: adminUrl.toString() });
    await admin.connect();
    await admin.query(`DROP DATABASE IF EXISTS ${quoteIdentifier(name)} WITH (FORCE)`);
    await admin.end();
  }
}

for (const size of sizes) await run(size);
