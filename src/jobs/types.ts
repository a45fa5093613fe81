import type { ProcessingJob } from "../generated/prisma/client.js";
import type { JobPriority, JobStatus } from "../generated/prisma/enums.js";

export { JobPriority, JobStatus } from "../generated/prisma/enums.js";

export const RUNNABLE_STATUSES: readonly JobStatus[] = ["QUEUED", "RETRYING"];
export const TERMINAL_STATUSES: readonly JobStatus[] = ["COMPLETED", "FAILED", "VALIDATION_FAILED", "CANCELLED"];

/** A final state: nothing changes a job in it but a retry by hand. */
export function isTerminalStatus(status: string): boolean {
  return (TERMINAL_STATUSES as readonly string[]).includes(status);
}

export const PRIORITY_RANK: Record<JobPriority, number> = { LOW: 0, NORMAL: 1, HIGH: 2 };

/** The order the claim takes runnable jobs in (the runnable index): higher priority, then earlier run_at, then id. */
export function inClaimOrder(a: Job, b: Job): number {
  return PRIORITY_RANK[b.priority] - PRIORITY_RANK[a.priority] || a.runAt.getTime() - b.runAt.getTime() || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}

/** A job as the engine reads it (plain SQL rows, camel-cased). */
export interface Job {
  id: string;
  type: string;
  owner: string;
  assessmentId: string | null;
  correlationId: string;
  schemaVersion: string;
  idempotencyKey: string | null;
  status: JobStatus;
  stage: string | null;
  progress: number;
  bytesDone: number | null;
  bytesTotal: number | null;
  priority: JobPriority;
  retryCount: number;
  /** One more with each state change (not with progress): orders changes that arrive out of order. */
  revision: number;
  maxAttempts: number;
  runAt: Date;
  lastRetryAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
  startedAt: Date | null;
  completedAt: Date | null;
  processingTimeMs: number | null;
  heartbeatAt: Date | null;
  lockedBy: string | null;
  /** The current claim's token (PROCESSING only): what every worker-side write must present. */
  lockToken: string | null;
  timeoutMs: number | null;
  payload: unknown;
  result: unknown;
  metadata: Record<string, unknown>;
  errorCode: string | null;
  errorMessage: string | null;
  errorDetails: unknown;
  errorRecoverable: boolean | null;
  cancelRequestedAt: Date | null;
}

/** A source of "now" for the engine's SQL; absent means the database clock. Tests inject one. */
export type Clock = () => Date;

/**
 * A job's row as row_to_json writes it (snake_case keys, times in ISO form), in Prisma's shape:
 * jobFromRow's fields once the times are Dates, plus priority_rank, and the byte counts as bigints.
 */
export function processingJobFromDocument(document: Record<string, unknown>): ProcessingJob {
  for (const column of TIME_COLUMNS) if (document[column] !== null) document[column] = new Date(document[column] as string);
  const job = jobFromRow(document);
  const extra = { priorityRank: document.priority_rank as number, bytesDone: bigIntOrNull(job.bytesDone), bytesTotal: bigIntOrNull(job.bytesTotal) };
  return Object.assign(job, extra) as unknown as ProcessingJob;
}

const TIME_COLUMNS = ["run_at", "last_retry_at", "created_at", "updated_at", "started_at", "completed_at", "heartbeat_at", "cancel_requested_at"];

function bigIntOrNull(value: number | null): bigint | null {
  return value === null ? null : BigInt(value);
}

export function jobFromRow(row: Record<string, unknown>): Job {
  return {
    id: row.id as string,
    type: row.type as string,
    owner: row.owner as string,
    assessmentId: (row.assessment_id as string | null) ?? null,
    correlationId: row.correlation_id as string,
    schemaVersion: row.schema_version as string,
    idempotencyKey: (row.idempotency_key as string | null) ?? null,
    status: row.status as JobStatus,
    stage: (row.stage as string | null) ?? null,
    progress: row.progress as number,
    bytesDone: (row.bytes_done as number | null) ?? null,
    bytesTotal: (row.bytes_total as number | null) ?? null,
    priority: row.priority as JobPriority,
    retryCount: row.retry_count as number,
    revision: row.revision as number,
    maxAttempts: row.max_attempts as number,
    runAt: row.run_at as Date,
    lastRetryAt: (row.last_retry_at as Date | null) ?? null,
    createdAt: row.created_at as Date,
    updatedAt: row.updated_at as Date,
    startedAt: (row.started_at as Date | null) ?? null,
    completedAt: (row.completed_at as Date | null) ?? null,
    processingTimeMs: (row.processing_time_ms as number | null) ?? null,
    heartbeatAt: (row.heartbeat_at as Date | null) ?? null,
    lockedBy: (row.locked_by as string | null) ?? null,
    lockToken: (row.lock_token as string | null) ?? null,
    timeoutMs: (row.timeout_ms as number | null) ?? null,
    payload: row.payload,
    result: row.result ?? null,
    metadata: (row.metadata as Record<string, unknown>) ?? {},
    errorCode: (row.error_code as string | null) ?? null,
    errorMessage: (row.error_message as string | null) ?? null,
    errorDetails: row.error_details ?? null,
    errorRecoverable: (row.error_recoverable as boolean | null) ?? null,
    cancelRequestedAt: (row.cancel_requested_at as Date | null) ?? null,
  };
}
