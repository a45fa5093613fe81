import type pg from "pg";
import type { Database } from "../db/database.js";
import { inClientTransaction } from "../db/transaction.js";
import type { Logger } from "../logger.js";
import { claimStatement, completeStatement } from "./lifecycle.js";
import { enqueueStatement } from "./queue.js";

/**
 * How long start-up waits for the warm-up. Past it, start-up goes on and the warm-up finishes (or
 * fails) on its own: a connection that is slow to open, or a table another session holds locked,
 * must not keep the instance from serving.
 */
const WARM_UP_WAIT_MS = 2_000;

/**
 * How often the enqueue runs on each API connection. PostgreSQL plans a prepared statement's first
 * five executions for their parameter values (custom plans); the sixth builds a generic plan, and
 * uses it from then on if it costs less than the custom ones did with their planning (the
 * enqueue's does: it reads no table, so statistics do not change that). The enqueue's plan takes
 * about a millisecond, so with one execution here the first four jobs on each connection still
 * paid it (single enqueues 1.73–1.85 ms, then 0.84–1.05; an idle pool's p99 is its third-slowest
 * job of 200). An ANALYZE of its tables later costs each connection one more planning. The
 * worker's connections plan generically from the first execution (plan_cache_mode in
 * WORKER_PLANNER_SETTINGS): once is enough there.
 */
const API_PLAN_EXECUTIONS = 6;

/** The warm-up's time on a connection, and each statement's (statement_timeout), at most. */
const WARM_UP_STATEMENTS_MS = 5_000;

/**
 * Opens the connections each pool keeps (its min: KEPT_CONNECTIONS) and runs on each, with nothing
 * to do, the statement its first job will run: the enqueue (which also hands a job to an idle pool
 * here), and for a worker the claim and the completion. The first job then finds them open, their
 * statements parsed and the tables' catalog entries read: in an idle pool of a started instance,
 * the first enqueued job started 37–45 ms after its enqueue and the second 14–16; now 18–25 and
 * 7–12 (the rest is code run for the first time and the tables' first rows), 2–3 once warm. None
 * of these writes anything: an empty document, a claim of 0 jobs, a completion of none.
 */
export async function warmConnections(database: Database, options: { worker: boolean; logger: Logger }): Promise<void> {
  const warmUps = [warm(database.pool, enqueueStatement(null, "[]", "conveyor:warm-up", null), API_PLAN_EXECUTIONS)];
  if (options.worker) {
    warmUps.push(
      warm(database.workerPool, claimStatement(null, "conveyor:warm-up", [], 0, [])),
      warm(database.outcomePool, completeStatement(null, "{}", "{}", [])),
    );
  }
  // Only a head start: the first jobs open what is missing, as they would without it.
  const done = Promise.allSettled(warmUps).then((outcomes) => {
    const failures = outcomes.flatMap((outcome) => (outcome.status === "rejected" ? [outcome.reason] : []));
    if (failures.length > 0) options.logger.warn({ err: failures[0], failures: failures.length }, "could not open the database connections ahead of the first jobs");
  });
  let timer: NodeJS.Timeout | undefined;
  const waited = new Promise<"waited">((resolve) => (timer = setTimeout(resolve, WARM_UP_WAIT_MS, "waited")));
  try {
    if ((await Promise.race([done, waited])) === "waited") options.logger.warn({ waitMs: WARM_UP_WAIT_MS }, "started before the database connections were ready for the first jobs");
  } finally {
    clearTimeout(timer);
  }
}

/** Warms the connections `pool` keeps (its `min`: none with DATABASE_KEEP_CONNECTIONS=false). */
async function warm(pool: pg.Pool, statement: pg.QueryConfig, executions = 1): Promise<void> {
  // All checked out at once, so that each is a connection of its own (the pool's min is at most
  // its max: more would have the last wait for one of the others forever).
  const connections = await Promise.allSettled(Array.from({ length: pool.options.min ?? 0 }, () => pool.connect()));
  const opened = connections.flatMap((connection) => (connection.status === "fulfilled" ? [connection.value] : []));
  const statements = await Promise.allSettled(opened.map((connection) => prepare(connection, statement, executions)));
  for (const connection of opened) connection.release();
  const failed = [...connections, ...statements].find((outcome) => outcome.status === "rejected");
  if (failed) throw failed.reason;
}

/**
 * Runs `statement` (named: it stays prepared on the connection) up to `executions` times in a
 * transaction of its own whose lock and statement limits end with it, so that a table locked by
 * another session fails the warm-up rather than holding it, and a slow server ends it after
 * WARM_UP_STATEMENTS_MS rather than after that many times each execution.
 */
async function prepare(connection: pg.PoolClient, statement: pg.QueryConfig, executions: number): Promise<void> {
  const deadline = performance.now() + WARM_UP_STATEMENTS_MS;
  await inClientTransaction(connection, async () => {
    await connection.query(`SET LOCAL lock_timeout = 1000; SET LOCAL statement_timeout = ${WARM_UP_STATEMENTS_MS}`);
    for (let execution = 0; execution < executions && performance.now() < deadline; execution++) await connection.query(statement);
  });
}
