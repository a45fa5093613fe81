import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WorkerPool } from "../../src/jobs/worker-pool.js";
import { createLogger } from "../../src/logger.js";
import { BILLING_HEADER, billingCsv, billingLines, billingRow, expectedFindings, PERSONAL_MARKER } from "../support/billing-lines-csv.js";
import { eventually, startTestConveyor, type TestConveyor } from "../support/conveyor.js";
import { collect, tokenFor, wsClient } from "../support/graphql-client.js";
import { uploadValidationFile } from "../support/uploads.js";
import { expectNoInternals, gql, ok, startWorkerPool } from "./helpers.js";

const PROGRESS = `subscription($id: ID!) { jobProgress(jobId: $id) { status stage progress bytesDone bytesTotal error { category message } } }`;
const RUN = `query($id: ID!, $rule: String, $first: Int) { validationRun(id: $id) {
  id ruleSet fileBytes
  job { id status retryCount error { category message(locale: FR) details } }
  report { rows rowsWithFindings findingsTotal encoding delimiter findingsPerRule byRule { rule column severity count } bySeverity { severity count } }
  findings(rule: $rule, first: $first) { edges { node { rule column row severity } } pageInfo { hasNextPage } }
} }`;
const TERMINAL = ["COMPLETED", "FAILED", "VALIDATION_FAILED", "CANCELLED"];

/** Windows-1252 bytes of `text` (every character must exist in it). */
const windows1252 = (text: string) =>
  Buffer.from([...text].map((char) => ({ "é": 0xe9, "è": 0xe8, "ü": 0xfc, "€": 0x80, "œ": 0x9c, "ç": 0xe7 })[char] ?? char.charCodeAt(0)));

