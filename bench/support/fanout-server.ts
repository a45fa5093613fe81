// The server side of bench/subscription-fanout.ts: one Conveyor (configured from the environment,
// worker pool on) in a process of its own, so that its memory and CPU are measured alone. Its
// `ticker` jobs wait for the benchmark's "go" (over IPC), then report progress every TICK_MS,
// TICKS times, each with its send time and due time in the stage: `t=<epoch ms>,due=<epoch ms>`.
// For SHAPE=watched and SHAPE=operators: HOLD_POOL=1 builds the server exactly as usual (the worker
// pool createConveyor made from the configuration) but defers that pool's start() until the
// benchmark's "start-pool"; "enqueue" enqueues no-op jobs through the engine's batch enqueue.
import { monitorEventLoopDelay } from "node:perf_hooks";
import { createConveyor } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import type { JobHandler } from "../../src/handlers/registry.js";

const ticks = Number(process.env.TICKS ?? 30);
const tickMs = Number(process.env.TICK_MS ?? 100);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const now = () => performance.timeOrigin + performance.now();

let goAt = 0;
let go: () => void = () => {};
const started = new Promise<void>((resolve) => (go = resolve));

const ticker: JobHandler = {
  type: "ticker",
  async run(payload, context) {
    await started;
    // Jobs are independent: each reports at its own moment of the tick (payload.offset ms in).
    const offset = (payload as { offset?: number }).offset ?? 0;
    for (let tick = 1; tick <= ticks; tick++) {
      // Drift-free schedule: report k is due offset + k × TICK_MS after "go". On a saturated event
      // loop the timer fires late, so the report carries both times: when it was due and when sent.
      const due = goAt + offset + tick * tickMs;
      await sleep(Math.max(0, due - now()));
      await context.progress(`t=${now().toFixed(2)},due=${due.toFixed(2)}`, Math.round((tick / ticks) * 100));
    }
    return { ticks };
  },
};

// A handler that does nothing, for the engine at full speed (SHAPE=operators).
const noop: JobHandler = { type: "noop", run: async () => null };

const conveyor = await createConveyor({ config: loadConfig(), handlers: [ticker, noop] });
// HOLD_POOL=1: everything starts as usual (HTTP, subscriptions, maintenance) except the pool, whose
// own start() is kept for "start-pool"; the pool is the one createConveyor built from the config.
let startPool: (() => Promise<void>) | null = null;
if (process.env.HOLD_POOL === "1") {
  const pool = conveyor.workerPool;
  if (!pool) throw new Error("HOLD_POOL=1 needs the worker pool (WORKER_ENABLED)");
  const start = pool.start.bind(pool);
  pool.start = async () => void (startPool = start);
}
await conveyor.start();
const delay = monitorEventLoopDelay({ resolution: 10 });

process.on("message", async (message: { type: string }) => {
  if (message.type === "go") {
    goAt = now();
    delay.reset();
    delay.enable();
    go();
  } else if (message.type === "start-pool") {
    // The moment processing may begin, on the wall clock (as the database's timestamps are).
    const at = Date.now();
    delay.reset();
    delay.enable();
    void startPool!().then(() => process.send!({ type: "pool-started", at, concurrency: conveyor.config.worker.concurrency, startedMs: Date.now() - at }));
  } else if (message.type === "create-assessments") {
    // SETUP=service: what createAssessment and completeAssessment do for each owner, without HTTP.
    const { owners, answers, lanes } = message as unknown as { owners: string[]; answers: Record<string, unknown>; lanes: number };
    const { assessments } = conveyor.services;
    const jobIds: string[] = new Array(owners.length);
    let next = 0;
    await Promise.all(
      Array.from({ length: Math.min(lanes, owners.length) }, async () => {
        while (next < owners.length) {
          const index = next++;
          const assessment = await assessments.create(owners[index]!, "skills-check", answers);
          const completed = await assessments.complete(assessment.id, owners[index]!);
          if (!completed.job) throw new Error(`completing ${assessment.id} created no job`);
          jobIds[index] = completed.job.id;
        }
      }),
    );
    process.send!({ type: "assessments-created", jobIds });
  } else if (message.type === "enqueue") {
    const { count, batch } = message as unknown as { count: number; batch: number };
    const began = now();
    for (let done = 0; done < count; done += batch) {
      const inputs = Array.from({ length: Math.min(batch, count - done) }, () => ({ type: "noop", owner: "bench-producer", payload: {} }));
      await conveyor.jobs.enqueueMany(inputs, "bench-producer");
    }
    process.send!({ type: "enqueued", count, seconds: (now() - began) / 1000 });
  } else if (message.type === "stats") {
    const memory = process.memoryUsage();
    const mb = (bytes: number) => Math.round(bytes / 1048576);
    process.send!({
      type: "stats",
      memory: { rss: mb(memory.rss), heapUsed: mb(memory.heapUsed), heapTotal: mb(memory.heapTotal), external: mb(memory.external), arrayBuffers: mb(memory.arrayBuffers) },
      // The histogram records whole sampling intervals: what exceeds the 10 ms resolution is the delay.
      eventLoopDelayMs: { p50: delay.percentile(50) / 1e6 - 10, p99: delay.percentile(99) / 1e6 - 10, max: delay.max / 1e6 - 10 },
    });
  }
});
console.log(`listening ${conveyor.url}`);
process.on("SIGTERM", () => void conveyor.stop().then(() => process.exit(0)));
