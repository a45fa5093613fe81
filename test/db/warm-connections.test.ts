import pg from "pg";
import { describe, expect, it } from "vitest";
import { KEPT_CONNECTIONS } from "../../src/db/database.js";
import { eventually, startTestConveyor } from "../support/conveyor.js";

/** What `read` finds on each of `count` connections checked out at once (so each a different one). */
async function onEachConnection<T>(pool: pg.Pool, count: number, read: (connection: pg.PoolClient) => Promise<T>): Promise<T[]> {
  const connections = await Promise.all(Array.from({ length: count }, () => pool.connect()));
  try {
    return await Promise.all(connections.map(read));
  } finally {
    for (const connection of connections) connection.release();
  }
}

/** The statements prepared on each of `count` connections. */
function preparedOnEach(pool: pg.Pool, count: number): Promise<string[][]> {
  return onEachConnection(pool, count, async (connection) => (await connection.query<{ name: string }>("SELECT name FROM pg_prepared_statements ORDER BY name")).rows.map((row) => row.name));
}

/** How many custom and generic plans the enqueue has had on each of `count` connections. */
function enqueuePlansOnEach(pool: pg.Pool, count: number): Promise<{ custom: number; generic: number }[]> {
  return onEachConnection(pool, count, async (connection) => {
    const { rows } = await connection.query<{ custom: string; generic: string }>(
      "SELECT custom_plans AS custom, generic_plans AS generic FROM pg_prepared_statements WHERE name = 'conveyor-enqueue'",
    );
    expect(rows, "the enqueue is prepared on each kept connection").toHaveLength(1);
    return { custom: Number(rows[0]!.custom), generic: Number(rows[0]!.generic) };
  });
}

describe("connections opened at start-up", () => {
  it("are kept by each pool with the first job's statements prepared, and write nothing", async () => {
    const conveyor = await startTestConveyor({
      // No poll while it is looked at: a claim in flight would make the check open a connection of its own.
      environment: { WORKER_ENABLED: "true", WORKER_CONCURRENCY: "4", WORKER_POLL_INTERVAL_MS: "60000" },
      handlers: [{ type: "no-op", run: async () => null }],
    });
    try {
      const { pool, workerPool, outcomePool } = conveyor.database;
      // The pool's first claim, at start, may still be waiting for a connection or running, and the
      // warm-up may outlast start-up's wait for it (WARM_UP_WAIT_MS) on a slow machine.
      await eventually(async () => {
        await new Promise((resolve) => setImmediate(resolve));
        return (
          workerPool.waitingCount === 0 &&
          workerPool.idleCount === workerPool.totalCount &&
          pool.idleCount === pool.totalCount &&
          pool.totalCount >= KEPT_CONNECTIONS.api
        );
      });
      expect([pool.totalCount, workerPool.totalCount, outcomePool.totalCount]).toEqual([
        expect.any(Number),
        KEPT_CONNECTIONS.worker,
        KEPT_CONNECTIONS.outcome,
      ]);
      expect(pool.totalCount).toBeGreaterThanOrEqual(KEPT_CONNECTIONS.api);
      for (const statements of await preparedOnEach(pool, KEPT_CONNECTIONS.api)) expect(statements).toContain("conveyor-enqueue");
      // Past the five executions PostgreSQL plans for their parameters, with the generic plan built:
      // the first jobs do not plan the enqueue again.
      for (const plans of await enqueuePlansOnEach(pool, KEPT_CONNECTIONS.api)) expect(plans).toEqual({ custom: 5, generic: 1 });
      for (const statements of await preparedOnEach(workerPool, KEPT_CONNECTIONS.worker)) expect(statements).toContain("conveyor-claim");
      for (const statements of await preparedOnEach(outcomePool, KEPT_CONNECTIONS.outcome)) expect(statements).toContain("conveyor-complete");
      // Kept past pg's idle timeout (10 s): the pools' floor.
      expect([pool, workerPool, outcomePool].map((each) => (each as unknown as { options: { min: number } }).options.min)).toEqual([
        KEPT_CONNECTIONS.api,
        KEPT_CONNECTIONS.worker,
        KEPT_CONNECTIONS.outcome,
      ]);
      const { rows } = await pool.query(
        "SELECT (SELECT count(*) FROM processing_jobs)::int AS jobs, (SELECT count(*) FROM job_events)::int AS events, (SELECT count(*) FROM audit_events)::int AS audit",
      );
      expect(rows[0]).toEqual({ jobs: 0, events: 0, audit: 0 });
      // The warmed statements still do their work: an enqueue, its claim and its completion.
      const { job } = await conveyor.jobs.enqueue({ type: "no-op", owner: "warm", payload: {} }, "warm");
      await eventually(async () => (await conveyor.jobs.find(job.id))?.status === "COMPLETED");
    } finally {
      await conveyor.dispose();
    }
  });

  it("leave the worker's pools closed in an instance that runs no worker", async () => {
    const conveyor = await startTestConveyor();
    try {
      expect([conveyor.database.workerPool.totalCount, conveyor.database.outcomePool.totalCount]).toEqual([0, 0]);
      const { pool } = conveyor.database;
      await eventually(async () => pool.idleCount === pool.totalCount && pool.totalCount >= KEPT_CONNECTIONS.api);
      for (const statements of await preparedOnEach(pool, KEPT_CONNECTIONS.api)) expect(statements).toContain("conveyor-enqueue");
    } finally {
      await conveyor.dispose();
    }
  });

  it("do not hold start-up while another session locks a table the warm-up needs", async () => {
    const conveyor = await startTestConveyor({ start: false, environment: { WORKER_ENABLED: "true" }, handlers: [{ type: "no-op", run: async () => null }] });
    const locker = new pg.Client({ connectionString: conveyor.databaseUrl });
    await locker.connect();
    try {
      await locker.query("BEGIN");
      await locker.query("LOCK TABLE audit_events IN ACCESS EXCLUSIVE MODE");
      // Resolves while the lock is held (the warm-up's lock_timeout ends its wait), or the test times out.
      await conveyor.start();
      await locker.query("COMMIT");
      const { job } = await conveyor.jobs.enqueue({ type: "no-op", owner: "warm", payload: {} }, "warm");
      await eventually(async () => (await conveyor.jobs.find(job.id))?.status === "COMPLETED");
    } finally {
      await locker.end();
      await conveyor.dispose();
    }
  });

  it("are neither opened ahead nor kept with DATABASE_KEEP_CONNECTIONS=false", async () => {
    const conveyor = await startTestConveyor({ environment: { WORKER_ENABLED: "true", WORKER_POLL_INTERVAL_MS: "60000", DATABASE_KEEP_CONNECTIONS: "false" } });
    try {
      const { pool, workerPool, outcomePool } = conveyor.database;
      expect([pool, workerPool, outcomePool].map((each) => (each as unknown as { options: { min: number } }).options.min)).toEqual([0, 0, 0]);
      // Nothing completed yet, and no warm-up: the outcome pool has not connected.
      expect(outcomePool.totalCount).toBe(0);
    } finally {
      await conveyor.dispose();
    }
  });
});