describe("validation runs over real HTTP multipart uploads", () => {
  let conveyor: TestConveyor;
  let db: pg.Client;
  let alice: string;
  let bob: string;
  let olga: string;
  let pool: WorkerPool | null = null;
  const logLines: string[] = [];

  const upload = async (file: Buffer | string, variables: { ruleSet?: string; correlationId?: string } = {}, token = alice) => {
    const response = await uploadValidationFile(conveyor, token, file, variables);
    expectNoInternals(response.text);
    expect(response.body.errors, response.text).toBeUndefined();
    return response.body.data.createValidationRun as { created: boolean; run: { id: string; fileBytes: number }; job: { id: string } };
  };
  const finished = (jobId: string) => eventually(async () => TERMINAL.includes((await conveyor.jobs.find(jobId))?.status ?? "") && (await conveyor.jobs.find(jobId))!, 60_000);
  const runOf = async (id: string, variables: Record<string, unknown> = {}, token = alice) => ok(await gql(conveyor, RUN, { id, ...variables }, { token })).validationRun;

  beforeAll(async () => {
    // Every log line, at debug: none may quote a cell.
    const logger = createLogger("debug", {}, { write: (line: string) => void logLines.push(line) });
    conveyor = await startTestConveyor({ logger });
    db = new pg.Client({ connectionString: conveyor.databaseUrl });
    await db.connect();
    [alice, bob, olga] = await Promise.all([tokenFor(conveyor, "alice"), tokenFor(conveyor, "bob"), tokenFor(conveyor, "olga", "operator")]);
  });
  afterAll(async () => {
    await pool?.stop();
    await db?.end();
    await conveyor?.dispose();
  });

  it("validates a 50,000-row file, counting every finding exactly, with byte progress in order up to bytesTotal", async () => {
    const file = Buffer.from(billingCsv({ rows: 50_000 }));
    const { run, job, created } = await upload(file, { correlationId: "big-file" });
    expect(created).toBe(true);
    expect(run.fileBytes).toBe(file.length);
    // Subscribed before any worker runs: every progress report of the run reaches this subscriber.
    const client = wsClient(conveyor, alice);
    const stream = collect(client, PROGRESS, { id: job.id });
    await eventually(() => stream.events.length > 0);
    pool = await startWorkerPool(conveyor);
    const { events } = await stream.done;
    await client.dispose();

    const progress = events.map((event) => event.data!.jobProgress);
    expect(progress.at(-1)).toMatchObject({ status: "COMPLETED", bytesDone: file.length, bytesTotal: file.length });
    const reports = progress.filter((event) => event.status === "PROCESSING" && event.bytesTotal !== null);
    expect(reports.every((event) => event.bytesTotal === file.length)).toBe(true);
    const bytes = reports.map((event) => event.bytesDone);
    expect(bytes).toEqual([...bytes].sort((a, b) => a - b));
    expect(new Set(bytes).size).toBeGreaterThan(3);
    expect(bytes.at(-1)).toBe(file.length);
    const stages = [...new Set(reports.map((event) => event.stage))];
    expect(stages).toEqual(["reading", "validating", "summarizing"]);

    const expected = expectedFindings(50_000);
    const result = await runOf(run.id);
    expect(result.job.status).toBe("COMPLETED");
    expect(result.report).toMatchObject({ rows: 50_000, rowsWithFindings: expected.rowsWithFindings, findingsTotal: expected.findingsTotal, encoding: "utf-8", delimiter: "," });
    const broken = Object.fromEntries(result.report.byRule.filter((rule: any) => rule.count > 0).map((rule: any) => [rule.rule, rule.count]));
    expect(broken).toEqual(expected.byRule);
    expect(result.report.bySeverity).toEqual([{ severity: "ERROR", count: expected.findingsTotal }, { severity: "WARNING", count: 0 }]);

    // Findings: a Relay connection, filterable by rule, first N per rule with their rows.
    const currency = await runOf(run.id, { rule: "currency.allowed", first: 3 });
    expect(currency.findings.edges.map((edge: any) => edge.node)).toEqual([250, 500, 750].map((i) => ({ rule: "currency.allowed", column: "currency", row: i + 1, severity: "ERROR" })));
    expect(currency.findings.pageInfo.hasNextPage).toBe(true);
    const all = await runOf(run.id, { rule: "unit_price.format", first: 100 });
    expect(all.findings.edges).toHaveLength(Math.min(100, expected.byRule["unit_price.format"]!));
  });

  it("reads a Windows-1252 file without a BOM (semicolons, accented header and cells) as the text it is", async () => {
    const header = [...BILLING_HEADER, "Libellé client"].join(";");
    const rows = [1, 2, 3].map((i) => {
      const cells = billingRow(i, false).cells.map((cell) => (cell.startsWith("Consulting") ? `Conseil stratégique œuvre ${i} € ü` : cell));
      return [...cells, "Société Générale"].join(";");
    });
    // Descriptions are limited to 200 characters: counted as characters, one per Windows-1252 byte.
    const lengths = [200, 201].map((length, index) => [...billingRow(10 + index, false).cells.map((cell) => (cell.startsWith("Consulting") ? "€".repeat(length) : cell)), "x"].join(";"));
    const { run, job } = await upload(windows1252(`${header}\r\n${[...rows, ...lengths].join("\r\n")}\r\n`));
    expect((await finished(job.id)).status).toBe("COMPLETED");
    const result = await runOf(run.id);
    expect(result.report).toMatchObject({ rows: 5, findingsTotal: 1, encoding: "windows-1252", delimiter: ";" });
    expect(result.findings.edges.map((edge: any) => edge.node)).toEqual([{ rule: "description.length", column: "description", row: 6, severity: "WARNING" }]);
  });

  it("fails a malformed file at once with FILE_ERROR naming the line, in the caller's language, never retried", async () => {
    const lines = [...billingLines({ rows: 5, violations: false })];
    // Line 4 (the header is line 1) opens a quote that never closes.
    lines[3] = lines[3]!.replace(`Consulting for ${PERSONAL_MARKER}`, `"Consulting for ${PERSONAL_MARKER}`);
    const { run, job } = await upload(lines.join(""));
    const failed = await finished(job.id);
    expect(failed).toMatchObject({ status: "FAILED", errorCode: "FILE_ERROR", retryCount: 0 });
    const result = await runOf(run.id, {}, olga);
    expect(result.job.error.category).toBe("FILE_ERROR");
    expect(result.job.error.message).toContain("ligne 4");
    expect(result.job.error.details).toMatchObject({ reason: "malformed_csv", line: 4 });
    expect(result.report).toBeNull();
    const english = ok(await gql(conveyor, `query($id: ID!) { job(id: $id) { error { message(locale: EN) } } }`, { id: job.id }, { token: alice }));
    expect(english.job.error.message).toBe("The file is not valid CSV at line 4 (an unclosed quote or a wrong number of columns).");
  });

  it("fails a file whose header lacks columns with FILE_ERROR naming them, in German too", async () => {
    const text = billingCsv({ rows: 3 }).replace("currency,", "waehrung,");
    const { job } = await upload(text);
    expect(await finished(job.id)).toMatchObject({ status: "FAILED", errorCode: "FILE_ERROR" });
    const german = ok(await gql(conveyor, `query($id: ID!) { job(id: $id) { error { message(locale: DE) } } }`, { id: job.id }, { token: alice }));
    expect(german.job.error.message).toBe("In der Kopfzeile der Datei fehlen diese Spalten: currency.");
  });

  it("fails a file that is not text with FILE_ERROR naming the line and byte", async () => {
    const lines = [...billingLines({ rows: 3, violations: false })];
    const offset = Buffer.byteLength(lines.slice(0, 2).join("")) + 4;
    const file = Buffer.from(lines.join(""));
    file[offset] = 0;
    const { job } = await upload(file);
    expect(await finished(job.id)).toMatchObject({ status: "FAILED", errorCode: "FILE_ERROR", retryCount: 0 });
    const error = ok(await gql(conveyor, `query($id: ID!) { job(id: $id) { error { message(locale: EN) } } }`, { id: job.id }, { token: alice })).job.error;
    expect(error.message).toBe(`The file is not readable text: invalid characters at line 3 (byte ${offset}). Save it as UTF-8 or Windows-1252.`);
  });

  it("ends a run whose rule set nobody defines VALIDATION_FAILED, not retried", async () => {
    const { job } = await upload(billingCsv({ rows: 2 }), { ruleSet: "payroll-2019" });
    expect(await finished(job.id)).toMatchObject({ status: "VALIDATION_FAILED", errorCode: "VALIDATION_ERROR", retryCount: 0 });
    const error = ok(await gql(conveyor, `query($id: ID!) { job(id: $id) { error { message(locale: EN) } } }`, { id: job.id }, { token: alice })).job.error;
    expect(error.message).toBe("This rule set does not exist. The ruleSets query lists the available ones.");
  });

  it("creates one run for the same correlation id, however many uploads race", async () => {
    const file = billingCsv({ rows: 10 });
    const results = await Promise.all([1, 2, 3].map(() => upload(file, { correlationId: "nightly-2026-11-26" })));
    expect(new Set(results.map((result) => result.run.id)).size).toBe(1);
    expect(new Set(results.map((result) => result.job.id)).size).toBe(1);
    expect(results.filter((result) => result.created)).toHaveLength(1);
    const runs = await db.query("SELECT file_id FROM validation_runs WHERE correlation_id = 'nightly-2026-11-26'");
    expect(runs.rowCount).toBe(1);
    // The dropped uploads' files are deleted; only the run's own remains.
    await eventually(async () => (await db.query("SELECT 1 FROM validation_files f WHERE NOT EXISTS (SELECT 1 FROM validation_runs r WHERE r.file_id = f.id)")).rowCount === 0);
    // Another user's same correlation id is their own run.
    const bobs = await upload(file, { correlationId: "nightly-2026-11-26" }, bob);
    expect(bobs.created).toBe(true);
    expect(bobs.run.id).not.toBe(results[0]!.run.id);
  });

  it("refuses another user's run, its job and its export; operators see it", async () => {
    const { run, job } = await upload(billingCsv({ rows: 20 }));
    await finished(job.id);
    const foreign = await gql(conveyor, RUN, { id: run.id }, { token: bob });
    expect(foreign.errors?.[0]?.extensions?.code).toBe("FORBIDDEN");
    expect(foreign.data?.validationRun ?? null).toBeNull();
    expect((await gql(conveyor, `query($id: ID!) { job(id: $id) { id } }`, { id: job.id }, { token: bob })).errors?.[0]?.extensions?.code).toBe("FORBIDDEN");
    const exported = await fetch(`${conveyor.url}/jobs/${job.id}/result.csv`, { headers: { authorization: `Bearer ${bob}` } });
    expect(exported.status).toBe(403);
    expect((await runOf(run.id, {}, olga)).id).toBe(run.id);
    // Listings: each user their own runs.
    const bobsRuns = ok(await gql(conveyor, `{ validationRuns(first: 100) { edges { node { id owner } } } }`, {}, { token: bob })).validationRuns.edges;
    expect(bobsRuns.length).toBeGreaterThan(0);
    expect(bobsRuns.every((edge: any) => edge.node.owner === "bob")).toBe(true);
    // A cursor naming alice's run is refused to bob as one naming no run is.
    const RUNS_AFTER = `query($after: String) { validationRuns(first: 100, after: $after) { edges { node { id } } } }`;
    const cursorOf = (id: string) => Buffer.from(`GPC:S:${id}`).toString("base64");
    const foreignCursor = await gql(conveyor, RUNS_AFTER, { after: cursorOf(run.id) }, { token: bob });
    expect(foreignCursor.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
    expect(foreignCursor.errors).toEqual((await gql(conveyor, RUNS_AFTER, { after: cursorOf("00000000-0000-4000-8000-000000000000") }, { token: bob })).errors);
    expect(ok(await gql(conveyor, RUNS_AFTER, { after: cursorOf(run.id) }, { token: alice })).validationRuns.edges.map((edge: any) => edge.node.id)).not.toContain(run.id);
    expect((await gql(conveyor, `query($id: ID!) { validationRun(id: $id) { id } }`, { id: "not-a-uuid" }, { token: alice })).errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
  });

  it("exports the report as CSV and JSON to its owner", async () => {
    const { job } = await upload(billingCsv({ rows: 1000 }));
    await finished(job.id);
    const json = await fetch(`${conveyor.url}/jobs/${job.id}/result.json`, { headers: { authorization: `Bearer ${alice}` } });
    expect(json.status).toBe(200);
    const report = (await json.json()) as any;
    expect(report).toMatchObject({ ruleSet: "billing-lines", rows: 1000, findingsTotal: expectedFindings(1000).findingsTotal });
    const csv = await (await fetch(`${conveyor.url}/jobs/${job.id}/result.csv`, { headers: { authorization: `Bearer ${alice}` } })).text();
    const lines = csv.trimEnd().split("\r\n");
    expect(lines[0]).toBe("record,rule,column,severity,row,count");
    expect(lines).toContain("total,rows,,,,1000");
    expect(lines).toContain(`rule,currency.allowed,currency,error,,${expectedFindings(1000).byRule["currency.allowed"]}`);
    expect(lines).toContain("finding,currency.allowed,currency,error,251,");
  });

  it("stops reading when the run is cancelled during validation", async () => {
    const file = Buffer.from(billingCsv({ rows: 150_000 }));
    const { job } = await upload(file);
    const client = wsClient(conveyor, alice);
    const stream = collect(client, PROGRESS, { id: job.id }, (event) => event.data?.jobProgress?.stage === "validating");
    await stream.done;
    await client.dispose();
    // Reads of the file's chunks wait behind this lock: the handler is held mid-file while the
    // cancel arrives, whatever the machine's speed.
    await db.query("BEGIN");
    await db.query("LOCK TABLE validation_file_chunks IN ACCESS EXCLUSIVE MODE");
    try {
      expect((await conveyor.jobs.find(job.id))!.status).toBe("PROCESSING");
      const cancel = ok(await gql(conveyor, `mutation($id: ID!) { cancelJob(id: $id) { outcome } }`, { id: job.id }, { token: alice }));
      expect(cancel.cancelJob.outcome).toBeTruthy();
    } finally {
      await db.query("ROLLBACK");
    }
    expect((await finished(job.id)).status).toBe("CANCELLED");
    const stopped = await eventually(() => logLines.map((line) => JSON.parse(line)).find((line) => line.msg === "validation run stopped before the end of its file" && line.bytesTotal === file.length));
    expect(stopped.bytesRead).toBeLessThan(file.length);
  });

  it("keeps cell content out of every stored error, finding, event and log line", async () => {
    const stored = await db.query(
      `SELECT coalesce(error_message, '') || coalesce(error_details::text, '') || coalesce(result::text, '') || payload::text || metadata::text AS text FROM processing_jobs
       UNION ALL SELECT coalesce(message, '') || coalesce(stage, '') FROM job_events
       UNION ALL SELECT metadata::text || coalesce(correlation_id, '') FROM audit_events`,
    );
    expect(stored.rowCount).toBeGreaterThan(10);
    for (const row of stored.rows) expect(row.text).not.toContain("Secretname");
    expect(logLines.length).toBeGreaterThan(10);
    for (const line of logLines) {
      expect(line).not.toContain("Secretname");
      expect(line).not.toContain("Société");
    }
  });
});
