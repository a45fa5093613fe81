import pg from "pg";
import { PrismaPg } from "@prisma/adapter-pg";
import { PrismaClient } from "../generated/prisma/client.js";
import type { Logger } from "../logger.js";
import { startEmbeddedPostgres, type EmbeddedDatabase } from "./embedded-postgres.js";
import { applyMigrations } from "./migrate.js";
import { parseTimestamp } from "./timestamps.js";

export type { PrismaClient };

export interface Database {
  url: string;
  /**
   * Raw pool for the job engine's SQL (src/jobs/sql.ts); Prisma shares it. The engine's statements
   * go through pg rather than Prisma's $queryRaw: pg prepares each once per connection (named
   * statements), while Prisma's raw queries over @prisma/adapter-pg are parsed and planned on every
   * call, which bench/prisma-path.ts measures at far more than 5 % of the engine's throughput.
   */
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
  /** KEPT_CONNECTIONS held open while idle (default); false lets pg close every idle one after 10 s. */
  keepConnections?: boolean;
  embeddedDirectory: string;
  embeddedPort: number;
  logger: Logger;
  migrate?: boolean;
  /** Connections of the worker pool; ignored for the API. */
  workerConnections?: number;
  durableWorkerCommits?: boolean;
  asyncOutcomeCommits?: boolean;
  /** Ends the wait for an unreachable database (a shutdown signal during start-up). */
  signal?: AbortSignal;
  /**
   * This instance's id, as `conveyor.instance` on every connection: the engine's statements leave
   * this instance's own listeners out of what they announce, and sign what they do announce with
   * it (src/jobs/sql.ts, announceChanges).
   */
  instanceId?: string;
}

/**
 * Every connection's session runs in UTC, whatever the server's or the database's default zone (an
 * embedded PostgreSQL takes the laptop's): @prisma/adapter-pg reads a timestamptz as printed in the
 * session's zone but takes it for UTC, so elsewhere its times came back off by the zone's offset;
 * and the outcome counters' minutes and hours (date_trunc) are cut the same way by every session.
 */
export const SESSION_SETTINGS = "-c TimeZone=UTC";

/**
 * Each pool states how it commits rather than taking the server's default: a database or role set to
 * `synchronous_commit = off` (to speed up some other application) would otherwise make completions
 * and failures, and the events published after them, undoable by a crash without anyone knowing.
 * `on` waits for the local flush, and for synchronous standbys' where there are some.
 */
const DURABLE_COMMITS = "-c synchronous_commit=on";
const ASYNCHRONOUS_COMMITS = "-c synchronous_commit=off";

/**
 * The worker's statements (claim, progress, heartbeat, completions and failures) are index lookups
 * by design; these settings keep the planner from choosing otherwise when the jobs table's
 * statistics are missing or stale, as they are after a burst lands on a table autovacuum has not
 * analyzed yet. See sql.CLAIM and sql.COMPLETE_MANY. A
 * disabled node that a plan still needs (a sort of a handful of rows) is costed at 10^10, past
 * jit_above_cost, and PostgreSQL then JIT-compiles the statement on every execution: over a
 * second on this machine for a one-row statement. JIT is off on these connections.
 * Each prepared statement keeps one generic plan (plan_cache_mode): once the jobs table had
 * statistics, PostgreSQL priced CLAIM's generic plan above its custom ones and planned it afresh on
 * every execution (0.4 ms each, the same plan every time): claims took 1.14 ms at the median
 * instead of 0.71 with 10,000 jobs waiting, and concurrency 1 ran 10–25 % slower analyzed than
 * never analyzed (bench/throughput.ts with BACKLOG_ANALYZE=1). Kept, that generic plan took its
 * LIMIT for a tenth of the waiting jobs and hashed every job to find the ten it locked: no hash or
 * merge joins here, only the key lookups these statements are (test/jobs/claim-plan.test.ts).
 */
export const WORKER_PLANNER_SETTINGS = "-c enable_seqscan=off -c enable_bitmapscan=off -c enable_sort=off -c enable_hashjoin=off -c enable_mergejoin=off -c jit=off -c plan_cache_mode=force_generic_plan";

/**
 * Connections each pool keeps open while it idles (pg closes an idle one after 10 s), until the
 * server or the network closes them: a job enqueued after a quiet spell otherwise waited for a new
 * connection, its first catalog reads and the parsing of its statements. Enqueue to handler start
 * after 12 s of quiet, one instance (bench/after-quiet.ts): 44 ms before, 7–9 with the connections
 * kept. src/jobs/warm-connections.ts opens them at start-up and prepares those statements. A
 * connection the server ends (idle_session_timeout, a restart) is not replaced until a job needs
 * one. TCP keepalives keep them known to NATs and load balancers that drop silent connections.
 * DATABASE_KEEP_CONNECTIONS=false keeps none, and so warms none.
 */
export const KEPT_CONNECTIONS = { api: 2, worker: 2, outcome: 1 } as const;

