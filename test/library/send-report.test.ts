// Runs examples/send-report as a user would (a process of its own, through tsx, importing
// "conveyor" by its package name) against this file's database, then checks the database itself.
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestDatabase } from "../support/database.js";

const run = promisify(execFile);
const root = fileURLToPath(new URL("../..", import.meta.url));

describe("examples/send-report", () => {
  let database: Awaited<ReturnType<typeof createTestDatabase>>;
  let client: pg.Client;
  beforeAll(async () => {
    database = await createTestDatabase();
    client = new pg.Client({ connectionString: database.url });
    await client.connect();
  });
  afterAll(async () => {
    await client?.end();
    await database?.drop();
  });

  it("creates the job only with the committed transaction, and sees it complete exactly once", async () => {
    const { stdout } = await run(
      process.execPath,
      ["--conditions=development", "--import", "tsx", "examples/send-report/main.ts"],
      { cwd: root, env: { ...process.env, DATABASE_URL: database.url, LOG_LEVEL: "warn", NODE_ENV: "development" }, timeout: 60_000 },
    );
    const summary = JSON.parse(stdout.trim().split("\n").at(-1)!);

    expect(summary.committed).toMatchObject({ status: "COMPLETED", handlerRuns: 1, result: { deliveredTo: "alice@example.com" } });
    const jobs = await client.query(
      "SELECT id, status, retry_count FROM processing_jobs WHERE type = 'send-report' AND payload->>'reportId' = $1",
      [summary.committed.reportId],
    );
    expect(jobs.rows).toEqual([{ id: summary.committed.jobId, status: "COMPLETED", retry_count: 0 }]);
    const completions = await client.query("SELECT count(*)::int AS n FROM job_events WHERE job_id = $1 AND to_status = 'COMPLETED'", [summary.committed.jobId]);
    expect(completions.rows[0].n).toBe(1);
    const deliveries = await client.query("SELECT count(*)::int AS n FROM example_report_deliveries WHERE report_id = $1", [summary.committed.reportId]);
    expect(deliveries.rows[0].n).toBe(1);

    expect(summary.rolledBack).toMatchObject({ jobExists: false, handlerRuns: 0 });
    const rolledBack = await client.query(
      "SELECT (SELECT count(*)::int FROM processing_jobs WHERE id = $1 OR payload->>'reportId' = $2::text) AS jobs, (SELECT count(*)::int FROM example_reports WHERE id = $2::uuid) AS reports",
      [summary.rolledBack.jobId, summary.rolledBack.reportId],
    );
    expect(rolledBack.rows[0]).toEqual({ jobs: 0, reports: 0 });
  });
});
