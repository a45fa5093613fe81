import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JobHandler } from "../../src/handlers/registry.js";
import { JobAbortReason, PermanentJobError } from "../../src/jobs/job-errors.js";
import { eventually, startTestConveyor, type TestConveyor } from "../support/conveyor.js";
import { tokenFor } from "../support/graphql-client.js";
import { codeOf, createAssessment, enqueue, gql, ok, PARKED, statusOf, VALID_ANSWERS } from "./helpers.js";

// What the handlers saw, by job id.
const runs = new Map<string, number>();
const aborts = new Map<string, string>();
const count = (id: string) => runs.set(id, (runs.get(id) ?? 0) + 1);

const handlers: JobHandler<any, any>[] = [
  {
    type: "quick",
    async run(payload, context) {
      count(context.job.id);
      return { echo: payload };
    },
  },
  {
    type: "broken",
    async run(_payload, context) {
      count(context.job.id);
      throw new PermanentJobError("the input file is corrupt", { category: "FILE_ERROR" });
    },
  },
  {
    // Runs until its signal fires, then gives up with the signal's reason.
    type: "slow",
    async run(_payload, context) {
      count(context.job.id);
      await context.progress("working", 10);
      await new Promise((_resolve, reject) => {
        const stop = () => {
          const reason = context.signal.reason;
          aborts.set(context.job.id, reason instanceof JobAbortReason ? reason.kind : String(reason));
          reject(reason);
        };
        if (context.signal.aborted) stop();
        else context.signal.addEventListener("abort", stop, { once: true });
      });
    },
  },
];

const COMPLETE = `mutation($id: ID!, $locale: Locale, $correlationId: String) {
  completeAssessment(id: $id, locale: $locale, correlationId: $correlationId) {
    alreadyCompleted jobCreated message correlationId
    job { id status type owner correlationId assessment { id } }
    assessment { id status completedAt answers }
  }
}`;
const ENQUEUE = `mutation($input: EnqueueJobInput!) { enqueueJob(input: $input) { created job { id status owner type payload priority maxAttempts idempotencyKey runAt } } }`;
const CANCEL = `mutation($id: ID!) { cancelJob(id: $id) { outcome job { id status cancelRequestedAt } } }`;
const RETRY = `mutation($id: ID!) { retryJob(id: $id) { id status retryCount error { category } } }`;

