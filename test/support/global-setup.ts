import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import pg from "pg";
import type { TestProject } from "vitest/node";
import { startEmbeddedPostgres, quoteIdentifier, type EmbeddedDatabase } from "../../src/db/embedded-postgres.js";
import { applyMigrations } from "../../src/db/migrate.js";
import { createLogger } from "../../src/logger.js";

declare module "vitest" {
  export interface ProvidedContext {
    adminUrl: string;
    templateDatabase: string;
    databasePrefix: string;
  }
}

/**
 * One PostgreSQL for the run: the one in DATABASE_URL, or else a throw-away embedded server. A
 * template database is migrated once; every test file clones its own database from it.
 */
export default async function setup(project: TestProject) {
  const logger = createLogger("warn");
  // Each vitest project (vitest.config.ts) runs this setup, possibly in the same millisecond.
  const runId = `${Date.now().toString(36)}${process.pid.toString(36)}${project.name.replace(/\W/g, "")}`;
  const prefix = `conveyor_test_${runId}`;
  let embedded: EmbeddedDatabase | undefined;
  let dataDirectory: string | undefined;
  let adminUrl: string;
  if (process.env.DATABASE_URL) {
    const url = new URL(process.env.DATABASE_URL);
    url.pathname = "/postgres";
    adminUrl = url.toString();
  } else {
    dataDirectory = mkdtempSync(path.join(tmpdir(), "conveyor-test-"));
    // mkdtemp makes the folder private to root; PostgreSQL runs as its own user and must reach it.
    chmodSync(dataDirectory, 0o755);
    const port = await freePort();
    embedded = await startEmbeddedPostgres({ directory: path.join(dataDirectory, "data"), port, database: "postgres", logger });
    adminUrl = embedded.url;
  }

  const template = `${prefix}_template`;
  const admin = new pg.Client({ connectionString: adminUrl });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${quoteIdentifier(template)}`);
  const templateUrl = new URL(adminUrl);
  templateUrl.pathname = `/${template}`;
  const client = new pg.Client({ connectionString: templateUrl.toString() });
  await client.connect();
  await applyMigrations(client, logger);
  await client.end();

  project.provide("adminUrl", adminUrl);
  project.provide("templateDatabase", template);
  project.provide("databasePrefix", prefix);

  return async () => {
    const leftovers = await admin.query<{ datname: string }>(`SELECT datname FROM pg_database WHERE datname LIKE $1`, [`${prefix}%`]);
    for (const { datname } of leftovers.rows) {
      await admin.query(`DROP DATABASE IF EXISTS ${quoteIdentifier(datname)} WITH (FORCE)`).catch(() => undefined);
    }
    await admin.end();
    await embedded?.stop();
    if (dataDirectory) rmSync(dataDirectory, { recursive: true, force: true });
  };
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}
