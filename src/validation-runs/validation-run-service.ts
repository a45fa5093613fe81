import type pg from "pg";
import type { PrismaClient } from "../generated/prisma/client.js";
import { inTransaction } from "../db/transaction.js";
import type { EventBus } from "../events/event-bus.js";
import { changeOf } from "../jobs/lifecycle.js";
import type { JobService } from "../jobs/job-service.js";
import type { Job } from "../jobs/types.js";
import type { Logger } from "../logger.js";
import type { FileStore, StoredFile } from "./file-store.js";
import type { RuleSet } from "./rule-set-schema.js";

export const VALIDATION_RUN_JOB_TYPE = "validation-run";

export class ValidationRunInputError extends Error {
  override name = "ValidationRunInputError";
}

export interface CreatedRun {
  runId: string;
  job: Job | null;
  /** false when this (owner, correlation id) already had a run: that run comes back, the upload is dropped. */
  created: boolean;
}

// Run and job in one transaction: the run's unique (owner, correlation id) index makes racing
// callers wait for each other, and exactly one inserts; the others read its run.
const INSERT_RUN = `INSERT INTO validation_runs (id, owner, rule_set, correlation_id, file_id, file_bytes)
VALUES (gen_random_uuid(), $1, $2, $3, $4, $5)
ON CONFLICT (owner, correlation_id) WHERE correlation_id IS NOT NULL DO NOTHING
RETURNING id`;
const FIND_BY_CORRELATION = `SELECT id, job_id FROM validation_runs WHERE owner = $1 AND correlation_id = $2`;
const LINK_JOB = `UPDATE validation_runs SET job_id = $2 WHERE id = $1`;
const RUN_FOR_JOB = `SELECT id, owner, rule_set, file_id FROM validation_runs WHERE id = $1`;

export interface RunSnapshot {
  id: string;
  owner: string;
  ruleSet: string;
  fileId: string;
}

const MAX_CORRELATION_ID = 200;
const MAX_RULE_SET_NAME = 100;

export class ValidationRunService {
  constructor(
    private readonly deps: {
      prisma: PrismaClient;
      pool: pg.Pool;
      jobs: JobService;
      events: EventBus;
      logger: Logger;
      files: FileStore;
      ruleSets: ReadonlyMap<string, RuleSet>;
    },
  ) {}

  get files(): FileStore {
    return this.deps.files;
  }

  ruleSets(): RuleSet[] {
    return [...this.deps.ruleSets.values()];
  }

  ruleSet(id: string): RuleSet | undefined {
    return this.deps.ruleSets.get(id);
  }

  /**
   * Creates the run and its job for a stored upload, exactly once per (owner, correlation id). A
   * rule set nobody defines is accepted here and ends the job VALIDATION_FAILED (a rule set can also
   * disappear between upload and run); only a malformed name is refused.
   */
  async create(owner: string, input: { ruleSet: string; correlationId?: string | null; file: StoredFile }): Promise<CreatedRun> {
    const correlationId = input.correlationId ?? null;
    if (correlationId !== null && (correlationId.trim() === "" || correlationId.length > MAX_CORRELATION_ID)) {
      throw new ValidationRunInputError(`correlationId must be 1 to ${MAX_CORRELATION_ID} characters`);
    }
    if (input.ruleSet.trim() === "" || input.ruleSet.length > MAX_RULE_SET_NAME) {
      throw new ValidationRunInputError(`ruleSet must be 1 to ${MAX_RULE_SET_NAME} characters`);
    }
    const result = await inTransaction(this.deps.pool, async (client): Promise<CreatedRun> => {
      const inserted = await client.query<{ id: string }>(INSERT_RUN, [owner, input.ruleSet, correlationId, input.file.id, input.file.bytes]);
      if (inserted.rows[0]) {
        const runId = inserted.rows[0].id;
        const { job } = await this.deps.jobs.enqueue(
          { type: VALIDATION_RUN_JOB_TYPE, owner, payload: { runId }, correlationId: correlationId ?? `validation-run:${runId}` },
          owner,
          client,
          false,
        );
        await client.query(LINK_JOB, [runId, job.id]);
        return { runId, job, created: true };
      }
      const existing = (await client.query<{ id: string; job_id: string | null }>(FIND_BY_CORRELATION, [owner, correlationId])).rows[0]!;
      return { runId: existing.id, job: existing.job_id ? await this.deps.jobs.find(existing.job_id, client) : null, created: false };
    });
    if (result.created && result.job) this.deps.events.publishJobChange(changeOf(result.job, null));
    return result;
  }

  /** Loads a run; callers check ownership. */
  find(id: string) {
    return this.deps.prisma.validationRun.findUnique({ where: { id } });
  }

  /** What the handler needs of a run. */
  async snapshot(id: string): Promise<RunSnapshot | null> {
    const row = (await this.deps.pool.query<{ id: string; owner: string; rule_set: string; file_id: string }>(RUN_FOR_JOB, [id])).rows[0];
    return row ? { id: row.id, owner: row.owner, ruleSet: row.rule_set, fileId: row.file_id } : null;
  }
}
