// One worker process of bench/scale-out.ts: a full Conveyor (configured from the environment: HTTP
// on PORT=0, the worker pool createConveyor builds from WORKER_* with the engine's defaults) with a
// no-op handler that counts its calls. The pool's start() is held until the benchmark's
// "start-pool" (over IPC), so that every process starts claiming at the same moment.
// IPC: "start-pool" → "pool-started" { at, workerId }; "count" → "count" { calls }.
import { createConveyor } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import type { JobHandler } from "../../src/handlers/registry.js";

let calls = 0;
const noop: JobHandler = {
  type: "noop",
  async run() {
    calls++;
    return null;
  },
};

const conveyor = await createConveyor({ config: loadConfig(), handlers: [noop] });
const pool = conveyor.workerPool;
if (!pool) throw new Error("scale-out-worker needs WORKER_ENABLED=true");
let startPool: (() => Promise<void>) | null = null;
const start = pool.start.bind(pool);
pool.start = async () => void (startPool = start);
await conveyor.start();

process.on("message", (message: { type: string }) => {
  if (message.type === "start-pool") {
    const at = Date.now();
    void startPool!().then(() => process.send!({ type: "pool-started", at, workerId: pool.workerId, concurrency: conveyor.config.worker.concurrency, prefetch: conveyor.config.worker.prefetch }));
  } else if (message.type === "count") {
    process.send!({ type: "count", calls });
  }
});
console.log(`listening ${conveyor.url}`);
process.on("SIGTERM", () => void conveyor.stop().then(() => process.exit(0)));
