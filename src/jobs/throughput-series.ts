import type pg from "pg";
import type { Clock } from "./types.js";

export type ThroughputRange = "HOUR" | "DAY" | "WEEK";

/**
 * Each range's window and bucket: a dozen to a few dozen points, enough for a small chart. A series
 * reads every job finished in its window (a week of them for WEEK: about 0.2 s per 100,000 on a
 * 2-core machine), so the longer ranges are recomputed at most every `minRefreshMs`, however often
 * they are asked for: a minute is nothing on a chart of 6-hour buckets.
 */
export const THROUGHPUT_RANGES: Record<ThroughputRange, { windowMs: number; bucketMs: number; minRefreshMs: number }> = {
  HOUR: { windowMs: 3600_000, bucketMs: 5 * 60_000, minRefreshMs: 0 },
  DAY: { windowMs: 24 * 3600_000, bucketMs: 3600_000, minRefreshMs: 10_000 },
  WEEK: { windowMs: 7 * 24 * 3600_000, bucketMs: 6 * 3600_000, minRefreshMs: 60_000 },
};

export interface ThroughputBucket {
  start: Date;
  completed: number;
  /** FAILED and VALIDATION_FAILED: the jobs that count against the success rate. */
  failed: number;
}

export interface ThroughputSeries {
  range: ThroughputRange;
  bucketMs: number;
  /** Oldest first, every bucket of the window, empty ones included; the last one ends now. */
  buckets: ThroughputBucket[];
}

// Finished jobs by the bucket of their completed_at, read from the partial covering index on
// completed_at alone (status is INCLUDEd): the cost follows the jobs finished in the window, not
// the table's size. Buckets are aligned on now ($1), so the last one ends at the time of the call.
export const THROUGHPUT_SERIES_SQL = `
WITH bounds AS (SELECT COALESCE($1::timestamptz, now()) AS now)
SELECT floor(EXTRACT(EPOCH FROM (b.now - j.completed_at)) * 1000 / $3::double precision)::int AS buckets_ago,
  count(*) FILTER (WHERE j.status = 'COMPLETED')::int AS completed,
  count(*) FILTER (WHERE j.status IN ('FAILED', 'VALIDATION_FAILED'))::int AS failed
FROM bounds b JOIN processing_jobs j
  ON j.completed_at > b.now - make_interval(secs => $2::double precision / 1000) AND j.completed_at <= b.now
WHERE j.completed_at IS NOT NULL
GROUP BY 1`;

export async function throughputSeries(db: Pick<pg.Pool, "query">, range: ThroughputRange, clock?: Clock): Promise<ThroughputSeries> {
  const { windowMs, bucketMs } = THROUGHPUT_RANGES[range];
  // Completion times come from the database clock: without an injected clock, it says what "now" is.
  const injected = clock ? clock() : null;
  const { rows } = await db.query<{ buckets_ago: number; completed: number; failed: number }>(THROUGHPUT_SERIES_SQL, [injected, windowMs, bucketMs]);
  const now = injected ?? new Date();
  const count = windowMs / bucketMs;
  const byAge = new Map(rows.map((row) => [row.buckets_ago, row]));
  const buckets: ThroughputBucket[] = [];
  for (let ago = count - 1; ago >= 0; ago--) {
    const row = byAge.get(ago);
    buckets.push({ start: new Date(now.getTime() - (ago + 1) * bucketMs), completed: row?.completed ?? 0, failed: row?.failed ?? 0 });
  }
  return { range, bucketMs, buckets };
}
