import { createHash, randomUUID } from "node:crypto";
import { readdirSync, readFileSync, existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type pg from "pg";
import type { Logger } from "../logger.js";

export const MIGRATIONS_DIRECTORY = fileURLToPath(new URL("../../prisma/migrations", import.meta.url));

// Any fixed 64-bit number; every Conveyor instance takes the same lock before migrating.
const MIGRATION_LOCK_KEY = 7_231_000_001n;

// The table exactly as Prisma Migrate creates it, so `prisma migrate deploy` reads our records.
const CREATE_MIGRATIONS_TABLE = `
CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                    VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"              VARCHAR(64) NOT NULL,
    "finished_at"           TIMESTAMPTZ,
    "migration_name"        VARCHAR(255) NOT NULL,
    "logs"                  TEXT,
    "rolled_back_at"        TIMESTAMPTZ,
    "started_at"            TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count"   INTEGER NOT NULL DEFAULT 0
)`;

export interface Migration {
  name: string;
  sql: string;
  checksum: string;
}

export class MigrationError extends Error {
  override name = "MigrationError";
}

export function readMigrations(directory = MIGRATIONS_DIRECTORY): Migration[] {
  return readdirSync(directory, { withFileTypes: true })
    .filter((entry) => entry.isDirectory() && existsSync(path.join(directory, entry.name, "migration.sql")))
    .map((entry) => entry.name)
    .sort()
    .map((name) => {
      const sql = readFileSync(path.join(directory, name, "migration.sql"), "utf8");
      // Prisma's checksum: SHA-256 of the migration file, hex.
      return { name, sql, checksum: createHash("sha256").update(sql).digest("hex") };
    });
}

/**
 * Applies every migration not yet recorded, each once and in its own transaction, under an advisory
 * lock so that instances starting together never apply one twice. Returns the names applied.
 */
export async function applyMigrations(
  client: pg.ClientBase,
  logger: Logger,
  migrations: Migration[] = readMigrations(),
): Promise<string[]> {
  await client.query("SELECT pg_advisory_lock($1)", [MIGRATION_LOCK_KEY]);
  try {
    await client.query(CREATE_MIGRATIONS_TABLE);
    const recorded = await client.query<{ migration_name: string; checksum: string; finished_at: Date | null }>(
      `SELECT migration_name, checksum, finished_at FROM "_prisma_migrations" WHERE rolled_back_at IS NULL`,
    );
    const byName = new Map(recorded.rows.map((row) => [row.migration_name, row]));
    const applied: string[] = [];
    for (const migration of migrations) {
      const record = byName.get(migration.name);
      if (record?.finished_at === null) {
        throw new MigrationError(
          `Migration ${migration.name} is recorded as started but never finished. Fix the database by hand, then mark it rolled back (prisma migrate resolve --rolled-back ${migration.name}).`,
        );
      }
      if (record) {
        if (record.checksum !== migration.checksum) {
          logger.warn({ migration: migration.name }, "migration file changed after it was applied");
        }
        continue;
      }
      await applyOne(client, migration);
      applied.push(migration.name);
      logger.info({ migration: migration.name }, "migration applied");
    }
    return applied;
  } finally {
    await client.query("SELECT pg_advisory_unlock($1)", [MIGRATION_LOCK_KEY]);
  }
}

async function applyOne(client: pg.ClientBase, migration: Migration): Promise<void> {
  await client.query("BEGIN");
  try {
    const id = randomUUID();
    await client.query(
      `INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at) VALUES ($1, $2, $3, now())`,
      [id, migration.checksum, migration.name],
    );
    await client.query(migration.sql);
    await client.query(
      `UPDATE "_prisma_migrations" SET finished_at = now(), applied_steps_count = 1 WHERE id = $1`,
      [id],
    );
    await client.query("COMMIT");
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    const reason = error instanceof Error ? error.message : String(error);
    throw new MigrationError(`Migration ${migration.name} failed and was rolled back: ${reason}`);
  }
}

/** Names of migrations on disk that the database has not finished applying; empty means ready. */
export async function pendingMigrations(client: pg.ClientBase | pg.Pool, migrations: Migration[] = readMigrations()) {
  const table = await client.query(`SELECT to_regclass('"_prisma_migrations"') AS name`);
  if (!table.rows[0]?.name) return migrations.map((migration) => migration.name);
  const done = await client.query<{ migration_name: string }>(
    `SELECT migration_name FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL`,
  );
  const finished = new Set(done.rows.map((row) => row.migration_name));
  return migrations.filter((migration) => !finished.has(migration.name)).map((migration) => migration.name);
}
