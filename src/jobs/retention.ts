import type pg from "pg";
import * as sql from "./sql.js";
import type { Clock } from "./types.js";

/**
 * Deletes finished jobs (COMPLETED, FAILED, VALIDATION_FAILED, CANCELLED) whose completion is older
 * than `maxAgeMs`, with their events, in batches of `batchSize` so that no statement holds many
 * locks or runs long. A deleted job's idempotency key is free again: a later enqueue with it
 * creates a new job. An assessment completion's dedupe record is kept (its job link becomes null),
 * so completeAssessment never runs a processed completion twice. A validation run goes with its job,
 * and its uploaded file with it. Audit events have their own retention (deleteOldAuditEvents).
 */
export async function deleteFinishedJobs(
  db: Pick<pg.Pool, "query">,
  options: { maxAgeMs: number; batchSize: number; clock?: Clock; maxBatches?: number; signal?: AbortSignal },
): Promise<number> {
  return inBatches(options, async () => {
    const result = await db.query<{ deleted: number }>(sql.DELETE_FINISHED_BATCH, [options.clock ? options.clock() : null, options.maxAgeMs, options.batchSize]);
    return result.rows[0]!.deleted;
  });
}

/** An upload still being stored is younger than this; an older one without a run was abandoned. */
export const ORPHAN_FILE_AGE_MS = 24 * 3600_000;

/** Deletes uploaded files that never became a validation run, in batches like deleteFinishedJobs. */
export async function deleteOrphanFiles(
  db: Pick<pg.Pool, "query">,
  options: { maxAgeMs?: number; batchSize: number; clock?: Clock; signal?: AbortSignal },
): Promise<number> {
  return inBatches(options, async () => {
    const result = await db.query(sql.DELETE_ORPHAN_FILES_BATCH, [options.clock ? options.clock() : null, options.maxAgeMs ?? ORPHAN_FILE_AGE_MS, options.batchSize]);
    return result.rowCount ?? 0;
  });
}

/** Deletes audit events older than `maxAgeMs`, in batches, like deleteFinishedJobs. */
export async function deleteOldAuditEvents(
  db: Pick<pg.Pool, "query">,
  options: { maxAgeMs: number; batchSize: number; clock?: Clock; signal?: AbortSignal },
): Promise<number> {
  return inBatches(options, async () => {
    const result = await db.query(sql.DELETE_AUDIT_BATCH, [options.clock ? options.clock() : null, options.maxAgeMs, options.batchSize]);
    return result.rowCount ?? 0;
  });
}

/**
 * Runs `deleteBatch` until a batch deletes fewer than `batchSize` rows, after `maxBatches`, or once
 * `signal` aborts: checked between batches, so that a shutdown does not wait for a backlog of
 * millions (the first run after retention is turned on, or after a long outage) to be deleted.
 * Returns how many rows were deleted.
 */
async function inBatches(options: { batchSize: number; maxBatches?: number; signal?: AbortSignal }, deleteBatch: () => Promise<number>): Promise<number> {
  let deleted = 0;
  for (let batch = 0; batch < (options.maxBatches ?? Number.POSITIVE_INFINITY) && !options.signal?.aborted; batch++) {
    const count = await deleteBatch();
    deleted += count;
    if (count < options.batchSize) break;
  }
  return deleted;
}
