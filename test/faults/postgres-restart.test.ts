// Issue 11, item 7: PostgreSQL unavailable at start, and restarted in the middle of a run.
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { createConveyor, type Conveyor } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import { startEmbeddedPostgres, type EmbeddedDatabase } from "../../src/db/embedded-postgres.js";
import type { JobHandler } from "../../src/handlers/registry.js";
import { createLogger } from "../../src/logger.js";
import { eventually } from "../support/conveyor.js";
import { freePort } from "../multi-instance/instances.js";

const JOBS = 1000;
const calls = new Map<string, number>();
const counted: JobHandler<Record<string, never>, { ok: true }> = {
  type: "counted",
  async run(_payload, context) {
    calls.set(context.job.id, (calls.get(context.job.id) ?? 0) + 1);
    await new Promise((resolve) => setTimeout(resolve, 5));
    return { ok: true };
  },
};

function configFor(url: string) {
  return loadConfig({
    NODE_ENV: "test",
    PORT: "0",
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "silent",
    DATABASE_URL: url,
    // Events through LISTEN/NOTIFY: its connection must come back too.
    REDIS_URL: "",
    WORKER_ENABLED: "true",
    WORKER_CONCURRENCY: "8",
    WORKER_POLL_INTERVAL_MS: "200",
    // A completion whose write fails during the outage is retried for half of this: longer than
    // the outage (a restart of the embedded server took 16 s under CI's load, past the 15 s of a
    // 30 s threshold), so no handler runs twice because its result could not be written.
    STALLED_THRESHOLD_MS: "60000",
    STALLED_CHECK_INTERVAL_MS: "1000",
    RETRY_INITIAL_DELAY_MS: "100",
    RETENTION_INTERVAL_MS: "0",
    HEALTH_CACHE_MS: "0",
    DATABASE_POOL_SIZE: "10",
  });
}

describe("item 7: PostgreSQL faults", () => {
  const root = mkdtempSync(path.join(tmpdir(), "conveyor-pg-restart-"));
  chmodSync(root, 0o755);
  const directory = path.join(root, "data");
  let database: EmbeddedDatabase | undefined;
  let conveyor: Conveyor | undefined;
  afterAll(async () => {
    await conveyor?.stop();
    await database?.stop();
    rmSync(root, { recursive: true, force: true });
  });

  it("waits for a PostgreSQL that is down at start, then restarted mid-run: /ready 503 meanwhile, 1,000 jobs each completed exactly once", async () => {
    const port = await freePort();
    const url = `postgresql://postgres:conveyor@127.0.0.1:${port}/conveyor`;
    const logger = createLogger(process.env.TEST_LOG_LEVEL ?? "silent");

    // Created once, then down at start: Conveyor waits (and says so) until the server is up.
    await (await startEmbeddedPostgres({ directory, port, database: "conveyor", logger })).stop();
    const creating = createConveyor({ config: configFor(url), logger, handlers: [counted] });
    let created = false;
    void creating.then(() => (created = true), () => undefined);
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(created).toBe(false);
    database = await startEmbeddedPostgres({ directory, port, database: "conveyor", logger });
    conveyor = await creating;
    await conveyor.start();
    expect((await fetch(`${conveyor.url}/ready`)).status).toBe(200);

    const { jobs } = conveyor;
    const ids: string[] = [];
    for (let offset = 0; offset < JOBS; offset += 100) {
      const batch = await jobs.enqueueMany(Array.from({ length: 100 }, () => ({ type: "counted", owner: "alice" })), "alice");
      ids.push(...batch.map((result) => result.job.id));
    }
    expect(new Set(ids).size).toBe(JOBS);
    const completed = async () => {
      const { rows } = await conveyor!.database.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM processing_jobs WHERE status = 'COMPLETED'`);
      return rows[0]!.n;
    };
    await eventually(async () => (await completed()) >= 150, 60_000, 20);

    // Restart in the middle of the run.
    const stoppedAt = Date.now();
    await database.stop();
    const duringOutage = await fetch(`${conveyor.url}/ready`);
    expect(duringOutage.status).toBe(503);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect((await fetch(`${conveyor.url}/ready`)).status).toBe(503);
    database = await startEmbeddedPostgres({ directory, port, database: "conveyor", logger });
    const outageMs = Date.now() - stoppedAt;
    // The premise of "exactly once" below: completions are retried for 30 s.
    expect(outageMs).toBeLessThan(30_000);
    await eventually(async () => (await fetch(`${conveyor!.url}/ready`)).status === 200, 30_000, 100);

    await eventually(async () => (await completed()) === JOBS, 120_000, 200);
    const { rows } = await conveyor.database.pool.query<{ status: string; n: number }>(`SELECT status, count(*)::int AS n FROM processing_jobs GROUP BY status`);
    expect(rows).toEqual([{ status: "COMPLETED", n: JOBS }]);
    const runs = ids.map((id) => calls.get(id) ?? 0);
    const twice = runs.filter((count) => count !== 1).length;
    console.info(`postgres restart: ${JOBS} jobs, outage ${outageMs} ms, handler calls ${runs.reduce((a, b) => a + b, 0)}, jobs not run exactly once: ${twice}`);
    expect(twice).toBe(0);

    // The LISTEN connections came back: a new job's events reach this process through PostgreSQL.
    const probe = (await jobs.enqueue({ type: "counted", owner: "alice" }, "alice")).job.id;
    const events = conveyor.events.pubsub.subscribe("job:changed", probe)[Symbol.asyncIterator]();
    await eventually(async () => {
      const next = await Promise.race([events.next(), new Promise<null>((resolve) => setTimeout(() => resolve(null), 500))]);
      return next !== null && !next.done && next.value.status === "COMPLETED";
    }, 20_000, 0);
    await events.return?.();
  }, 240_000);
});