/** What every pool's connections share: kept alive, and a server's ending of an idle one logged quietly. */
function keptPool(logger: Logger, options: pg.PoolConfig & { max: number; min: number }): pg.Pool {
  const pool = new pg.Pool({ ...options, min: Math.min(options.min, options.max), keepAlive: true, keepAliveInitialDelayMillis: 30_000 });
  pool.on("error", (error) => {
    // 57P05 idle_session_timeout, 57P01 admin shutdown: the server ended an idle connection, which
    // the next query replaces.
    const code = (error as { code?: unknown }).code;
    if (code === "57P05" || code === "57P01") logger.debug({ err: error }, "the server closed an idle database connection");
    else logger.warn({ err: error }, "idle database connection failed");
  });
  return pool;
}

// BIGINT columns (bytes done/total, event ids) come back as strings from pg; values stay well
// inside 2^53, so numbers are what callers expect.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));
pg.types.setTypeParser(pg.types.builtins.TIMESTAMPTZ, parseTimestamp);

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
  } else {
    await waitForDatabase(url, options.logger, options.signal);
  }
  const instance = options.instanceId ? `-c conveyor.instance=${options.instanceId}` : "";
  const kept = options.keepConnections === false ? { api: 0, worker: 0, outcome: 0 } : KEPT_CONNECTIONS;
  const pool = keptPool(options.logger, { connectionString: url, max: options.poolSize, min: kept.api, application_name: "conveyor", options: [SESSION_SETTINGS, DURABLE_COMMITS, instance].join(" ").trim() });
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
  const workerPool = keptPool(options.logger, {
    connectionString: url,
    max: options.workerConnections ?? 4,
    min: kept.worker,
    application_name: "conveyor-worker",
    options: [SESSION_SETTINGS, WORKER_PLANNER_SETTINGS, options.durableWorkerCommits ? DURABLE_COMMITS : ASYNCHRONOUS_COMMITS, instance].join(" ").trim(),
  });
  // Completions arrive in batches (one statement, one commit for many), so a few connections do.
  const outcomePool = keptPool(options.logger, {
    connectionString: url,
    max: 4,
    min: kept.outcome,
    application_name: "conveyor-outcomes",
    options: [SESSION_SETTINGS, WORKER_PLANNER_SETTINGS, options.asyncOutcomeCommits ? ASYNCHRONOUS_COMMITS : DURABLE_COMMITS, instance].join(" ").trim(),
  });
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

/**
 * Errors that mean "not reachable yet" (down, starting, restarting, out of connections): worth
 * waiting for. Anything else (bad password, no such database) will not heal by itself.
 */
const TRANSIENT_CONNECT_ERRORS = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "EAI_AGAIN", "ENOTFOUND", "EPIPE", "57P03", "53300", "57P01", "08006", "08001"]);

export function isTransientConnectError(error: unknown): boolean {
  const code = (error as { code?: string } | null)?.code;
  if (code && TRANSIENT_CONNECT_ERRORS.has(code)) return true;
  return /Connection terminated|timeout expired/i.test(String((error as Error | null)?.message ?? ""));
}

/**
 * Waits until PostgreSQL accepts a connection, retrying with backoff (0.5 s doubling to 10 s) and
 * one log line per attempt, so a service started before its database comes up when it does;
 * the HTTP server only listens afterwards, so nobody sees it ready before.
 */
export async function waitForDatabase(url: string, logger: Logger, signal?: AbortSignal): Promise<void> {
  let delayMs = 500;
  const target = describeTarget(url);
  for (let attempt = 1; ; attempt++) {
    signal?.throwIfAborted();
    const client = new pg.Client({ connectionString: url, application_name: "conveyor", connectionTimeoutMillis: 10_000 });
    client.on("error", () => {});
    try {
      await client.connect();
      await client.query("SELECT 1");
      await client.end().catch(() => undefined);
      if (attempt > 1) logger.info({ database: target, attempts: attempt }, "PostgreSQL is reachable");
      return;
    } catch (error) {
      await client.end().catch(() => undefined);
      if (!isTransientConnectError(error)) throw error;
      logger.warn(
        { database: target, code: (error as { code?: string }).code, attempt, retryInMs: delayMs },
        `PostgreSQL at ${target} is not reachable (${(error as Error).message}); retrying in ${Math.round(delayMs / 100) / 10} s`,
      );
      await new Promise<void>((resolve, reject) => {
        const onAbort = () => (clearTimeout(timer), reject(signal!.reason));
        const timer = setTimeout(() => (signal?.removeEventListener("abort", onAbort), resolve()), delayMs);
        signal?.addEventListener("abort", onAbort, { once: true });
      });
      delayMs = Math.min(delayMs * 2, 10_000);
    }
  }
}

/** host:port/database, without credentials, for log lines. */
function describeTarget(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.hostname}:${parsed.port || 5432}${parsed.pathname}`;
  } catch {
    return "the configured database";
  }
}
