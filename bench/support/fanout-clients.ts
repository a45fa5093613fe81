// Subscribers for bench/subscription-fanout.ts, in a child process (several can run side by side).
// Commands over IPC: "subscribe" (open the connections and the subscriptions, report when each has
// its first event), "measure" (from now on, time every progress event), "count" (events so far),
// "report", "close".
// Plan modes: "ticker" (the default: jobProgress of ticker jobs, latency from the send time in the
// stage), "watched" (jobProgress of one's own assessment job: which of the 7 expected events came,
// latency from each event's `at`), "updates" / "batches" (an operator on unfiltered jobUpdates /
// jobUpdateBatches: every change counted by status, latency from each change's `at`).
import { monitorEventLoopDelay } from "node:perf_hooks";
import { createClient, type Client } from "graphql-ws";
import WebSocket from "ws";

interface Plan {
  url: string;
  /** One entry per WebSocket: its token and the jobs it subscribes to (one subscription each). */
  connections: { token: string; jobIds: string[] }[];
  /** Subscriptions waiting for their first event at any moment, while subscribing. */
  inFlight: number;
  mode?: "ticker" | "watched" | "updates" | "batches";
  /** jobUpdateBatches(batchMs) for mode "batches". */
  batchMs?: number;
}

interface Progress {
  jobProgress: { status: string; stage: string | null; progress: number; at: string };
}

const QUERY = `subscription Progress($id: ID!) { jobProgress(jobId: $id) { status stage progress at } }`;
const WATCH_QUERY = `subscription Watch($id: ID!) { jobProgress(jobId: $id) { status stage at } }`;
const UPDATES_QUERY = `subscription Updates { jobUpdates { jobId status at } }`;
const BATCHES_QUERY = `subscription Batches($batchMs: Int) { jobUpdateBatches(batchMs: $batchMs) { coalesced changes { jobId status at } } }`;
/** What each watcher of an assessment job should see: its state when subscribing, then 6 changes. */
const WATCHED_EVENTS = ["initial", "PROCESSING", "loading", "validating", "scoring", "finalizing", "COMPLETED"];
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
/** Mode "watched": one entry per subscription, the expected events it received (WATCHED_EVENTS). */
const watchers: { seen: Set<string>; ended: boolean }[] = [];
const watched = { events: 0, duplicates: 0, unexpected: 0, lastCompletedEpochMs: 0, initialStatuses: {} as Record<string, number> };
/** Modes "watched", "updates", "batches": latency from the change's `at` to receipt, by kind of event. */
const latencyByKind: Record<string, number[]> = {};
/** Modes "updates" / "batches": changes received by status, messages, changes folded by the server. */
const operators = { changes: 0, messages: 0, coalesced: 0, completedJobs: 0, lastEpochMs: 0, byStatus: {} as Record<string, number> };
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
          const onWatched = plan.mode === "watched" ? watchedHandler() : null;
          connectionClients[index]!.subscribe<Progress>(
            { query: onWatched ? WATCH_QUERY : QUERY, variables: { id: jobId } },
            {
              next: (result) => {
                settleFirst();
                if (onWatched) return onWatched.next(result.data?.jobProgress);
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
                onWatched?.end();
                counts.errors++;
                if (errorSamples.length < 5) errorSamples.push(describe(error));
                if (++counts.ended === counts.subscriptions) allEnded();
              },
              complete: () => {
                settleFirst();
                onWatched?.end();
                if (++counts.ended === counts.subscriptions) allEnded();
              },
            },
          );
        });
      }
    }),
  );
}

function record(kind: string, latencyMs: number): void {
  (latencyByKind[kind] ??= []).push(latencyMs);
}