describe("mutations", () => {
  let conveyor: TestConveyor;
  let alice: string;
  let bob: string;
  let olga: string;
  const rowCount = async (sql: string, params: unknown[] = []) => (await conveyor.database.pool.query<{ n: number }>(sql, params)).rows[0]!.n;

  beforeAll(async () => {
    conveyor = await startTestConveyor({ handlers, environment: { WORKER_ENABLED: "true", WORKER_CONCURRENCY: "4" } });
    [alice, bob, olga] = await Promise.all([tokenFor(conveyor, "alice"), tokenFor(conveyor, "bob"), tokenFor(conveyor, "olga", "operator")]);
  });
  afterAll(() => conveyor?.dispose());

  describe("createAssessment and saveAssessmentAnswers", () => {
    it("creates an assessment in progress, owned by the caller", async () => {
      const data = ok(await gql(conveyor, `mutation { createAssessment(kind: "wellbeing-check", answers: {workload: 3}) { id owner kind status answers completedAt } }`, {}, { token: alice }));
      expect(data.createAssessment).toMatchObject({ owner: "alice", kind: "wellbeing-check", status: "IN_PROGRESS", answers: { workload: 3 }, completedAt: null });
      const stored = await conveyor.services.assessments.find(data.createAssessment.id);
      expect(stored).toMatchObject({ owner: "alice", status: "IN_PROGRESS" });
    });

    it("refuses an unknown kind, answers that are not an object, oversized answers and anonymous callers", async () => {
      const before = await rowCount(`SELECT count(*)::int AS n FROM assessments`);
      const create = `mutation($kind: String!, $answers: JSON) { createAssessment(kind: $kind, answers: $answers) { id } }`;
      expect(codeOf(await gql(conveyor, create, { kind: "nope" }, { token: alice }))).toBe("BAD_USER_INPUT");
      expect(codeOf(await gql(conveyor, create, { kind: "skills-check", answers: [1, 2] }, { token: alice }))).toBe("BAD_USER_INPUT");
      expect(codeOf(await gql(conveyor, create, { kind: "skills-check", answers: { q5: "x".repeat(70_000) } }, { token: alice }))).toBe("BAD_USER_INPUT");
      expect(codeOf(await gql(conveyor, create, { kind: "skills-check", answers: { q5: "a\u0000b" } }, { token: alice }))).toBe("BAD_USER_INPUT");
      expect(codeOf(await gql(conveyor, create, { kind: "skills-check" }))).toBe("UNAUTHENTICATED");
      expect(await rowCount(`SELECT count(*)::int AS n FROM assessments`)).toBe(before);
    });

    it("replaces the answers while in progress; CONFLICT once completed, and the answers stay", async () => {
      const id = await createAssessment(conveyor, alice, { q1: "WHERE" });
      const save = `mutation($id: ID!, $answers: JSON!) { saveAssessmentAnswers(id: $id, answers: $answers) { id status answers } }`;
      const saved = ok(await gql(conveyor, save, { id, answers: VALID_ANSWERS }, { token: alice }));
      expect(saved.saveAssessmentAnswers).toEqual({ id, status: "IN_PROGRESS", answers: VALID_ANSWERS });
      expect(codeOf(await gql(conveyor, save, { id, answers: { q1: "HAVING" } }, { token: bob }))).toBe("FORBIDDEN");
      ok(await gql(conveyor, COMPLETE, { id }, { token: alice }));
      const late = await gql(conveyor, save, { id, answers: { q1: "ORDER BY" } }, { token: alice });
      expect(codeOf(late)).toBe("CONFLICT");
      expect((await conveyor.services.assessments.find(id))?.answers).toEqual(VALID_ANSWERS);
      expect(codeOf(await gql(conveyor, save, { id: "00000000-0000-4000-8000-000000000000", answers: {} }, { token: alice }))).toBe("NOT_FOUND");
    });
  });

  describe("completeAssessment", () => {
    it("completes the assessment, sets completedAt and creates its job", async () => {
      const id = await createAssessment(conveyor, alice);
      const started = Date.now();
      const data = ok(await gql(conveyor, COMPLETE, { id }, { token: alice })).completeAssessment;
      expect(data).toMatchObject({
        alreadyCompleted: false,
        jobCreated: true,
        message: "Assessment completed; processing has started.",
        correlationId: `assessment:${id}`,
        job: { type: "assessment", owner: "alice", correlationId: `assessment:${id}`, assessment: { id } },
        assessment: { id, status: "COMPLETED" },
      });
      // completedAt is the database's clock: close to ours, not before the assessment was created.
      expect(Math.abs(Date.parse(data.assessment.completedAt) - started)).toBeLessThan(60_000);
      const audit = await conveyor.database.pool.query(`SELECT actor, action FROM audit_events WHERE entity_id = $1`, [id]);
      expect(audit.rows).toEqual([{ actor: "alice", action: "assessment.completed" }]);
      await eventually(async () => (await statusOf(conveyor, data.job.id)) === "COMPLETED");
    });

    it("returns the same job on a second call, alreadyCompleted, with the message in the caller's language", async () => {
      const id = await createAssessment(conveyor, alice);
      const first = ok(await gql(conveyor, COMPLETE, { id }, { token: alice })).completeAssessment;
      const cases: { headers?: Record<string, string>; locale?: string; message: RegExp }[] = [
        { headers: { "accept-language": "fr-CH, fr;q=0.9, en;q=0.8" }, message: /^Cette évaluation était déjà terminée/ },
        { headers: { "accept-language": "de" }, message: /^Diese Bewertung wurde bereits abgeschlossen/ },
        { headers: { "accept-language": "es, en;q=0.5" }, message: /^This assessment was already completed/ },
        { headers: { "accept-language": "ja" }, message: /^This assessment was already completed/ },
        { locale: "FR", message: /^Cette évaluation était déjà terminée/ },
        { locale: "DE", message: /^Diese Bewertung wurde bereits abgeschlossen/ },
        // The argument wins over the header.
        { headers: { "accept-language": "de" }, locale: "EN", message: /^This assessment was already completed/ },
      ];
      for (const { headers, locale, message } of cases) {
        const again = ok(await gql(conveyor, COMPLETE, { id, locale }, { token: alice, headers })).completeAssessment;
        expect(again).toMatchObject({ alreadyCompleted: true, jobCreated: true, job: { id: first.job.id } });
        expect(again.assessment.completedAt).toBe(first.assessment.completedAt);
        expect(again.message, JSON.stringify({ headers, locale })).toMatch(message);
      }
      const firstInFrench = ok(await gql(conveyor, COMPLETE, { id: await createAssessment(conveyor, alice), locale: "FR" }, { token: alice }));
      expect(firstInFrench.completeAssessment.message).toBe("Évaluation terminée ; le traitement a commencé.");
      expect(await rowCount(`SELECT count(*)::int AS n FROM processing_jobs WHERE assessment_id = $1`, [id])).toBe(1);
    });

    it("creates exactly one job for 100 concurrent calls: the same id in all 100 responses, one alreadyCompleted=false", async () => {
      const id = await createAssessment(conveyor, alice);
      const responses = await Promise.all(Array.from({ length: 100 }, () => gql(conveyor, COMPLETE, { id }, { token: alice })));
      const payloads = responses.map((response) => ok(response).completeAssessment);
      expect(payloads).toHaveLength(100);
      expect(new Set(payloads.map((payload) => payload.job?.id)).size).toBe(1);
      expect(payloads[0]!.job.id).toEqual(expect.any(String));
      expect(payloads.filter((payload) => payload.alreadyCompleted === false)).toHaveLength(1);
      expect(new Set(payloads.map((payload) => payload.assessment.completedAt)).size).toBe(1);
      expect(await rowCount(`SELECT count(*)::int AS n FROM processing_jobs WHERE assessment_id = $1`, [id])).toBe(1);
      expect(await rowCount(`SELECT count(*)::int AS n FROM audit_events WHERE entity_id = $1 AND action = 'assessment.completed'`, [id])).toBe(1);
      // And the one job runs once.
      const jobId = payloads[0]!.job.id;
      await eventually(async () => (await statusOf(conveyor, jobId)) === "COMPLETED");
      expect(await rowCount(`SELECT count(*)::int AS n FROM job_events WHERE job_id = $1 AND to_status = 'PROCESSING' AND from_status = 'QUEUED'`, [jobId])).toBe(1);
    });

    it("creates a separate job per correlation id, and refuses an empty one", async () => {
      const id = await createAssessment(conveyor, alice);
      const first = ok(await gql(conveyor, COMPLETE, { id }, { token: alice })).completeAssessment;
      const rescore = ok(await gql(conveyor, COMPLETE, { id, correlationId: "rescore-1" }, { token: alice })).completeAssessment;
      expect(rescore).toMatchObject({ alreadyCompleted: true, correlationId: "rescore-1", job: { correlationId: "rescore-1" } });
      expect(rescore.job.id).not.toBe(first.job.id);
      const again = ok(await gql(conveyor, COMPLETE, { id, correlationId: "rescore-1" }, { token: alice })).completeAssessment;
      expect(again.job.id).toBe(rescore.job.id);
      expect(codeOf(await gql(conveyor, COMPLETE, { id, correlationId: "  " }, { token: alice }))).toBe("BAD_USER_INPUT");
      expect(codeOf(await gql(conveyor, COMPLETE, { id, correlationId: "x".repeat(201) }, { token: alice }))).toBe("BAD_USER_INPUT");
      expect(await rowCount(`SELECT count(*)::int AS n FROM processing_jobs WHERE assessment_id = $1`, [id])).toBe(2);
    });

    it("refuses another user's assessment and leaves it in progress", async () => {
      const id = await createAssessment(conveyor, alice);
      expect(codeOf(await gql(conveyor, COMPLETE, { id }, { token: bob }))).toBe("FORBIDDEN");
      expect((await conveyor.services.assessments.find(id))?.status).toBe("IN_PROGRESS");
      expect(await rowCount(`SELECT count(*)::int AS n FROM processing_jobs WHERE assessment_id = $1`, [id])).toBe(0);
      expect(codeOf(await gql(conveyor, COMPLETE, { id: "00000000-0000-4000-8000-000000000000" }, { token: alice }))).toBe("NOT_FOUND");
    });
  });

  describe("enqueueJob", () => {
    it("enqueues a job owned by the caller, with the given options", async () => {
      const data = ok(await gql(conveyor, ENQUEUE, { input: { type: "quick", payload: { n: 1 }, priority: "LOW", maxAttempts: 5, runAt: PARKED } }, { token: alice }));
      expect(data.enqueueJob).toMatchObject({
        created: true,
        job: { status: "QUEUED", owner: "alice", type: "quick", payload: { n: 1 }, priority: "LOW", maxAttempts: 5, idempotencyKey: null, runAt: PARKED },
      });
      const running = ok(await gql(conveyor, ENQUEUE, { input: { type: "quick", payload: { n: 2 } } }, { token: alice })).enqueueJob.job.id;
      await eventually(async () => (await statusOf(conveyor, running)) === "COMPLETED");
      expect(runs.get(running)).toBe(1);
    });

    it("refuses an unknown type and invalid options with BAD_USER_INPUT, inserting nothing", async () => {
      const before = await rowCount(`SELECT count(*)::int AS n FROM processing_jobs`);
      const unknown = await gql(conveyor, ENQUEUE, { input: { type: "does-not-exist" } }, { token: alice });
      expect(codeOf(unknown)).toBe("BAD_USER_INPUT");
      expect(unknown.errors?.[0]?.message).toMatch(/Unknown job type "does-not-exist"/);
      for (const input of [
        { type: "quick", maxAttempts: 0 },
        { type: "quick", maxAttempts: 101 },
        { type: "quick", idempotencyKey: "" },
        { type: "quick", idempotencyKey: "k".repeat(201) },
        { type: "quick", runAt: "tomorrow" },
        { type: "quick", runAt: "-271821-04-20T00:00:00.000Z" },
        { type: "quick", priority: "URGENT" },
        { type: "quick", payload: { "key\u0000": 1 } },
      ]) {
        expect(codeOf(await gql(conveyor, ENQUEUE, { input }, { token: alice })), JSON.stringify(input)).toBe("BAD_USER_INPUT");
      }
      // An operator-only type: only an operator gets as far as the payload's validation.
      expect(codeOf(await gql(conveyor, ENQUEUE, { input: { type: "assessment", payload: {} } }, { token: olga }))).toBe("BAD_USER_INPUT");
      expect(await rowCount(`SELECT count(*)::int AS n FROM processing_jobs`)).toBe(before);
    });

    it("returns the same job with created=false for a repeated idempotency key, and keeps the first payload", async () => {
      const input = { type: "quick", payload: { version: 1 }, idempotencyKey: "import-2026-11-24", runAt: PARKED };
      const first = ok(await gql(conveyor, ENQUEUE, { input }, { token: alice })).enqueueJob;
      const second = ok(await gql(conveyor, ENQUEUE, { input: { ...input, payload: { version: 2 } } }, { token: alice })).enqueueJob;
      expect(first.created).toBe(true);
      expect(second).toMatchObject({ created: false, job: { id: first.job.id, payload: { version: 1 }, idempotencyKey: "import-2026-11-24" } });
      const concurrent = await Promise.all(Array.from({ length: 20 }, () => gql(conveyor, ENQUEUE, { input: { ...input, idempotencyKey: "burst" } }, { token: alice })));
      const burst = concurrent.map((response) => ok(response).enqueueJob);
      expect(new Set(burst.map((payload) => payload.job.id)).size).toBe(1);
      expect(burst.filter((payload) => payload.created)).toHaveLength(1);
      // Keys are per owner: another user's same key is a job of their own, and reveals nothing.
      const others = await gql(conveyor, ENQUEUE, { input }, { token: bob });
      expect(ok(others).enqueueJob).toMatchObject({ created: true, job: { owner: "bob" } });
      expect(others.text).not.toContain(first.job.id);
      expect(await rowCount(`SELECT count(*)::int AS n FROM processing_jobs WHERE idempotency_key = $1`, [input.idempotencyKey])).toBe(2);
    });

    it("lets only operators enqueue assessment jobs, owned by the assessment's owner", async () => {
      const bobs = await createAssessment(conveyor, bob, { q1: "WHERE" });
      const stolen = await gql(conveyor, ENQUEUE, { input: { type: "assessment", payload: { assessmentId: bobs } } }, { token: alice });
      expect(codeOf(stolen)).toBe("FORBIDDEN");
      expect(await rowCount(`SELECT count(*)::int AS n FROM processing_jobs WHERE payload->>'assessmentId' = $1`, [bobs])).toBe(0);
      expect(codeOf(await gql(conveyor, ENQUEUE, { input: { type: "assessment", payload: { assessmentId: bobs }, runAt: PARKED } }, { token: bob }))).toBe("FORBIDDEN");
      const byOperator = ok(await gql(conveyor, ENQUEUE, { input: { type: "assessment", payload: { assessmentId: bobs }, runAt: PARKED } }, { token: olga }));
      expect(byOperator.enqueueJob).toMatchObject({ created: true, job: { owner: "bob" } });
    });
  });

  describe("retryJob", () => {
    it("puts a failed job back in the queue with fresh attempts; it runs again", async () => {
      const id = await enqueue(conveyor, alice, { type: "broken" });
      await eventually(async () => (await statusOf(conveyor, id)) === "FAILED");
      const failed = ok(await gql(conveyor, `query($id: ID!) { job(id: $id) { status error { category message recoverable } } }`, { id }, { token: alice }));
      expect(failed.job).toMatchObject({ status: "FAILED", error: { category: "FILE_ERROR", recoverable: false } });
      const retried = ok(await gql(conveyor, RETRY, { id }, { token: alice })).retryJob;
      expect(retried).toMatchObject({ id, retryCount: 0 });
      expect(["QUEUED", "PROCESSING", "FAILED"]).toContain(retried.status);
      await eventually(() => runs.get(id) === 2);
      await eventually(async () => (await statusOf(conveyor, id)) === "FAILED");
      const audit = await conveyor.database.pool.query(`SELECT actor FROM audit_events WHERE entity_id = $1 AND action = 'job.retried'`, [id]);
      expect(audit.rows).toEqual([{ actor: "alice" }]);
    });

    it("answers CONFLICT for a job that has not failed, and changes nothing", async () => {
      const queued = await enqueue(conveyor, alice, { type: "quick", runAt: PARKED });
      const conflict = await gql(conveyor, RETRY, { id: queued }, { token: alice });
      expect(codeOf(conflict)).toBe("CONFLICT");
      expect(conflict.errors?.[0]?.message).toMatch(/QUEUED/);
      const done = await enqueue(conveyor, alice, { type: "quick" });
      await eventually(async () => (await statusOf(conveyor, done)) === "COMPLETED");
      expect(codeOf(await gql(conveyor, RETRY, { id: done }, { token: alice }))).toBe("CONFLICT");
      expect(await statusOf(conveyor, done)).toBe("COMPLETED");
      expect(runs.get(done)).toBe(1);
    });
  });

  describe("cancelJob", () => {
    it("cancels a queued job at once; a second cancel is a CONFLICT", async () => {
      const id = await enqueue(conveyor, alice, { type: "quick", runAt: PARKED });
      const data = ok(await gql(conveyor, CANCEL, { id }, { token: alice })).cancelJob;
      expect(data).toMatchObject({ outcome: "CANCELLED", job: { id, status: "CANCELLED" } });
      const job = ok(await gql(conveyor, `query($id: ID!) { job(id: $id) { status completedAt error { category message } } }`, { id }, { token: alice, headers: { "accept-language": "fr" } })).job;
      expect(job).toMatchObject({ status: "CANCELLED", error: { category: "CANCELLED", message: "La tâche a été annulée." } });
      expect(job.completedAt).not.toBeNull();
      expect(codeOf(await gql(conveyor, CANCEL, { id }, { token: alice }))).toBe("CONFLICT");
      expect(runs.get(id)).toBeUndefined();
    });

    it("cancels a running job: CANCEL_REQUESTED, the handler's signal fires, and the job ends CANCELLED", async () => {
      const id = await enqueue(conveyor, alice, { type: "slow" });
      await eventually(async () => (await conveyor.jobs.find(id))?.stage === "working");
      const data = ok(await gql(conveyor, CANCEL, { id }, { token: alice })).cancelJob;
      expect(data.outcome).toBe("CANCEL_REQUESTED");
      expect(data.job.id).toBe(id);
      expect(data.job.cancelRequestedAt).not.toBeNull();
      await eventually(async () => (await statusOf(conveyor, id)) === "CANCELLED");
      expect(aborts.get(id)).toBe("cancel");
      expect(runs.get(id)).toBe(1);
      const job = ok(await gql(conveyor, `query($id: ID!) { job(id: $id) { status retryCount error { category recoverable } events { fromStatus toStatus } } }`, { id }, { token: alice })).job;
      expect(job).toMatchObject({ status: "CANCELLED", retryCount: 0, error: { category: "CANCELLED", recoverable: false } });
      expect(job.events.at(-1)).toEqual({ fromStatus: "PROCESSING", toStatus: "CANCELLED" });
      // Cancelled is final: nothing runs it again unless somebody retries it.
      expect(codeOf(await gql(conveyor, CANCEL, { id }, { token: alice }))).toBe("CONFLICT");
      const retried = ok(await gql(conveyor, RETRY, { id }, { token: alice })).retryJob;
      expect(retried.retryCount).toBe(0);
      await eventually(() => runs.get(id) === 2);
      ok(await gql(conveyor, CANCEL, { id }, { token: olga }));
      await eventually(async () => (await statusOf(conveyor, id)) === "CANCELLED");
    });

    it("answers CONFLICT for a finished job", async () => {
      const id = await enqueue(conveyor, alice, { type: "quick" });
      await eventually(async () => (await statusOf(conveyor, id)) === "COMPLETED");
      expect(codeOf(await gql(conveyor, CANCEL, { id }, { token: alice }))).toBe("CONFLICT");
      expect(await statusOf(conveyor, id)).toBe("COMPLETED");
    });
  });

  // Last: cleanup deletes every finished job of this file's database.
  describe("operator maintenance", () => {
    it("recoverStalledJobs moves a job whose heartbeat stopped back to the queue; it then completes", async () => {
      const id = await enqueue(conveyor, alice, { type: "quick", runAt: PARKED });
      // A worker that claimed it an hour ago and died.
      await conveyor.database.pool.query(
        `UPDATE processing_jobs SET status = 'PROCESSING', locked_by = 'dead-worker', started_at = now() - interval '1 hour',
           heartbeat_at = now() - interval '1 hour', run_at = now() - interval '1 hour' WHERE id = $1`,
        [id],
      );
      expect(codeOf(await gql(conveyor, `mutation { recoverStalledJobs { recovered } }`, {}, { token: alice }))).toBe("FORBIDDEN");
      expect(await statusOf(conveyor, id)).toBe("PROCESSING");
      const data = ok(await gql(conveyor, `mutation { recoverStalledJobs { recovered jobIds } }`, {}, { token: olga })).recoverStalledJobs;
      expect(data).toEqual({ recovered: 1, jobIds: [id] });
      await eventually(async () => (await statusOf(conveyor, id)) === "COMPLETED");
      const job = ok(await gql(conveyor, `query($id: ID!) { job(id: $id) { retryCount events { toStatus message } } }`, { id }, { token: alice })).job;
      expect(job.retryCount).toBe(1);
      expect(job.events.map((event: { toStatus: string }) => event.toStatus)).toContain("RETRYING");
      expect(runs.get(id)).toBe(1);
      expect(ok(await gql(conveyor, `mutation { recoverStalledJobs { recovered jobIds } }`, {}, { token: olga })).recoverStalledJobs).toEqual({ recovered: 0, jobIds: [] });
    });

    it("cleanupJobs deletes finished jobs older than asked, keeps waiting ones; operators only", async () => {
      const finished = await enqueue(conveyor, alice, { type: "quick" });
      const waiting = await enqueue(conveyor, alice, { type: "quick", runAt: PARKED });
      await eventually(async () => (await statusOf(conveyor, finished)) === "COMPLETED");
      expect(codeOf(await gql(conveyor, `mutation { cleanupJobs(olderThanSeconds: 0) { deleted } }`, {}, { token: alice }))).toBe("FORBIDDEN");
      expect(codeOf(await gql(conveyor, `mutation { cleanupJobs(olderThanSeconds: -1) { deleted } }`, {}, { token: olga }))).toBe("BAD_USER_INPUT");
      // Finished a moment ago: not older than an hour.
      expect(ok(await gql(conveyor, `mutation { cleanupJobs(olderThanSeconds: 3600) { deleted } }`, {}, { token: olga })).cleanupJobs.deleted).toBe(0);
      expect(await statusOf(conveyor, finished)).toBe("COMPLETED");
      // Let every job that can run finish first, so that the count below stays put.
      await eventually(async () => (await rowCount(`SELECT count(*)::int AS n FROM processing_jobs WHERE status IN ('QUEUED', 'RETRYING', 'PROCESSING') AND run_at < now() + interval '1 day'`)) === 0);
      const finishedBefore = await rowCount(`SELECT count(*)::int AS n FROM processing_jobs WHERE completed_at IS NOT NULL`);
      const deleted = ok(await gql(conveyor, `mutation { cleanupJobs(olderThanSeconds: 0) { deleted } }`, {}, { token: olga })).cleanupJobs.deleted;
      expect(deleted).toBe(finishedBefore);
      expect(codeOf(await gql(conveyor, `query($id: ID!) { job(id: $id) { id } }`, { id: finished }, { token: alice }))).toBe("NOT_FOUND");
      expect(await rowCount(`SELECT count(*)::int AS n FROM job_events WHERE job_id = $1`, [finished])).toBe(0);
      expect(await statusOf(conveyor, waiting)).toBe("QUEUED");
    });
  });
});
