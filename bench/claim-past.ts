// What a claim reads past: concurrency-1 throughput of MEASURED (5,000) no-op jobs that wait behind
// AHEAD (0, 10,000, 50,000) jobs the pool does not take, on a fresh, never-analyzed database.
//   SHAPE=type:   the jobs ahead are of a type this pool has no handler for (another service's
//                 jobs on a shared database, or a retired type's backlog), due, same priority.
//   SHAPE=future: the jobs ahead are HIGH priority and due tomorrow.
// The runnable index is ordered by priority, run_at and id, not by type (README, "The hot path"):
// a claim steps over the first shape's jobs reading each one's row. The second's it does not read:
// it walks each priority apart and stops at its first job not due (sql.ts, CLAIM). Each line is its own database and server; the clock runs from the pool's start to the
// last job's handler start.
//   npx tsx bench/claim-past.ts
//   SHAPES=type,future AHEAD=0,10000,50000 MEASURED=5000 npx tsx bench/claim-past.ts
import { createConveyor } from "../src/app.js";
import { loadConfig } from "../src/config.js";
import type { JobHandler } from "../src/handlers/registry.js";
import { enqueueJobs, type EnqueueInput } from "../src/jobs/queue.js";
import { createBenchDatabase } from "./support/database.js";

const shapes = (process.env.SHAPES ?? "type,future").split(",").filter(Boolean);
const aheadCounts = (process.env.AHEAD ?? "0,10000,50000").split(",").filter(Boolean).map(Number);
const measured = Number(process.env.MEASURED ?? 5_000);
for (const shape of shapes) if (shape !== "type" && shape !== "future") throw new Error(`SHAPES takes type and future, not ${shape}`);

async function run(shape: string, ahead: number) {
  const database = await createBenchDatabase();
  let started = 0;
  let allStarted = () => {};
  const done = new Promise<void>((resolve) => (allStarted = resolve));
  const noop: JobHandler<unknown, null> = {
    type: "noop",
    async run() {
      if (++started === measured) allStarted();
      return null;
    },
  };
  const config = loadConfig({ DATABASE_URL: database.url, PORT: "0", LOG_LEVEL: "warn", WORKER_ENABLED: "true", WORKER_CONCURRENCY: "1" });
  const conveyor = await createConveyor({ config, handlers: [noop] });
  try {
    const tomorrow = new Date(Date.now() + 86_400_000);
    // enqueueJobs, not JobService: a type this process registered no handler for is what another service enqueues.
    const aheadJob: EnqueueInput = shape === "type" ? { type: "elsewhere", owner: "bench" } : { type: "noop", owner: "bench", priority: "HIGH", runAt: tomorrow };
    for (let i = 0; i < ahead; i += 1000) {
      await enqueueJobs(conveyor.database.pool, Array.from({ length: Math.min(1000, ahead - i) }, () => aheadJob), { actor: "bench" });
    }
    for (let i = 0; i < measured; i += 1000) {
      await enqueueJobs(conveyor.database.pool, Array.from({ length: Math.min(1000, measured - i) }, () => ({ type: "noop", owner: "bench" })), { actor: "bench" });
    }
    const start = performance.now();
    await conveyor.start({ http: false });
    await done;
    const seconds = (performance.now() - start) / 1000;
    return { shape, ahead, measuredJobs: measured, jobsPerSecond: Math.round(measured / seconds) };
  } finally {
    await conveyor.stop();
    await database.drop();
  }
}

console.log(`What a claim reads past, concurrency 1, Node ${process.version}; fresh database per line, no ANALYZE`);
for (const shape of shapes) for (const ahead of aheadCounts) console.log("claim past", JSON.stringify(await run(shape, ahead)));
