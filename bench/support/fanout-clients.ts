// Subscribers for bench/subscription-fanout.ts, in a child process (several can run side by side).
// Commands over IPC: "subscribe" (open the connections and the subscriptions, report when each has
// its first event), "measure" (from now on, time every progress event), "report", "close".
import { monitorEventLoopDelay } from "node:perf_hooks";
import { createClient, type Client } from "graphql-ws";
import WebSocket from "ws";

interface Plan {
  url: string;
  /** One entry per WebSocket: its token and the jobs it subscribes to (one subscription each). */
  connections: { token: string; jobIds: string[] }[];
  /** Subscriptions waiting for their first event at any moment, while subscribing. */
  inFlight: number;
}

interface Progress {
  jobProgress: { status: string; stage: string | null; progress: number; at: string };
}

const QUERY = `subscription Progress($id: ID!) { jobProgress(jobId: $id) { status stage progress at } }`;
const now = () => performance.timeOrigin + performance.now();

const clients: Client[] = [];
let measuring = false;
const latencies: number[] = [];
const fromDatabaseClock: number[] = [];
const fromDue: number[] = [];
/** Milliseconds after "measure" of the last progress event and of the last completion. */
const last = { progressMs: 0, completedMs: 0, endedMs: 0 };
const counts = { progress: 0, progressBeforeMeasuring: 0, completed: 0, other: 0, errors: 0, ended: 0, subscriptions: 0 };
const errorSamples: string[] = [];
let allEnded: () => void = () => {};
const ended = new Promise<void>((resolve) => (allEnded = resolve));
const delay = monitorEventLoopDelay({ resolution: 10 });
let cpuAtMeasure = 0;
let measureStartedAt = 0;

function cpuSeconds() {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
}

async function subscribeAll(plan: Plan): Promise<void> {
  const subscriptions = plan.connections.flatMap((connection, index) => connection.jobIds.map((jobId) => ({ index, jobId })));
  counts.subscriptions = subscriptions.length;
  const connectionClients = plan.connections.map((connection) =>
    createClient({
      url: `${plan.url.replace(/^http/, "ws")}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${connection.token}` },
      retryAttempts: 0,
      lazy: true,
      // A few seconds of silence are normal before the jobs start.
      keepAlive: 0,
    }),
  );
  clients.push(...connectionClients);
  let next = 0;
  // Open `inFlight` at a time: each lane starts the next one when its subscription's first event arrives.
  await Promise.all(
    Array.from({ length: Math.min(plan.inFlight, subscriptions.length) }, async () => {
      while (next < subscriptions.length) {
        const { index, jobId } = subscriptions[next++]!;
        await new Promise<void>((firstEvent) => {
          let first = true;
          const settleFirst = () => {
            if (first) {
              first = false;
              firstEvent();
            }
          };
          connectionClients[index]!.subscribe<Progress>(
            { query: QUERY, variables: { id: jobId } },
            {
              next: (result) => {
                settleFirst();
                const event = result.data?.jobProgress;
                if (!event) {
                  counts.other++;
                  return;
                }
                if (event.status === "PROCESSING" && event.stage?.startsWith("t=")) {
                  if (!measuring) {
                    counts.progressBeforeMeasuring++;
                    return;
                  }
                  const received = now();
                  counts.progress++;
                  last.progressMs = performance.now() - measureStartedAt;
                  const [sent, due] = event.stage.slice(2).split(",due=");
                  latencies.push(received - Number(sent));
                  fromDue.push(received - Number(due));
                  fromDatabaseClock.push(received - Date.parse(event.at));
                } else if (event.status === "COMPLETED") {
                  counts.completed++;
                  if (measuring) last.completedMs = performance.now() - measureStartedAt;
                }
                else counts.other++;
              },
              error: (error) => {
                settleFirst();
                counts.errors++;
                if (errorSamples.length < 5) errorSamples.push(describe(error));
                if (++counts.ended === counts.subscriptions) allEnded();
              },
              complete: () => {
                settleFirst();
                if (++counts.ended === counts.subscriptions) allEnded();
              },
            },
          );
        });
      }
    }),
  );
}

function describe(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (Array.isArray(error)) return JSON.stringify(error).slice(0, 300);
  const close = error as { code?: number; reason?: string };
  if (close && typeof close.code === "number") return `socket closed ${close.code} ${close.reason ?? ""}`;
  return String(error).slice(0, 300);
}

process.on("message", async (message: { type: string; plan?: Plan }) => {
  if (message.type === "subscribe") {
    const began = performance.now();
    await subscribeAll(message.plan!);
    process.send!({ type: "subscribed", subscriptions: counts.subscriptions, errors: counts.errors, seconds: (performance.now() - began) / 1000, errorSamples });
  } else if (message.type === "measure") {
    measuring = true;
    measureStartedAt = performance.now();
    cpuAtMeasure = cpuSeconds();
    delay.reset();
    delay.enable();
    void ended.then(() => {
      last.endedMs = performance.now() - measureStartedAt;
      process.send!({ type: "ended" });
    });
  } else if (message.type === "report") {
    delay.disable();
    const seconds = (performance.now() - measureStartedAt) / 1000;
    process.send!({
      type: "report",
      counts,
      last,
      errorSamples,
      latencies,
      fromDatabaseClock,
      fromDue,
      cpuCores: (cpuSeconds() - cpuAtMeasure) / seconds,
      // The histogram records whole sampling intervals: what exceeds the 10 ms resolution is the delay.
      eventLoopDelayMs: { p50: delay.percentile(50) / 1e6 - 10, p99: delay.percentile(99) / 1e6 - 10, max: delay.max / 1e6 - 10 },
    });
  } else if (message.type === "close") {
    await Promise.all(clients.map((client) => client.dispose()));
    process.exit(0);
  }
});
console.log("ready");