/** Mode "watched": one subscriber's view of its own job, event by event. */
function watchedHandler() {
  const watcher = { seen: new Set<string>(), ended: false };
  watchers.push(watcher);
  return {
    next(event: Progress["jobProgress"] | undefined) {
      // The wall clock, as `at` (the database's timestamps) is.
      const received = Date.now();
      if (!event) return void counts.other++;
      watched.events++;
      let kind: string;
      if (watcher.seen.size === 0 && !watcher.seen.has("initial")) {
        // The state when subscribing (QUEUED: the jobs are not due yet); its `at` is its creation.
        kind = "initial";
        watched.initialStatuses[event.status] = (watched.initialStatuses[event.status] ?? 0) + 1;
      } else {
        kind = event.status === "PROCESSING" ? (event.stage && WATCHED_EVENTS.includes(event.stage) ? event.stage : "PROCESSING") : event.status;
        if (!WATCHED_EVENTS.includes(kind)) watched.unexpected++;
        record(kind, received - Date.parse(event.at));
        if (kind === "COMPLETED") watched.lastCompletedEpochMs = Math.max(watched.lastCompletedEpochMs, received);
      }
      if (watcher.seen.has(kind)) watched.duplicates++;
      watcher.seen.add(kind);
    },
    end() {
      watcher.ended = true;
    },
  };
}

/** Modes "updates" and "batches": each connection is one operator with one subscription. */
async function subscribeOperators(plan: Plan): Promise<void> {
  counts.subscriptions = plan.connections.length;
  await Promise.all(
    plan.connections.map(
      (connection) =>
        new Promise<void>((connected) => {
          const client = createClient({
            url: `${plan.url.replace(/^http/, "ws")}/graphql`,
            webSocketImpl: WebSocket,
            connectionParams: { authorization: `Bearer ${connection.token}` },
            retryAttempts: 0,
            lazy: true,
            keepAlive: 0,
            on: { connected: () => connected() },
          });
          clients.push(client);
          const completedJobs = new Set<string>();
          const take = (change: { jobId: string; status: string; at: string }, received: number) => {
            operators.changes++;
            operators.byStatus[change.status] = (operators.byStatus[change.status] ?? 0) + 1;
            record(change.status, received - Date.parse(change.at));
            if (change.status === "COMPLETED" && !completedJobs.has(change.jobId)) {
              completedJobs.add(change.jobId);
              operators.completedJobs++;
            }
          };
          const batches = plan.mode === "batches";
          client.subscribe<any>(
            batches ? { query: BATCHES_QUERY, variables: { batchMs: plan.batchMs ?? 100 } } : { query: UPDATES_QUERY },
            {
              next: (result) => {
                // The wall clock, as `at` (the database's timestamps) is.
                const received = Date.now();
                operators.messages++;
                operators.lastEpochMs = received;
                if (batches) {
                  const batch = result.data?.jobUpdateBatches as { coalesced: number; changes: { jobId: string; status: string; at: string }[] } | undefined;
                  if (!batch) return void counts.other++;
                  operators.coalesced += batch.coalesced;
                  for (const change of batch.changes) take(change, received);
                } else {
                  const change = result.data?.jobUpdates;
                  if (!change) return void counts.other++;
                  take(change, received);
                }
              },
              error: (error) => {
                connected();
                counts.errors++;
                if (errorSamples.length < 5) errorSamples.push(describe(error));
                if (++counts.ended === counts.subscriptions) allEnded();
              },
              complete: () => {
                if (++counts.ended === counts.subscriptions) allEnded();
              },
            },
          );
        }),
    ),
  );
  // The socket is acknowledged before the subscribe message is handled: give the server a moment
  // to have every subscription listening (nothing changes meanwhile: the benchmark waits for this).
  await new Promise((resolve) => setTimeout(resolve, 500));
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
    const plan = message.plan!;
    if (plan.mode === "updates" || plan.mode === "batches") await subscribeOperators(plan);
    else await subscribeAll(plan);
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
  } else if (message.type === "count") {
    process.send!({ type: "count", events: watched.events + operators.changes, completedJobs: operators.completedJobs, ended: counts.ended, lastEpochMs: operators.lastEpochMs });
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
      latencyByKind,
      watched: {
        ...watched,
        subscriptions: watchers.length,
        // Expected events a subscriber did not receive; one that ended without COMPLETED lacks it.
        missing: watchers.reduce((sum, watcher) => sum + WATCHED_EVENTS.filter((kind) => !watcher.seen.has(kind)).length, 0),
        withoutCompleted: watchers.filter((watcher) => !watcher.seen.has("COMPLETED")).length,
        notEnded: watchers.filter((watcher) => !watcher.ended).length,
      },
      operators,
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
