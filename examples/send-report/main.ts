// An application that embeds Conveyor: it registers its own `send-report` job type, creates a
// report and its job in ONE transaction of its own, and follows the job to completion. A second
// report is rolled back, and with it its job.
//
//   npm run example:send-report                                   # embedded PostgreSQL
//   DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres npm run example:send-report
//
// It prints one JSON summary line on stdout; test/library/send-report.test.ts checks it.
import { randomUUID } from "node:crypto";
import { pathToFileURL } from "node:url";
import pg from "pg";
import { z } from "zod";
import { createConveyor, defineHandler, loadConfig, PermanentJobError, TERMINAL_STATUSES, type Conveyor, type JobChange } from "conveyor";

/** The job type: its payload is checked at enqueue (bad input is refused) and arrives typed. */
export function sendReportHandler(db: pg.Pool, runs: Map<string, number>) {
  return defineHandler({
    type: "send-report",
    payload: z.object({ reportId: z.uuid(), recipient: z.email() }),
    maxAttempts: 5,
    timeoutMs: 30_000,
    async run({ reportId, recipient }, ctx) {
      runs.set(reportId, (runs.get(reportId) ?? 0) + 1);
      await ctx.progress("rendering", 30);
      const { rows } = await db.query<{ title: string }>("SELECT title FROM example_reports WHERE id = $1", [reportId]);
      // Cannot happen for a job enqueued in the report's own transaction; retrying would not help.
      if (!rows[0]) throw new PermanentJobError("Report not found");
      await ctx.progress("sending", 70);
      // Jobs run at least once: recording the delivery under the report's key makes a second run harmless.
      await db.query(
        "INSERT INTO example_report_deliveries (report_id, recipient) VALUES ($1, $2) ON CONFLICT (report_id) DO NOTHING",
        [reportId, recipient],
      );
      return { deliveredTo: recipient, title: rows[0].title };
    },
  });
}

/** Resolves with the job's final change. Subscribe before the commit, so no change can slip by. */
function finalChange(conveyor: Conveyor, jobId: string, timeoutMs = 30_000): Promise<JobChange> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      unsubscribe();
      reject(new Error(`job ${jobId} did not finish within ${timeoutMs} ms`));
    }, timeoutMs);
    const unsubscribe = conveyor.subscribe(jobId, (change) => {
      if (!TERMINAL_STATUSES.includes(change.status)) return;
      clearTimeout(timer);
      unsubscribe();
      resolve(change);
    });
  });
}

/** Creates a report and its delivery job atomically; `rollback` abandons both. */
async function createReport(
  conveyor: Conveyor,
  db: pg.Pool,
  sendReport: ReturnType<typeof sendReportHandler>,
  options: { title: string; recipient: string; rollback: boolean },
) {
  const reportId = randomUUID();
  const client = await db.connect();
  try {
    await client.query("BEGIN");
    await client.query("INSERT INTO example_reports (id, title) VALUES ($1, $2)", [reportId, options.title]);
    // Same client, same transaction: the job exists if and only if the report does.
    const { job } = await conveyor.enqueue(sendReport.job({ reportId, recipient: options.recipient }, { owner: "alice" }), { client });
    if (options.rollback) {
      await client.query("ROLLBACK");
      return { reportId, jobId: job.id, finished: null };
    }
    const finished = finalChange(conveyor, job.id);
    await client.query("COMMIT");
    // Workers were woken by the commit; this tells subscribers the job exists.
    conveyor.announce(job);
    return { reportId, jobId: job.id, finished: await finished };
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

export async function main(environment: NodeJS.ProcessEnv = process.env) {
  const runs = new Map<string, number>();
  // Conveyor's settings come from the same variables as the server's (DATABASE_URL, WORKER_*…).
  const config = loadConfig({ LOG_LEVEL: "warn", ...environment });
  // Opens the database (the embedded one when DATABASE_URL is unset) and applies Conveyor's migrations.
  const conveyor = await createConveyor({ config });
  // The app's own pool on the same database: its transactions can create jobs.
  const db = new pg.Pool({ connectionString: conveyor.database.url, max: 4 });
  const sendReport = sendReportHandler(db, runs);
  // Handlers can also be passed to createConveyor ({ handlers: [...] }); either way before start().
  conveyor.registry.register(sendReport);
  try {
    // The engine alone: this app serves no GraphQL API of Conveyor's, so no port is taken.
    await conveyor.start({ http: false });
    await db.query(`
      CREATE TABLE IF NOT EXISTS example_reports (id uuid PRIMARY KEY, title text NOT NULL, created_at timestamptz NOT NULL DEFAULT now());
      CREATE TABLE IF NOT EXISTS example_report_deliveries (report_id uuid PRIMARY KEY REFERENCES example_reports (id), recipient text NOT NULL, sent_at timestamptz NOT NULL DEFAULT now());
    `);

    const committed = await createReport(conveyor, db, sendReport, { title: "Q3 numbers", recipient: "alice@example.com", rollback: false });
    const rolledBack = await createReport(conveyor, db, sendReport, { title: "Draft", recipient: "alice@example.com", rollback: true });
    const committedJob = await conveyor.jobs.find(committed.jobId);
    return {
      committed: {
        reportId: committed.reportId,
        jobId: committed.jobId,
        status: committed.finished?.status,
        result: committedJob?.result ?? null,
        handlerRuns: runs.get(committed.reportId) ?? 0,
      },
      rolledBack: {
        reportId: rolledBack.reportId,
        jobId: rolledBack.jobId,
        jobExists: (await conveyor.jobs.find(rolledBack.jobId)) !== null,
        handlerRuns: runs.get(rolledBack.reportId) ?? 0,
      },
    };
  } finally {
    await conveyor.stop();
    await db.end();
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? "").href) {
  main().then(
    (summary) => console.log(JSON.stringify(summary)),
    (error: unknown) => {
      console.error(error);
      process.exitCode = 1;
    },
  );
}
