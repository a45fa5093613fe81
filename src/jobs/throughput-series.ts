import type pg from "pg";
import type { Clock } from "./types.js";

export type ThroughputRange = "HOUR" | "DAY" | "WEEK";

/**
 * Each range's window and bucket: a dozen to a few dozen points, enough for a small chart. The
 * longer ranges are recomputed at most every `minRefreshMs`, however often they are asked for: a
 * minute is nothing on a chart of 6-hour buckets.
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

// Finished jobs by bucket, from the outcome counters queue health reads (job_outcome_counts, one
// row per minute, or per hour past two hours; src/jobs/health.ts): the cost follows the window's
// minutes and hours, not the jobs finished in it. A counter row falls in the bucket of its start,
// so a count can land one bucket early by up to its own length (a minute; an hour in the DAY and
// WEEK series past two hours). Buckets are aligned on now ($1), so the last one ends at the call.
export const THROUGHPUT_SERIES_SQL = `
WITH bounds AS (SELECT COALESCE($1::timestamptz, now()) AS now)
SELECT floor(EXTRACT(EPOCH FROM (b.now - c.minute)) * 1000 / $3::double precision)::int AS buckets_ago,
  coalesce(sum(c.count) FILTER (WHERE c.status = 'COMPLETED'), 0)::int AS completed,
  coalesce(sum(c.count) FILTER (WHERE c.status IN ('FAILED', 'VALIDATION_FAILED')), 0)::int AS failed
FROM bounds b JOIN job_outcome_counts c
  ON c.minute > b.now - make_interval(secs => $2::double precision / 1000) AND c.minute <= b.now
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
