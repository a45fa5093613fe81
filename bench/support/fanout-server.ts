// The server side of bench/subscription-fanout.ts: one Conveyor (configured from the environment,
// worker pool on) in a process of its own, so that its memory and CPU are measured alone. Its
// `ticker` jobs wait for the benchmark's "go" (over IPC), then report progress every TICK_MS,
// TICKS times, each with its send time and due time in the stage: `t=<epoch ms>,due=<epoch ms>`.
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

const conveyor = await createConveyor({ config: loadConfig(), handlers: [ticker] });
await conveyor.start();
const delay = monitorEventLoopDelay({ resolution: 10 });

process.on("message", (message: { type: string }) => {
  if (message.type === "go") {
    goAt = now();
    delay.reset();
    delay.enable();
    go();
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
