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
   * Connections for the transitions a worker makes on the jobs it runs, with
   * synchronous_commit off (unless `durableWorkerCommits`): such a commit returns before its WAL
   * reaches disk, so a PostgreSQL crash can undo the last fraction of a second of claims and
   * completions. That puts those jobs back where a Conveyor crash at the same moment would — the
   * claim returns to the queue, an unrecorded completion is run again by stalled-job recovery —
   * which at-least-once semantics already cover. Enqueues, cancels and retries stay durable.
   */
  workerPool: pg.Pool;
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
}

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
    options: options.durableWorkerCommits ? undefined : "-c synchronous_commit=off",
  });
  workerPool.on("error", (error) => options.logger.warn({ err: error }, "idle database connection failed"));
  const prisma = new PrismaClient({ adapter: new PrismaPg(pool) });
  return {
    url,
    pool,
    workerPool,
    prisma,
    embedded: embedded !== undefined,
    async close() {
      await prisma.$disconnect().catch(() => undefined);
      await pool.end().catch(() => undefined);
      await workerPool.end().catch(() => undefined);
      await embedded?.stop();
    },
  };
}
