import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signToken } from "../../src/graphql/auth.js";
import { startTestConveyor, eventually, type TestConveyor } from "../support/conveyor.js";
import { tokenFor } from "../support/graphql-client.js";
import { codeOf, gql, ok } from "./helpers.js";

const JOB = `query Job($id: ID!) { job(id: $id) { id status error { category message technicalMessage } events { toStatus } } }`;
const SECRET = "finished-job-cache-test-secret-0123456789";

describe("finished-job cache: job(id) of a finished job answered without running it", () => {
  let conveyor: TestConveyor;
  let alice: string;
  let bob: string;
  let olga: string;

  beforeAll(async () => {
    conveyor = await startTestConveyor({ environment: { JWT_SECRET: SECRET } });
    [alice, bob, olga] = await Promise.all([tokenFor(conveyor, "alice"), tokenFor(conveyor, "bob"), tokenFor(conveyor, "olga", "operator")]);
  });
  afterAll(async () => conveyor?.dispose());

  async function insertJob(status: "FAILED" | "QUEUED"): Promise<string> {
    const failed = status === "FAILED";
    const { rows } = await conveyor.database.pool.query<{ id: string }>(
      `INSERT INTO processing_jobs (id, type, owner, correlation_id, status, started_at, completed_at, error_code, error_message, error_recoverable, run_at)
       VALUES (gen_random_uuid(), 'report', 'alice', 'c', $1, now(), $2, $3, $4, false, now() + interval '1 year')
       RETURNING id`,
      [status, failed ? new Date() : null, failed ? "FILE_ERROR" : null, failed ? "the file at /tmp/x was unreadable" : null],
    );
    return rows[0]!.id;
  }

  async function cachedAnswers(): Promise<number> {
    const metric = await conveyor.metrics.registry.getSingleMetric("conveyor_graphql_cached_answers_total")!.get();
    return metric.values.reduce((sum, value) => sum + value.value, 0);
  }

  it("replays a finished job's answer to the same caller, word for word", async () => {
    const id = await insertJob("FAILED");
    const before = await cachedAnswers();
    const first = await gql(conveyor, JOB, { id }, { token: alice });
    const second = await gql(conveyor, JOB, { id }, { token: alice });
    expect(ok(first).job).toMatchObject({ id, status: "FAILED", error: { category: "FILE_ERROR", technicalMessage: null } });
    expect(second.text).toBe(first.text);
    expect(await cachedAnswers()).toBe(before + 1);
  });

  it("never replays a job that can still change", async () => {
    const id = await insertJob("QUEUED");
    const before = await cachedAnswers();
    for (let i = 0; i < 3; i++) expect(ok(await gql(conveyor, JOB, { id }, { token: alice })).job.status).toBe("QUEUED");
    expect(await cachedAnswers()).toBe(before);
  });

  it("keys answers by caller and language: another user is refused, an operator and a French reader get their own", async () => {
    const id = await insertJob("FAILED");
    await gql(conveyor, JOB, { id }, { token: alice });
    await gql(conveyor, JOB, { id }, { token: alice });
    expect(codeOf(await gql(conveyor, JOB, { id }, { token: bob }))).toBe("FORBIDDEN");
    expect(codeOf(await gql(conveyor, JOB, { id }))).toBe("UNAUTHENTICATED");
    expect(ok(await gql(conveyor, JOB, { id }, { token: olga })).job.error.technicalMessage).toMatch(/unreadable/);
    const english = ok(await gql(conveyor, JOB, { id }, { token: alice })).job.error.message;
    const french = ok(await gql(conveyor, JOB, { id }, { token: alice, headers: { "accept-language": "fr" } })).job.error.message;
    expect(french).not.toBe(english);
  });

  it("ends an answer with the token that got it", async () => {
    const id = await insertJob("FAILED");
    const shortLived = await signToken(SECRET, { id: "alice", role: "user" }, { expiresIn: "2s" });
    ok(await gql(conveyor, JOB, { id }, { token: shortLived }));
    const before = await cachedAnswers();
    ok(await gql(conveyor, JOB, { id }, { token: shortLived }));
    expect(await cachedAnswers()).toBe(before + 1);
    await eventually(async () => codeOf(await gql(conveyor, JOB, { id }, { token: shortLived })) === "UNAUTHENTICATED", 10_000, 250);
  });

  it("drops a job's answers when retryJob reopens it", async () => {
    const id = await insertJob("FAILED");
    await gql(conveyor, JOB, { id }, { token: alice });
    expect(ok(await gql(conveyor, JOB, { id }, { token: alice })).job.status).toBe("FAILED");
    ok(await gql(conveyor, `mutation($id: ID!) { retryJob(id: $id) { id } }`, { id }, { token: alice }));
    // The invalidation travels through the event bus (Redis when the suite runs with REDIS_URL).
    const reopened = await eventually(async () => {
      const job = ok(await gql(conveyor, JOB, { id }, { token: alice })).job;
      return job.status === "QUEUED" ? job : undefined;
    });
    expect(reopened.error).toBeNull();
    expect(reopened.events.map((event: { toStatus: string }) => event.toStatus)).toContain("QUEUED");
  });

  it("drops every answer when finished jobs are deleted", async () => {
    const id = await insertJob("FAILED");
    await gql(conveyor, JOB, { id }, { token: alice });
    ok(await gql(conveyor, JOB, { id }, { token: alice }));
    expect(ok(await gql(conveyor, `mutation { cleanupJobs(olderThanSeconds: 0) { deleted } }`, {}, { token: olga })).cleanupJobs.deleted).toBeGreaterThan(0);
    await eventually(async () => codeOf(await gql(conveyor, JOB, { id }, { token: alice })) === "NOT_FOUND");
  });

  it("keeps only a lone job field: a document asking for more always runs", async () => {
    const id = await insertJob("FAILED");
    const withMe = `query($id: ID!) { job(id: $id) { id status } me { id } }`;
    const withAssessment = `query($id: ID!) { job(id: $id) { id status assessment { id } } }`;
    const before = await cachedAnswers();
    for (let i = 0; i < 3; i++) {
      ok(await gql(conveyor, withMe, { id }, { token: alice }));
      ok(await gql(conveyor, withAssessment, { id }, { token: alice }));
    }
    expect(await cachedAnswers()).toBe(before);
  });
});
