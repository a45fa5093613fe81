import { randomBytes } from "node:crypto";
import pg from "pg";
import { createDatabaseIfMissing, quoteIdentifier } from "../../src/db/embedded-postgres.js";

/** A fresh database on the benchmark's server (DATABASE_URL, or the local PostgreSQL). */
export async function createBenchDatabase(): Promise<{ url: string; adminUrl: string; drop(): Promise<void> }> {
  const adminUrl = new URL(process.env.DATABASE_URL ?? "postgresql://postgres@127.0.0.1:5432/postgres");
  adminUrl.pathname = "/postgres";
  const name = `conveyor_bench_${randomBytes(4).toString("hex")}`;
  await createDatabaseIfMissing(adminUrl.toString(), name);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    adminUrl: adminUrl.toString(),
    async drop() {
      const admin = new pg.Client({ connectionString: adminUrl.toString() });
      await admin.connect();
      await admin.query(`DROP DATABASE IF EXISTS ${quoteIdentifier(name)} WITH (FORCE)`);
      await admin.end();
    },
  };
}
