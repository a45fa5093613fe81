import pg from "pg";
import { PrismaPg } from "@prisma/adapter-pg";
import { PrismaClient } from "../generated/prisma/client.js";
import type { Logger } from "../logger.js";
import { startEmbeddedPostgres, type EmbeddedDatabase } from "./embedded-postgres.js";
import { applyMigrations } from "./migrate.js";

export type { PrismaClient };

export interface Database {
  url: string;
  /** Raw pool for the job engine's hot-path SQL (src/jobs/sql.ts); Prisma shares it. */
  pool: pg.Pool;
  /**
   * Connections for a worker's claims, progress reports and heartbeats, with synchronous_commit
   * off (unless `durableWorkerCommits`): such a commit returns before its WAL reaches disk, so a
   * PostgreSQL crash can undo the last fraction of a second of them. None of them is an outcome: a
   * lost claim returns the job to the queue, lost progress is reported again. Nothing published
   * from them says a job is done.
   */
  workerPool: pg.Pool;
  /**
   * Connections for completions and failures. Durable by default, because their change is
   * published once the commit returns and nobody may see COMPLETED that a PostgreSQL crash could
   * undo; `asyncOutcomeCommits` trades that for speed.
   */
  outcomePool: pg.Pool;
  prisma: PrismaClient;
  embedded: boolean;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  url?: string;
  poolSize: number;
  embeddedDirectory: string;
  embeddedPort: number;
  logger: Logger;
  migrate?: boolean;
  /** Connections of the worker pool; ignored for the API. */
  workerConnections?: number;
  durableWorkerCommits?: boolean;
  asyncOutcomeCommits?: boolean;
}

/**
 * The worker's statements (claim, progress, heartbeat) are index lookups by design; these settings
 * keep the planner from choosing otherwise when the jobs table's statistics are missing or stale,
 * as they are after a burst lands on a table autovacuum has not analyzed yet. See sql.CLAIM.
 */
export const WORKER_PLANNER_SETTINGS = "-c enable_seqscan=off -c enable_bitmapscan=off -c enable_sort=off";

// BIGINT columns (bytes done/total, event ids) come back as strings from pg; values stay well
// inside 2^53, so numbers are what callers expect.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));

/** Opens the configured PostgreSQL (or starts the embedded one), applies migrations, builds Prisma. */
export async function openDatabase(options: DatabaseOptions): Promise<Database> {
  let embedded: EmbeddedDatabase | undefined;
  let url = options.url;
  if (!url) {
    embedded = await startEmbeddedPostgres({
      directory: options.embeddedDirectory,
      port: options.embeddedPort,
      database: "conveyor",
      logger: options.logger,
    });
    url = embedded.url;
    options.logger.info({ directory: options.embeddedDirectory, port: options.embeddedPort }, "embedded PostgreSQL started");
  }
  const pool = new pg.Pool({ connectionString: url, max: options.poolSize, application_name: "conveyor" });
  pool.on("error", (error) => options.logger.warn({ err: error }, "idle database connection failed"));
  try {
    if (options.migrate !== false) {
      const client = await pool.connect();
      try {
        await applyMigrations(client, options.logger);
      } finally {
        client.release();
      }
    }
  } catch (error) {
    await pool.end();
    await embedded?.stop();
    throw error;
  }
  const workerPool = new pg.Pool({
    connectionString: url,
    max: options.workerConnections ?? 4,
    application_name: "conveyor-worker",
    options: [WORKER_PLANNER_SETTINGS, options.durableWorkerCommits ? "" : "-c synchronous_commit=off"].join(" ").trim(),
  });
  workerPool.on("error", (error) => options.logger.warn({ err: error }, "idle database connection failed"));
  // Completions arrive in batches (one statement, one commit for many), so a few connections do.
  const outcomePool = new pg.Pool({
    connectionString: url,
    max: 4,
    application_name: "conveyor-outcomes",
    options: options.asyncOutcomeCommits ? "-c synchronous_commit=off" : undefined,
  });
  outcomePool.on("error", (error) => options.logger.warn({ err: error }, "idle database connection failed"));
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });
  return {
    url,
    pool,
    workerPool,
    outcomePool,
    prisma,
    embedded: embedded !== undefined,
    async close() {
      await prisma.$disconnect().catch(() => undefined);
      await pool.end().catch(() => undefined);
      await workerPool.end().catch(() => undefined);
      await outcomePool.end().catch(() => undefined);
      await embedded?.stop();
    },
  };
}
