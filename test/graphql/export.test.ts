import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JobHandler } from "../../src/handlers/registry.js";
import { eventually, startTestConveyor, type TestConveyor } from "../support/conveyor.js";
import { tokenFor } from "../support/graphql-client.js";
import { completeAssessment, createAssessment, enqueue, expectNoInternals, gql, ok, PARKED, statusOf } from "./helpers.js";

const handlers: JobHandler<any, any>[] = [
  // A result whose text a spreadsheet would run as a formula, and that needs CSV quoting.
  { type: "report", run: async () => ({ title: "=HYPERLINK(\"http://evil.example\")", totals: { rows: 3, note: 'say "hi", then\nleave' }, ok: true }) },
];

/** Splits CSV text into rows of cells (quotes, doubled quotes and quoted line breaks honoured). */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = "";
  let quoted = false;
  for (let index = 0; index < text.length; index++) {
    const char = text[index]!;
    if (quoted) {
      if (char === '"' && text[index + 1] === '"') (cell += '"'), index++;
      else if (char === '"') quoted = false;
      else cell += char;
    } else if (char === '"') quoted = true;
    else if (char === ",") row.push(cell), (cell = "");
    else if (char === "\r" && text[index + 1] === "\n") {
      row.push(cell);
      rows.push(row);
      (row = []), (cell = ""), index++;
    } else cell += char;
  }
  if (cell !== "" || row.length) row.push(cell), rows.push(row);
  return rows;
}

