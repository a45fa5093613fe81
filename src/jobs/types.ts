import type { ProcessingJob } from "../generated/prisma/client.js";
import type { JobPriority, JobStatus } from "../generated/prisma/enums.js";

export { JobPriority, JobStatus } from "../generated/prisma/enums.js";

export const RUNNABLE_STATUSES: readonly JobStatus[] = ["QUEUED", "RETRYING"];
export const TERMINAL_STATUSES: readonly JobStatus[] = ["COMPLETED", "FAILED", "VALIDATION_FAILED", "CANCELLED"];

export const PRIORITY_RANK: Record<JobPriority, number> = { LOW: 0, NORMAL: 1, HIGH: 2 };

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

/** A job's row as row_to_json writes it (snake_case keys, ISO times), in Prisma's shape. */
export function processingJobFromDocument(row: Record<string, unknown>): ProcessingJob {
  return {
    id: row.id as string,
    type: row.type as string,
    owner: row.owner as string,
    assessmentId: row.assessment_id as string | null,
    correlationId: row.correlation_id as string,
    schemaVersion: row.schema_version as string,
    idempotencyKey: row.idempotency_key as string | null,
    status: row.status as JobStatus,
    stage: row.stage as string | null,
    progress: row.progress as number,
    bytesDone: bigIntOrNull(row.bytes_done),
    bytesTotal: bigIntOrNull(row.bytes_total),
    priority: row.priority as JobPriority,
    priorityRank: row.priority_rank as number,
    retryCount: row.retry_count as number,
    revision: row.revision as number,
    maxAttempts: row.max_attempts as number,
    runAt: new Date(row.run_at as string),
    lastRetryAt: dateOrNull(row.last_retry_at),
    createdAt: new Date(row.created_at as string),
    updatedAt: new Date(row.updated_at as string),
    startedAt: dateOrNull(row.started_at),
    completedAt: dateOrNull(row.completed_at),
    processingTimeMs: row.processing_time_ms as number | null,
    heartbeatAt: dateOrNull(row.heartbeat_at),
    lockedBy: row.locked_by as string | null,
    lockToken: row.lock_token as string | null,
    timeoutMs: row.timeout_ms as number | null,
    payload: row.payload as ProcessingJob["payload"],
    result: row.result as ProcessingJob["result"],
    metadata: row.metadata as ProcessingJob["metadata"],
    errorCode: row.error_code as string | null,
    errorMessage: row.error_message as string | null,
    errorDetails: row.error_details as ProcessingJob["errorDetails"],
    errorRecoverable: row.error_recoverable as boolean | null,
    cancelRequestedAt: dateOrNull(row.cancel_requested_at),
  };
}

function dateOrNull(value: unknown): Date | null {
  return value === null ? null : new Date(value as string);
}

function bigIntOrNull(value: unknown): bigint | null {
  return value === null ? null : BigInt(value as number);
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
