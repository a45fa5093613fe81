import type { Queryable } from "./queue.js";

/**
 * $1 job ids. The same claim order and the same count as QUEUE_POSITION (src/jobs/sql.ts), for a
 * whole page of jobs in one statement: each waiting id counts the runnable jobs ahead of it along
 * the runnable index. Ids that are not waiting (or do not exist) come back with a null position.
 */
export const QUEUE_POSITIONS = `SELECT j.id, ahead.position
FROM processing_jobs j
LEFT JOIN LATERAL (
  SELECT count(*) + 1 AS position FROM processing_jobs o
  WHERE o.status IN ('QUEUED', 'RETRYING')
    AND (o.priority_rank > j.priority_rank
      OR (o.priority_rank = j.priority_rank AND (o.run_at, o.id) < (j.run_at, j.id)))
) ahead ON j.status IN ('QUEUED', 'RETRYING')
WHERE j.id = ANY($1::uuid[])`;

/** 1-based positions in claim order, by job id; null for a job that is not waiting or not found. */
export async function queuePositions(db: Queryable, ids: readonly string[]): Promise<Map<string, number | null>> {
  const positions = new Map<string, number | null>(ids.map((id) => [id, null]));
  if (ids.length === 0) return positions;
  const { rows } = await db.query<{ id: string; position: string | number | null }>(QUEUE_POSITIONS, [[...new Set(ids)]]);
  for (const row of rows) positions.set(row.id, row.position === null ? null : Number(row.position));
  return positions;
}
