import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WorkerPool } from "../../src/jobs/worker-pool.js";
import { eventually, startTestConveyor, type TestConveyor } from "../support/conveyor.js";
import { collect, graphql, tokenFor, wsClient } from "../support/graphql-client.js";

const VALID_ANSWERS = { q1: "HAVING", q2: "SKIP LOCKED", q3: "201", q4: 4 };

describe("assessments over the API", () => {
  let conveyor: TestConveyor;
  let alice: string;
  let bob: string;
  let pool: WorkerPool | null = null;
  const startPool = async () => {
    pool = new WorkerPool({
      lifecycle: conveyor.lifecycle,
      registry: conveyor.registry,
      logger: conveyor.logger,
      connectionString: conveyor.databaseUrl,
      concurrency: 2,
      pollIntervalMs: 100,
      heartbeatIntervalMs: 1000,
      jobTimeoutMs: 10_000,
      shutdownGraceMs: 1000,
    });
    await pool.start();
  };
  const createAssessment = async (token: string, answers: Record<string, unknown> = VALID_ANSWERS) => {
    const response = await graphql(conveyor, `mutation($answers: JSON) { createAssessment(kind: "skills-check", answers: $answers) { id status } }`, { answers }, { token });
    expect(response.errors).toBeUndefined();
    return response.data.createAssessment.id as string;
  };
  const complete = (token: string, id: string, headers: Record<string, string> = {}, locale?: string) =>
    graphql(
      conveyor,
      `mutation($id: ID!, $locale: Locale) { completeAssessment(id: $id, locale: $locale) { alreadyCompleted jobCreated message correlationId job { id status } assessment { status completedAt } } }`,
      { id, locale },
      { token, headers },
    );

  beforeAll(async () => {
    conveyor = await startTestConveyor();
    alice = await tokenFor(conveyor, "alice");
    bob = await tokenFor(conveyor, "bob");
  });
  afterAll(async () => {
    await pool?.stop(100);
    await conveyor?.dispose();
  });

  it("creates one job for 100 concurrent completeAssessment calls, the same id in every response", async () => {
    const id = await createAssessment(alice);
    const responses = await Promise.all(Array.from({ length: 100 }, () => complete(alice, id)));
    expect(responses.every((response) => response.errors === undefined)).toBe(true);
    const jobIds = new Set(responses.map((response) => response.data.completeAssessment.job.id));
    expect(jobIds.size).toBe(1);
    expect(responses.filter((response) => response.data.completeAssessment.alreadyCompleted === false)).toHaveLength(1);
    const rows = await conveyor.database.pool.query("SELECT count(*)::int AS n FROM processing_jobs WHERE assessment_id = $1", [id]);
    expect(rows.rows[0].n).toBe(1);
    const audits = await conveyor.database.pool.query("SELECT action FROM audit_events WHERE entity_id = $1", [id]);
    expect(audits.rows.map((row) => row.action)).toEqual(["assessment.completed"]);
    const first = responses[0]!.data.completeAssessment;
    expect(first.assessment.status).toBe("COMPLETED");
    expect(first.assessment.completedAt).toMatch(/^\d{4}-\d\d-\d\dT/);
  });

  it("answers a repeated completion with the same job and a message in the caller's language", async () => {
    const id = await createAssessment(alice);
    const first = await complete(alice, id, { "accept-language": "en" });
    const again = await complete(alice, id, { "accept-language": "fr-CH, fr;q=0.9" });
    expect(again.data.completeAssessment).toMatchObject({ alreadyCompleted: true, jobCreated: true, job: { id: first.data.completeAssessment.job.id } });
    expect(again.data.completeAssessment.message).toMatch(/déjà terminée/);
    const german = await complete(alice, id, {}, "DE");
    expect(german.data.completeAssessment.message).toMatch(/bereits abgeschlossen/);
    const saved = await graphql(conveyor, `mutation($id: ID!) { saveAssessmentAnswers(id: $id, answers: {q1: "WHERE"}) { id } }`, { id }, { token: alice });
    expect(saved.errors?.[0]?.extensions?.code).toBe("CONFLICT");
  });

  it("streams QUEUED → PROCESSING → each stage → COMPLETED, in order, for a real assessment job", async () => {
    const id = await createAssessment(alice);
    const jobId = (await complete(alice, id)).data.completeAssessment.job.id;
    const client = wsClient(conveyor, alice);
    const subscription = collect(client, `subscription($id: ID!) { jobProgress(jobId: $id) { status stage progress previousStatus job { id result } } }`, { id: jobId });
    await eventually(() => subscription.events.length >= 1);
    await startPool();
    const { events, error } = await subscription.done;
    expect(error).toBeUndefined();
    const steps = events.map((event) => `${(event.data as any).jobProgress.status}${(event.data as any).jobProgress.stage ? `:${(event.data as any).jobProgress.stage}` : ""}`);
    expect(steps).toEqual([
      "QUEUED",
      "PROCESSING",
      "PROCESSING:loading",
      "PROCESSING:validating",
      "PROCESSING:scoring",
      "PROCESSING:finalizing",
      "COMPLETED:finalizing",
    ]);
    const last = (events.at(-1)!.data as any).jobProgress;
    expect(last.progress).toBe(100);
    expect(last.job.result).toMatchObject({ kind: "skills-check", band: "advanced" });
    await client.dispose();
  });

  it("stores invalid answers as VALIDATION_FAILED with per-field details for operators only", async () => {
    if (!pool) await startPool();
    const id = await createAssessment(alice, { q1: "nope", q4: 99 });
    const jobId = (await complete(alice, id)).data.completeAssessment.job.id;
    await eventually(async () => (await conveyor.jobs.find(jobId))?.status === "VALIDATION_FAILED");
    const query = `query($id: ID!) { job(id: $id) { status retryCount error { category message details technicalMessage } } }`;
    const asUser = await graphql(conveyor, query, { id: jobId }, { token: alice, headers: { "accept-language": "de" } });
    expect(asUser.data.job).toMatchObject({ status: "VALIDATION_FAILED", retryCount: 0, error: { category: "VALIDATION_ERROR", details: null, technicalMessage: null } });
    expect(asUser.data.job.error.message).toMatch(/ungültig/);
    const asOperator = await graphql(conveyor, query, { id: jobId }, { token: await tokenFor(conveyor, "olga", "operator") });
    const fields = asOperator.data.job.error.details.failures.map((failure: { field: string }) => failure.field).sort();
    expect(fields).toEqual(["answers.q1", "answers.q2", "answers.q3", "answers.q4"]);
  });

  it("exports a completed result as JSON and CSV to its owner and operators only", async () => {
    if (!pool) await startPool();
    const id = await createAssessment(alice);
    const jobId = (await complete(alice, id)).data.completeAssessment.job.id;
    await eventually(async () => (await conveyor.jobs.find(jobId))?.status === "COMPLETED");
    const get = (path: string, token?: string) => fetch(`${conveyor.url}${path}`, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    const json = await get(`/jobs/${jobId}/result.json`, alice);
    expect(json.status).toBe(200);
    expect(json.headers.get("content-type")).toMatch(/application\/json/);
    expect(await json.json()).toMatchObject({ assessmentId: id, percent: expect.any(Number) });
    const csv = await get(`/jobs/${jobId}/result.csv`, await tokenFor(conveyor, "olga", "operator"));
    expect(csv.headers.get("content-type")).toMatch(/text\/csv/);
    const lines = (await csv.text()).trim().split("\r\n");
    expect(lines[0]).toBe("section,question_id,prompt,answered,points,max_points");
    expect(lines.some((line) => line.startsWith("sql,q2,"))).toBe(true);
    expect(lines.at(-1)).toMatch(/^,,band,,advanced,/);
    expect((await get(`/jobs/${jobId}/result.csv`)).status).toBe(401);
    expect((await get(`/jobs/${jobId}/result.csv`, bob)).status).toBe(403);
    const waiting = await conveyor.jobs.enqueue({ type: "assessment", owner: "alice", payload: { assessmentId: id }, runAt: new Date(Date.now() + 3_600_000), idempotencyKey: "later" }, "alice");
    expect((await get(`/jobs/${waiting.job.id}/result.json`, alice)).status).toBe(409);
  });

  it("keeps a completion whose job could not be created, says so, and creates the job on the next call", async () => {
    const id = await createAssessment(alice);
    const enqueue = conveyor.jobs.enqueue;
    conveyor.jobs.enqueue = () => Promise.reject(new Error("simulated outage"));
    let first;
    try {
      first = await complete(alice, id);
    } finally {
      conveyor.jobs.enqueue = enqueue;
    }
    expect(first.errors).toBeUndefined();
    expect(first.data.completeAssessment).toMatchObject({ jobCreated: false, job: null, alreadyCompleted: false, assessment: { status: "COMPLETED" } });
    expect(first.data.completeAssessment.message).toMatch(/could not be created/);
    const second = await complete(alice, id);
    expect(second.data.completeAssessment).toMatchObject({ jobCreated: true, alreadyCompleted: true, job: { status: expect.any(String) } });
    const rows = await conveyor.database.pool.query("SELECT count(*)::int AS n FROM processing_jobs WHERE assessment_id = $1", [id]);
    expect(rows.rows[0].n).toBe(1);
  });

  it("keeps other users out of assessments", async () => {
    const id = await createAssessment(alice);
    const read = await graphql(conveyor, `query($id: ID!) { assessment(id: $id) { id } }`, { id }, { token: bob });
    expect(read.errors?.[0]?.extensions?.code).toBe("FORBIDDEN");
    const completion = await complete(bob, id);
    expect(completion.errors?.[0]?.extensions?.code).toBe("FORBIDDEN");
    const unknownKind = await graphql(conveyor, `mutation { createAssessment(kind: "nope") { id } }`, {}, { token: alice });
    expect(unknownKind.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
  });
});
