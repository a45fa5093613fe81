// A job enqueued into an idle pool after a quiet spell: time from the enqueue call to its handler's
// start, ROUNDS (3) times, each after QUIET_MS (12,000: longer than pg's 10 s idle timeout, which
// closed the connections a job needs before Conveyor kept some open; src/db/database.ts,
// KEPT_CONNECTIONS). One instance (API and pool in one process, as `npm start`), concurrency 10,
// a fresh, never-analyzed database; the first round's job is also the instance's first.
//   npx tsx bench/after-quiet.ts
//   QUIET_MS=12000 ROUNDS=3 npx tsx bench/after-quiet.ts
import { createConveyor } from "../src/app.js";
import { loadConfig } from "../src/config.js";
import type { JobHandler } from "../src/handlers/registry.js";
import { createBenchDatabase } from "./support/database.js";

const quietMs = Number(process.env.QUIET_MS ?? 12_000);
const rounds = Number(process.env.ROUNDS ?? 3);

const database = await createBenchDatabase();
let handlerStarted: (at: number) => void = () => {};
const noop: JobHandler<unknown, null> = {
  type: "noop",
  async run() {
    handlerStarted(performance.now());
    return null;
  },
};
const config = loadConfig({ DATABASE_URL: database.url, PORT: "0", LOG_LEVEL: "warn", WORKER_ENABLED: "true", WORKER_CONCURRENCY: "10" });
const conveyor = await createConveyor({ config, handlers: [noop] });
try {
  await conveyor.start({ http: false });
  const waits: number[] = [];
  for (let round = 0; round < rounds; round++) {
    await new Promise((resolve) => setTimeout(resolve, quietMs));
    const started = new Promise<number>((resolve) => (handlerStarted = resolve));
    const sent = performance.now();
    await conveyor.jobs.enqueue({ type: "noop", owner: "bench", payload: { round } }, "bench");
    waits.push((await started) - sent);
  }
  console.log(`after ${quietMs / 1000} s of quiet, enqueue → handler start (ms), Node ${process.version}: ${waits.map((wait) => wait.toFixed(2)).join(", ")}`);
} finally {
  await conveyor.stop();
  await database.drop();
}
