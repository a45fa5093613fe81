import { createHash } from "node:crypto";
import { randomBytes } from "node:crypto";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { inject } from "vitest";
import { quoteIdentifier } from "../../src/db/embedded-postgres.js";
import { applyMigrations, MigrationError, pendingMigrations, readMigrations } from "../../src/db/migrate.js";
import { createLogger } from "../../src/logger.js";

const logger = createLogger("silent");

/** An empty database (not cloned from the migrated template). */
async function emptyDatabase() {
  const name = `${inject("databasePrefix")}_empty_${randomBytes(3).toString("hex")}`;
  const admin = new pg.Client({ connectionString: inject("adminUrl") });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${quoteIdentifier(name)}`);
  await admin.end();
  const url = new URL(inject("adminUrl"));
  url.pathname = `/${name}`;
  return url.toString();
}

describe("migrations", () => {
  let url: string;
  const clients: pg.Client[] = [];
  const connect = async () => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    clients.push(client);
    return client;
  };
  beforeAll(async () => {
    url = await emptyDatabase();
  });
  afterAll(async () => {
    await Promise.all(clients.map((client) => client.end()));
  });

  it("applies each migration once when instances start together, recorded as Prisma records them", async () => {
    const [first, second, third] = await Promise.all([connect(), connect(), connect()]);
    const results = await Promise.all([first!, second!, third!].map((client) => applyMigrations(client, logger)));
    const migrations = readMigrations();
    expect(results.flat().sort()).toEqual(migrations.map((migration) => migration.name).sort());

    const { rows } = await first!.query(`SELECT migration_name, checksum, finished_at, applied_steps_count, rolled_back_at FROM "_prisma_migrations" ORDER BY migration_name`);
    expect(rows).toHaveLength(migrations.length);
    for (const [index, migration] of migrations.entries()) {
      expect(rows[index].migration_name).toBe(migration.name);
      expect(rows[index].checksum).toBe(createHash("sha256").update(migration.sql).digest("hex"));
      expect(rows[index].finished_at).toBeInstanceOf(Date);
      expect(rows[index].applied_steps_count).toBe(1);
      expect(rows[index].rolled_back_at).toBeNull();
    }
    expect(await pendingMigrations(first!)).toEqual([]);
    expect(await applyMigrations(first!, logger)).toEqual([]);
  });

  it("stops on a failing migration with its name, rolls it back and records nothing", async () => {
    const client = await connect();
    const broken = [...readMigrations(), { name: "99990101000000_broken", sql: "CREATE TABLE broken_one (id int); SELECT * FROM no_such_table;", checksum: "x".repeat(64) }];
    await expect(applyMigrations(client, logger, broken)).rejects.toThrow(MigrationError);
    await expect(applyMigrations(client, logger, broken)).rejects.toThrow(/99990101000000_broken/);
    const recorded = await client.query(`SELECT 1 FROM "_prisma_migrations" WHERE migration_name = '99990101000000_broken'`);
    expect(recorded.rowCount).toBe(0);
    const table = await client.query(`SELECT to_regclass('broken_one') AS name`);
    expect(table.rows[0].name).toBeNull();
    expect(await pendingMigrations(client, broken)).toEqual(["99990101000000_broken"]);
  });
});
