import { randomUUID } from "node:crypto";
import { newJobId } from "./job-ids.js";
import type pg from "pg";
import { UUID, type JobChange } from "../events/messages.js";
import { changeOf } from "./lifecycle.js";
import * as sql from "./sql.js";
import type { ProcessingJob } from "../generated/prisma/client.js";
import { InvalidJobInputError } from "./enqueue-errors.js";
import { unstorableInJson } from "./storable-text.js";
import { jobFromRow, processingJobFromDocument, PRIORITY_RANK, type Clock, type Job, type JobPriority } from "./types.js";

export type Queryable = Pick<pg.Pool | pg.PoolClient, "query">;

export interface EnqueueInput {
  type: string;
  owner: string;
  payload?: unknown;
  priority?: JobPriority;
  runAt?: Date | null;
  idempotencyKey?: string | null;
  maxAttempts?: number;
  assessmentId?: string | null;
  correlationId?: string | null;
  schemaVersion?: string;
  timeoutMs?: number | null;
  metadata?: Record<string, unknown>;
}

export interface EnqueueResult {
  job: Job;
  /**
   * false when a job with the same (owner, idempotency key) or (assessment, correlation id, schema
   * version) existed.
   */
  created: boolean;
}

export interface EnqueueOptions {
  /** Who asked, for the audit trail. */
  actor: string;
  defaultMaxAttempts?: number;
  clock?: Clock;
  /**
   * Called for each job actually created, after the statement (or the caller's transaction)
   * commits; not for jobs handed off, whose `handoff.start` publishes their creation and claim.
   */
  publish?: (change: JobChange) => void;
  /** Called with the new jobs' ids just before they are inserted (the statement may create fewer). */
  beforeInsert?: (jobIds: string[]) => void;
  /**
   * An idle pool in this process (WorkerPool.offerSlots): up to `slots` of the jobs that are due,
   * highest priority first, are created already claimed by `workerId`, and passed to `start` as
   * soon as the statement returns (before anything else can fail: they are committed as running
   * there), which publishes both their changes (created, then claimed). Only where the statement
   * commits on its own: a job claimed inside a caller's transaction would start before it is
   * durable, or run although the transaction rolls back.
   */
  handoff?: { workerId: string; slots: number; start(jobs: Job[]): void } | null;
  /**
   * Called right after a statement that commits on its own when it left jobs waiting (QUEUED), so
   * that this process's pool knows before the statement's NOTIFY reaches it (WorkerPool.jobsEnqueued).
   */
  waiting?: () => void;
}

/**
 * Inserts jobs in one statement, exactly once per unique key: conflicting rows are not inserted and
 * the existing job is returned instead, so any number of concurrent callers with one key all get
 * the same job. Pass a transaction's client to enqueue atomically with other writes.
 */
export async function enqueueJobs(db: Queryable, inputs: EnqueueInput[], options: EnqueueOptions): Promise<EnqueueResult[]> {
  if (inputs.length === 0) return [];
  const rows = inputs.map((input) => normalize(input, options.defaultMaxAttempts ?? 3));
  if (options.handoff) markForHandoff(rows, options.handoff.slots, (options.clock?.() ?? new Date()).getTime());
  options.beforeInsert?.(rows.map((row) => row.id));
  return insertRows(db, rows, options, 3);
}

/**
 * sql.ENQUEUE_MANY for `document` (a JSON array of insertFields; "[]" writes nothing). Named, so
 * each connection parses this large statement once (warm-connections.ts does it at start-up).
 */
export function enqueueStatement(now: Date | null, document: string, actor: string, handoffWorkerId: string | null): pg.QueryConfig {
  return { name: "conveyor-enqueue", text: sql.ENQUEUE_MANY, values: [now, document, actor, handoffWorkerId] };
}

/**
 * PostgreSQL refuses a jsonb document over 256 MB, and ENQUEUE_MANY reads a batch as one: refused
 * here with a clear error, below that limit (a document's binary form can be larger than its text).
 */
const MAX_BATCH_JSON_BYTES = 200 * 1024 * 1024;

