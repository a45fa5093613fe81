import { randomUUID } from "node:crypto";
import type pg from "pg";
import type { JobChange } from "../events/messages.js";
import { toChange } from "./lifecycle.js";
import * as sql from "./sql.js";
import { jobFromRow, PRIORITY_RANK, type Clock, type Job, type JobPriority } from "./types.js";

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
  /** Called for each job actually created, after the statement (or the caller's transaction) commits. */
  publish?: (change: JobChange) => void;
  /** Called with the new jobs' ids just before they are inserted (the statement may create fewer). */
  beforeInsert?: (jobIds: string[]) => void;
}

/**
 * Inserts jobs in one statement, exactly once per unique key: conflicting rows are not inserted and
 * the existing job is returned instead, so any number of concurrent callers with one key all get
 * the same job. Pass a transaction's client to enqueue atomically with other writes.
 */
export async function enqueueJobs(db: Queryable, inputs: EnqueueInput[], options: EnqueueOptions): Promise<EnqueueResult[]> {
  if (inputs.length === 0) return [];
  const rows = inputs.map((input) => normalize(input, options.defaultMaxAttempts ?? 3));
  options.beforeInsert?.(rows.map((row) => row.id));
  // Named, so each connection parses and plans this large statement once.
  const inserted = await db.query({ name: "conveyor-enqueue", text: sql.ENQUEUE_MANY, values: [
    options.clock ? options.clock() : null,
    rows.map((row) => row.id),
    rows.map((row) => row.type),
    rows.map((row) => row.owner),
    rows.map((row) => row.assessmentId),
    rows.map((row) => row.correlationId),
    rows.map((row) => row.schemaVersion),
    rows.map((row) => row.idempotencyKey),
    rows.map((row) => row.priority),
    rows.map((row) => PRIORITY_RANK[row.priority]),
    rows.map((row) => row.maxAttempts),
    rows.map((row) => row.runAt),
    rows.map((row) => row.timeoutMs),
    rows.map((row) => JSON.stringify(row.payload ?? {})),
    rows.map((row) => JSON.stringify(row.metadata)),
    options.actor,
  ] });
  for (const row of inserted.rows) options.publish?.(toChange(row));
  const created = new Map(inserted.rows.map((row) => [row.id as string, jobFromRow(row)]));

  const results: EnqueueResult[] = [];
  const missing: { index: number; row: ReturnType<typeof normalize> }[] = [];
  rows.forEach((row, index) => {
    const job = created.get(row.id);
    if (job) results[index] = { job, created: true };
    else missing.push({ index, row });
  });
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
      // Only possible if the conflicting job was deleted in between (retention): try once more.
      if (!job) {
        const [again] = await enqueueJobs(db, [inputs[index]!], options);
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

/** 1-based position among runnable jobs in claim order; null once the job is no longer waiting. */
export async function queuePosition(db: Queryable, id: string): Promise<number | null> {
  return (await queuePositions(db, [id])).get(id) ?? null;
}

/** 1-based positions in claim order, by job id; null for a job that is not waiting or not found. */
export async function queuePositions(db: Queryable, ids: readonly string[]): Promise<Map<string, number | null>> {
  const positions = new Map<string, number | null>(ids.map((id) => [id, null]));
  if (ids.length === 0) return positions;
  const { rows } = await db.query<{ id: string; position: string | number | null }>(sql.QUEUE_POSITIONS, [[...new Set(ids)]]);
  for (const row of rows) positions.set(row.id, row.position === null ? null : Number(row.position));
  return positions;
}

function normalize(input: EnqueueInput, defaultMaxAttempts: number) {
  return {
    id: randomUUID(),
    type: input.type,
    owner: input.owner,
    payload: input.payload,
    priority: input.priority ?? "NORMAL",
    runAt: input.runAt ?? null,
    idempotencyKey: input.idempotencyKey ?? null,
    maxAttempts: input.maxAttempts ?? defaultMaxAttempts,
    assessmentId: input.assessmentId ?? null,
    correlationId: input.correlationId ?? randomUUID(),
    schemaVersion: input.schemaVersion ?? "v1",
    timeoutMs: input.timeoutMs ?? null,
    metadata: input.metadata ?? {},
  };
}

function sameKey(job: Job, row: ReturnType<typeof normalize>): boolean {
  if (row.idempotencyKey !== null && job.owner === row.owner && job.idempotencyKey === row.idempotencyKey) return true;
  return (
    row.assessmentId !== null &&
    job.assessmentId === row.assessmentId &&
    job.correlationId === row.correlationId &&
    job.schemaVersion === row.schemaVersion
  );
}
