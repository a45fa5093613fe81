import type pg from "pg";
import type { Prisma, PrismaClient } from "../generated/prisma/client.js";
import type { EventBus } from "../events/event-bus.js";
import { changeOf } from "../jobs/lifecycle.js";
import type { JobService } from "../jobs/job-service.js";
import type { Job } from "../jobs/types.js";
import type { Logger } from "../logger.js";
import { ASSESSMENT_JOB_TYPE } from "../handlers/assessment-handler.js";
import { inTransaction } from "../db/transaction.js";
import { findDefinition } from "./definitions.js";

export class AssessmentNotFoundError extends Error {
  override name = "AssessmentNotFoundError";
}
export class AssessmentConflictError extends Error {
  override name = "AssessmentConflictError";
}
export class AssessmentInputError extends Error {
  override name = "AssessmentInputError";
}

export interface CompletionResult {
  assessmentId: string;
  /** The assessment was already COMPLETED before this call. */
  alreadyCompleted: boolean;
  /**
   * Null when the job could not be created (the completion stands and a later call creates it), or
   * when `jobExpired`.
   */
  job: Job | null;
  /** This completion was processed once and its job has since been deleted by retention: no new job. */
  jobExpired: boolean;
  correlationId: string;
}

const SCHEMA_VERSION = "v1";
const MAX_ANSWERS_BYTES = 64_000;

// Completion and job creation in one transaction; the job insert sits behind a savepoint so that a
// failure to create the job leaves the completion (and its audit event) intact and consistent.
// The row lock serializes racing completions of one assessment: exactly one sees IN_PROGRESS.
const LOCK_ASSESSMENT = `SELECT owner, status FROM assessments WHERE id = $1 FOR UPDATE`;
const COMPLETE_ASSESSMENT = `UPDATE assessments SET status = 'COMPLETED', completed_at = now(), updated_at = now() WHERE id = $1`;
const AUDIT_COMPLETION = `INSERT INTO audit_events (actor, action, entity_type, entity_id, correlation_id, metadata)
VALUES ($1, 'assessment.completed', 'Assessment', $2, $3, '{}'::jsonb)`;
// The dedupe record outlives the job (retention deletes jobs, not this row), so a completion that
// was processed once is never processed again, whatever retention did meanwhile.
const RECORD_COMPLETION = `INSERT INTO assessment_completions (assessment_id, correlation_id, schema_version)
VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING assessment_id`;
const FIND_COMPLETION = `SELECT c.job_id, j.id IS NOT NULL AS job_exists FROM assessment_completions c
LEFT JOIN processing_jobs j ON j.id = c.job_id
WHERE c.assessment_id = $1 AND c.correlation_id = $2 AND c.schema_version = $3`;
const LINK_COMPLETION = `UPDATE assessment_completions SET job_id = $4
WHERE assessment_id = $1 AND correlation_id = $2 AND schema_version = $3`;

export class AssessmentService {
  constructor(
    private readonly deps: { prisma: PrismaClient; pool: pg.Pool; jobs: JobService; events: EventBus; logger: Logger },
  ) {}

  async create(owner: string, kind: string, answers: Record<string, unknown> = {}) {
    if (!findDefinition(kind)) throw new AssessmentInputError(`Unknown assessment kind "${kind}"`);
    checkAnswersSize(answers);
    return this.deps.prisma.assessment.create({ data: { owner, kind, answers: answers as Prisma.InputJsonValue } });
  }

  /** Loads an assessment; callers check ownership. */
  find(id: string) {
    return this.deps.prisma.assessment.findUnique({ where: { id } });
  }

  /** Replaces the answers of an assessment still in progress. */
  async saveAnswers(id: string, answers: Record<string, unknown>) {
    checkAnswersSize(answers);
    const updated = await this.deps.prisma.assessment.updateMany({
      where: { id, status: "IN_PROGRESS" },
      data: { answers: answers as Prisma.InputJsonValue },
    });
    if (updated.count === 0) {
      const existing = await this.find(id);
      if (!existing) throw new AssessmentNotFoundError("Assessment not found");
      throw new AssessmentConflictError("The assessment is completed; its answers can no longer change");
    }
    return (await this.find(id))!;
  }

  /**
   * Marks the assessment COMPLETED and creates its processing job, exactly once per
   * (assessment, correlation id, schema version) however many calls race. Without a correlation id
   * the assessment's own id is used, so plain repeated calls return the same job.
   */
  async complete(id: string, actor: string, correlationId?: string | null): Promise<CompletionResult> {
    const correlation = correlationId?.trim() || `assessment:${id}`;
    let job: Job | null = null;
    let created = false;
    let jobExpired = false;
    let completedNow = false;
    await inTransaction(this.deps.pool, async (client) => {
      const locked = await client.query<{ owner: string; status: string }>(LOCK_ASSESSMENT, [id]);
      const assessment = locked.rows[0];
      if (!assessment) throw new AssessmentNotFoundError("Assessment not found");
      completedNow = assessment.status === "IN_PROGRESS";
      if (completedNow) {
        await client.query(COMPLETE_ASSESSMENT, [id]);
        await client.query(AUDIT_COMPLETION, [actor, id, correlation]);
      }
      await client.query("SAVEPOINT create_job");
      try {
        const key = [id, correlation, SCHEMA_VERSION];
        const recorded = await client.query(RECORD_COMPLETION, key);
        if (recorded.rowCount === 0) {
          const existing = (await client.query<{ job_id: string | null; job_exists: boolean }>(FIND_COMPLETION, key)).rows[0]!;
          if (existing.job_exists) job = await this.deps.jobs.find(existing.job_id!, client);
          else jobExpired = true;
        }
        const result = jobExpired || job ? null : await this.deps.jobs.enqueue(
          {
            type: ASSESSMENT_JOB_TYPE,
            owner: assessment.owner,
            payload: { assessmentId: id },
            assessmentId: id,
            correlationId: correlation,
            schemaVersion: SCHEMA_VERSION,
          },
          actor,
          client,
          false,
        );
        if (result) {
          job = result.job;
          created = result.created;
          await client.query(LINK_COMPLETION, [...key, job.id]);
        }
        await client.query("RELEASE SAVEPOINT create_job");
      } catch (error) {
        await client.query("ROLLBACK TO SAVEPOINT create_job");
        this.deps.logger.error({ err: error, assessmentId: id, correlationId: correlation }, "creating the assessment's job failed");
      }
    });
    if (job && created) this.deps.events.publishJobChange(changeOf(job, null));
    return { assessmentId: id, alreadyCompleted: !completedNow, job, jobExpired, correlationId: correlation };
  }
}

function checkAnswersSize(answers: Record<string, unknown>): void {
  // Bytes, not UTF-16 code units: "€" is one character and three bytes of stored JSON.
  if (Buffer.byteLength(JSON.stringify(answers), "utf8") > MAX_ANSWERS_BYTES) {
    throw new AssessmentInputError(`Answers must be at most ${MAX_ANSWERS_BYTES} bytes of JSON`);
  }
}