async function insertRows(db: Queryable, rows: NormalizedInput[], options: EnqueueOptions, retriesLeft: number): Promise<EnqueueResult[]> {
  const document = JSON.stringify(rows.map(insertFields));
  if (unstorableInJson(document) !== null) throw unstorableInputError(rows);
  // A UTF-8 byte count only when the text could be that long (at most 3 bytes per UTF-16 unit).
  if (document.length * 3 > MAX_BATCH_JSON_BYTES && Buffer.byteLength(document) > MAX_BATCH_JSON_BYTES) {
    throw new InvalidJobInputError([`the jobs of one call must total at most ${MAX_BATCH_JSON_BYTES / 1024 / 1024} MB of JSON: enqueue them in smaller batches`]);
  }
  const inserted = await db.query<{ created_at: number; created: CreatedJob[] | null }>(
    enqueueStatement(options.clock ? options.clock() : null, document, options.actor, options.handoff?.workerId ?? null),
  );
  const created = new Map<string, CreatedJob>((inserted.rows[0]?.created ?? []).map((returned) => [returned[0], returned]));

  // Results in the order of the input, and the creations published in it (handed-off jobs' after, with their claims).
  const results: EnqueueResult[] = [];
  const missing: { index: number; row: NormalizedInput }[] = [];
  const claimed: Job[] = [];
  rows.forEach((row, index) => {
    const returned = created.get(row.id);
    if (!returned) {
      missing.push({ index, row });
      return;
    }
    const job = createdJob(row, inserted.rows[0]!.created_at, returned, options.handoff?.workerId ?? null);
    results[index] = { job, created: true };
    // A job handed off announces its creation with its start (handoff.start).
    if (job.lockToken !== null) claimed.push(job);
    else options.publish?.(changeOf(job, null));
  });
  if (claimed.length > 0) options.handoff!.start(claimed);
  if (claimed.length < created.size) options.waiting?.();
  if (missing.length > 0) {
    const existing = await db.query(sql.FIND_EXISTING, [
      missing.map(({ row }) => row.idempotencyKey),
      missing.map(({ row }) => row.assessmentId),
      missing.map(({ row }) => row.correlationId),
      missing.map(({ row }) => row.schemaVersion),
      missing.map(({ row }) => row.owner),
    ]);
    const found = existing.rows.map(jobFromRow);
    for (const { index, row } of missing) {
      const job = found.find((candidate) => sameKey(candidate, row));
      // Only possible if the conflicting job was deleted in between (retention): try once more,
      // with the row as it was checked and normalized (the caller's input may have changed since).
      if (!job) {
        // Never in a loop: a key this cannot find again is a bug, not a race.
        if (retriesLeft === 0) throw new Error("enqueue conflicted with a job it cannot find by its key");
        const [again] = await insertRows(db, [{ ...row, handoff: false }], options, retriesLeft - 1);
        results[index] = again!;
      } else {
        results[index] = { job, created: false };
      }
    }
  }
  return results;
}

export async function enqueueJob(db: Queryable, input: EnqueueInput, options: EnqueueOptions): Promise<EnqueueResult> {
  const [result] = await enqueueJobs(db, [input], options);
  return result!;
}

export async function findJob(db: Queryable, id: string): Promise<Job | null> {
  const { rows } = await db.query(sql.SELECT_JOB, [id]);
  return rows[0] ? jobFromRow(rows[0]) : null;
}

/** The jobs of these ids that exist, in no particular order; ids that are not UUIDs find nothing. */
export async function findJobs(db: Queryable, ids: readonly string[]): Promise<Job[]> {
  const valid = [...new Set(ids)].filter((id) => UUID.test(id));
  const found: Job[] = [];
  for (let start = 0; start < valid.length; start += FIND_JOBS_CHUNK) {
    const { rows } = await db.query(sql.SELECT_JOBS, [valid.slice(start, start + FIND_JOBS_CHUNK)]);
    found.push(...rows.map(jobFromRow));
  }
  return found;
}

/** Ids per statement of findJobs: a whole page of rows at a time, however many jobs are asked for. */
const FIND_JOBS_CHUNK = 1000;