describe("result export and plain HTTP endpoints", () => {
  let conveyor: TestConveyor;
  let alice: string;
  let bob: string;
  let olga: string;
  let assessmentId: string;
  let jobId: string;
  let result: any;
  const get = async (path: string, token?: string, method = "GET") => {
    const response = await fetch(`${conveyor.url}${path}`, { method, headers: token ? { authorization: `Bearer ${token}` } : {} });
    const text = await response.text();
    expectNoInternals(text);
    return { status: response.status, headers: response.headers, text };
  };

  beforeAll(async () => {
    conveyor = await startTestConveyor({ handlers, environment: { WORKER_ENABLED: "true" } });
    [alice, bob, olga] = await Promise.all([tokenFor(conveyor, "alice"), tokenFor(conveyor, "bob"), tokenFor(conveyor, "olga", "operator")]);
    assessmentId = await createAssessment(conveyor, alice, { q1: "HAVING", q2: "NOWAIT", q3: "201", q4: 3, q5: "A queue on PostgreSQL" });
    jobId = await completeAssessment(conveyor, alice, assessmentId);
    await eventually(async () => (await statusOf(conveyor, jobId)) === "COMPLETED");
    result = ok(await gql(conveyor, `query($id: ID!) { job(id: $id) { result } }`, { id: jobId }, { token: alice })).job.result;
  });
  afterAll(() => conveyor?.dispose());

  it("exports the result as JSON to its owner: the job's result, as a download", async () => {
    const response = await get(`/jobs/${jobId}/result.json`, alice);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("application/json; charset=utf-8");
    expect(response.headers.get("content-disposition")).toBe(`attachment; filename="job-${jobId}-result.json"`);
    expect(response.headers.get("cache-control")).toBe("no-store");
    expect(JSON.parse(response.text)).toEqual(result);
    expect(result).toMatchObject({ assessmentId, kind: "skills-check" });
    // Upper-case ids name the same job.
    expect((await get(`/jobs/${jobId.toUpperCase()}/result.json`, alice)).status).toBe(200);
  });

  it("exports the result as CSV to an operator: one row per question, then section totals and the totals", async () => {
    const response = await get(`/jobs/${jobId}/result.csv`, olga);
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toBe("text/csv; charset=utf-8");
    expect(response.headers.get("content-disposition")).toBe(`attachment; filename="job-${jobId}-result.csv"`);
    const rows = parseCsv(response.text);
    expect(rows[0]).toEqual(["section", "question_id", "prompt", "answered", "points", "max_points"]);
    // Scored questions only: q5 is free text and earns no points.
    const questions = rows.slice(1, 1 + result.questions.length);
    expect(questions.map((row) => row[1])).toEqual(["q1", "q2", "q3", "q4"]);
    for (const question of result.questions) {
      const row = questions.find((candidate) => candidate[1] === question.questionId)!;
      expect(row).toEqual([question.section, question.questionId, question.prompt, String(question.answered), String(question.points), String(question.maxPoints)]);
    }
    // q2 was answered wrongly: answered, no points.
    expect(questions.find((row) => row[1] === "q2")!.slice(3, 5)).toEqual(["true", "0"]);
    const sections = rows.filter((row) => row[2] === "section total");
    expect(sections.map((row) => row[0])).toEqual(result.sections.map((section: { section: string }) => section.section));
    expect(rows.slice(-3)).toEqual([
      ["", "", "total", "", String(result.points), String(result.maxPoints)],
      ["", "", "percent", "", String(result.percent), "100"],
      ["", "", "band", "", result.band, ""],
    ]);
    expect(rows).toHaveLength(1 + result.questions.length + result.sections.length + 3);
  });

  it("exports other results as key/value rows, neutralizing formulas and quoting what needs it", async () => {
    const id = await enqueue(conveyor, alice, { type: "report" });
    await eventually(async () => (await statusOf(conveyor, id)) === "COMPLETED");
    const response = await get(`/jobs/${id}/result.csv`, alice);
    expect(response.status).toBe(200);
    const [header, ...rows] = parseCsv(response.text);
    expect(header).toEqual(["key", "value"]);
    // jsonb keeps keys in its own order.
    expect(rows.sort((a, b) => a[0]!.localeCompare(b[0]!))).toEqual([
      ["ok", "true"],
      ["title", `'=HYPERLINK("http://evil.example")`],
      ["totals.note", 'say "hi", then\nleave'],
      ["totals.rows", "3"],
    ]);
  });

  it("answers 401 without a valid token, 403 to another user, 404 for no such job, 409 before completion, 405 to other methods", async () => {
    for (const format of ["json", "csv"]) {
      const path = `/jobs/${jobId}/result.${format}`;
      const anonymous = await get(path);
      expect(anonymous.status).toBe(401);
      expect(JSON.parse(anonymous.text)).toEqual({ error: { code: "UNAUTHENTICATED", message: "Authentication required: send a Bearer token" } });
      expect((await get(path, "not-a-token")).status).toBe(401);
      const foreign = await get(path, bob);
      expect(foreign.status).toBe(403);
      expect(JSON.parse(foreign.text).error.code).toBe("FORBIDDEN");
      expect(foreign.text).not.toContain(assessmentId);
    }
    expect((await get(`/jobs/00000000-0000-4000-8000-000000000000/result.json`, olga)).status).toBe(404);
    const waiting = await enqueue(conveyor, alice, { type: "report", runAt: PARKED });
    const early = await get(`/jobs/${waiting}/result.csv`, alice);
    expect(early.status).toBe(409);
    expect(JSON.parse(early.text)).toEqual({ error: { code: "CONFLICT", message: "The job has no result yet; it is QUEUED" } });
    // Somebody else's unfinished job is still FORBIDDEN, not CONFLICT: the status is not theirs to learn.
    expect((await get(`/jobs/${waiting}/result.csv`, bob)).status).toBe(403);
    expect((await get(`/jobs/${jobId}/result.json`, alice, "DELETE")).status).toBe(405);
    expect((await get(`/jobs/${jobId}/result.json`, alice, "DELETE")).text).toContain("METHOD_NOT_ALLOWED");
  });

  it("serves /health and /ready", async () => {
    const health = await get("/health");
    expect(health.status).toBe(200);
    expect(JSON.parse(health.text)).toEqual({ status: "ok" });
    const ready = await get("/ready");
    expect(ready.status).toBe(200);
    expect(JSON.parse(ready.text)).toEqual({ status: "ready", database: "ok" });
  });

  it("reports not ready while a migration is missing", async () => {
    const { rows } = await conveyor.database.pool.query<{ migration_name: string }>(`SELECT migration_name FROM "_prisma_migrations" WHERE rolled_back_at IS NULL`);
    expect(rows.length).toBeGreaterThan(0);
    await conveyor.database.pool.query(`UPDATE "_prisma_migrations" SET rolled_back_at = now() WHERE migration_name = $1`, [rows[0]!.migration_name]);
    try {
      const ready = await get("/ready");
      expect(ready.status).toBe(503);
      expect(JSON.parse(ready.text)).toEqual({ status: "not ready", database: "ok", pendingMigrations: [rows[0]!.migration_name] });
      // The process still lives.
      expect((await get("/health")).status).toBe(200);
    } finally {
      await conveyor.database.pool.query(`UPDATE "_prisma_migrations" SET rolled_back_at = NULL WHERE migration_name = $1`, [rows[0]!.migration_name]);
    }
    expect((await get("/ready")).status).toBe(200);
  });
});