/**
 * Jobs' rows in the shape Prisma gives them (the API's `Job`), keyed by id, read with one prepared
 * statement (sql.SELECT_JOB_DOCUMENTS); test/jobs/job-record.test.ts holds them equal to Prisma's.
 */
export async function findJobRecords(db: Queryable, ids: readonly string[]): Promise<Map<string, ProcessingJob>> {
  const { rows } = await db.query<{ id: string; job: Record<string, unknown> }>({ name: "conveyor-select-job-documents", text: sql.SELECT_JOB_DOCUMENTS, values: [ids] });
  return new Map(rows.map((row) => [row.id, processingJobFromDocument(row.job)]));
}

/** 1-based place among the jobs claims take first (sql.QUEUE_POSITIONS); null once the job is no longer waiting. */
export async function queuePosition(db: Queryable, id: string, clock?: Clock): Promise<number | null> {
  return (await queuePositions(db, [id], clock)).get(id) ?? null;
}

/** 1-based places among the jobs claims take first (sql.QUEUE_POSITIONS), by job id; null for a job that is not waiting or not found. */
export async function queuePositions(db: Queryable, ids: readonly string[], clock?: Clock): Promise<Map<string, number | null>> {
  const positions = new Map<string, number | null>(ids.map((id) => [id, null]));
  if (ids.length === 0) return positions;
  const { rows } = await db.query<{ id: string; position: string | number | null }>(sql.QUEUE_POSITIONS, [[...new Set(ids)], clock?.() ?? null]);
  for (const row of rows) positions.set(row.id, row.position === null ? null : Number(row.position));
  return positions;
}

/**
 * The jobs whose JSON holds what jsonb refuses, named: a payload or metadata (or text, a NUL) the
 * statement would fail on, for all the jobs of the call.
 */
function unstorableInputError(rows: NormalizedInput[]): InvalidJobInputError {
  const problems = rows.flatMap((row, index) => {
    const unstorable = unstorableInJson(JSON.stringify(insertFields(row)));
    const which = rows.length > 1 ? `job ${index + 1} of ${rows.length}: its` : "the job's";
    return unstorable === null ? [] : [`${which} payload, metadata or text contains ${unstorable}, which PostgreSQL cannot store`];
  });
  return new InvalidJobInputError(problems);
}

/**
 * Text has each lone UTF-16 surrogate replaced by U+FFFD (toWellFormed), as PostgreSQL stores text
 * sent as UTF-8: in the JSON ENQUEUE_MANY reads, a lone surrogate would fail the whole statement.
 */
function normalize(input: EnqueueInput, defaultMaxAttempts: number) {
  return {
    // Time-ordered: a job's entries in the primary key and in every index keyed by job id
    // (job_events, audit_events) land beside those of the jobs created just before it, which are
    // also the ones claimed and finished beside it. Random UUIDs scattered them over the whole of
    // each index: with a million jobs those indexes outgrew shared_buffers, and each claim and
    // completion read and dirtied pages all over them (1M backlog 4,300–4,700 jobs/s at
    // concurrency 1 against 5,600–6,600 at 10k; 6,300 with these ids).
    id: newJobId(),
    type: input.type.toWellFormed(),
    owner: input.owner.toWellFormed(),
    payload: input.payload,
    priority: input.priority ?? "NORMAL",
    runAt: input.runAt ?? null,
    idempotencyKey: input.idempotencyKey?.toWellFormed() ?? null,
    maxAttempts: input.maxAttempts ?? defaultMaxAttempts,
    assessmentId: input.assessmentId ?? null,
    correlationId: input.correlationId?.toWellFormed() ?? randomUUID(),
    schemaVersion: input.schemaVersion?.toWellFormed() ?? "v1",
    timeoutMs: input.timeoutMs ?? null,
    metadata: input.metadata ?? {},
    handoff: false,
  };
}

/**
 * The first `slots` jobs due by the caller's clock, in claim order (highest priority first, then
 * input order), may be handed off; the statement checks again by the database's clock. Keyed jobs
 * among them may turn out to exist already: their slot goes unused.
 */
function markForHandoff(rows: NormalizedInput[], slots: number, nowMs: number): void {
  const due = rows.filter((row) => isDue(row, nowMs));
  // Array.prototype.sort is stable: input order within a priority.
  due.sort((a, b) => PRIORITY_RANK[b.priority] - PRIORITY_RANK[a.priority]);
  for (const row of due.slice(0, slots)) row.handoff = true;
}

/** Whether a job asked to run at `runAt` (none: at once) is due by the caller's clock; the statement checks again by the database's. */
export function isDue(input: Pick<EnqueueInput, "runAt">, nowMs: number): boolean {
  return !input.runAt || input.runAt.getTime() <= nowMs;
}

/** What ENQUEUE_MANY returns of each job it created: its id, what it stored, its claim if handed off. */
type CreatedJob = [id: string, payload: unknown, metadata: Record<string, unknown>, lockToken: string | null];

type NormalizedInput = ReturnType<typeof normalize>;

/** One job of ENQUEUE_MANY's JSON input: its fields in sql.ENQUEUE_FIELDS's order. */
function insertFields(row: NormalizedInput): unknown[] {
  const fields: Record<sql.EnqueueField, unknown> = {
    id: row.id,
    type: row.type,
    owner: row.owner,
    assessment_id: row.assessmentId,
    correlation_id: row.correlationId,
    schema_version: row.schemaVersion,
    idempotency_key: row.idempotencyKey,
    priority: row.priority,
    priority_rank: PRIORITY_RANK[row.priority],
    max_attempts: row.maxAttempts,
    run_at: row.runAt,
    timeout_ms: row.timeoutMs,
    payload: row.payload ?? {},
    metadata: row.metadata,
    handoff: row.handoff,
  };
  return sql.ENQUEUE_FIELD_ORDER.map((name) => fields[name]);
}

/**
 * A job just created, as findJob would read it: the input, the database's decisions, the columns'
 * defaults; claimed by `workerId` when the statement handed it off (it returned a claim token).
 */
function createdJob(row: NormalizedInput, createdAtMs: number, [, payload, metadata, lockToken]: CreatedJob, workerId: string | null): Job {
  const createdAt = new Date(createdAtMs);
  // Stored as GREATEST(runAt, creation) rounded to the millisecond: a runAt is whole milliseconds
  // already, and the creation time came back rounded.
  const runAtMs = Math.max(row.runAt?.getTime() ?? createdAtMs, createdAtMs);
  const handedOff = lockToken !== null && lockToken !== undefined;
  return {
    id: row.id,
    type: row.type,
    owner: row.owner,
    assessmentId: row.assessmentId,
    correlationId: row.correlationId,
    schemaVersion: row.schemaVersion,
    idempotencyKey: row.idempotencyKey,
    status: handedOff ? "PROCESSING" : "QUEUED",
    stage: null,
    progress: 0,
    bytesDone: null,
    bytesTotal: null,
    priority: row.priority,
    retryCount: 0,
    revision: handedOff ? 2 : 1,
    maxAttempts: row.maxAttempts,
    runAt: new Date(runAtMs),
    lastRetryAt: null,
    createdAt,
    updatedAt: createdAt,
    startedAt: handedOff ? createdAt : null,
    completedAt: null,
    processingTimeMs: null,
    heartbeatAt: handedOff ? createdAt : null,
    lockedBy: handedOff ? workerId : null,
    lockToken: handedOff ? lockToken : null,
    timeoutMs: row.timeoutMs,
    payload,
    result: null,
    metadata,
    errorCode: null,
    errorMessage: null,
    errorDetails: null,
    errorRecoverable: null,
    cancelRequestedAt: null,
  };
}

function sameKey(job: Job, row: NormalizedInput): boolean {
  if (row.idempotencyKey !== null && job.owner === row.owner && job.idempotencyKey === row.idempotencyKey) return true;
  return (
    row.assessmentId !== null &&
    job.assessmentId === row.assessmentId &&
    job.correlationId === row.correlationId &&
    job.schemaVersion === row.schemaVersion
  );
}
