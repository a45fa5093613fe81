import type pg from "pg";
import { PRIORITY_RANK_ROWS } from "./sql.js";
import type { Clock } from "./types.js";

export type HealthStatus = "HEALTHY" | "DEGRADED" | "UNHEALTHY";

export interface HealthThresholds {
  degradedSuccessRate: number;
  unhealthySuccessRate: number;
  degradedStalled: number;
  unhealthyStalled: number;
  degradedQueued: number;
  degradedOldestQueuedMs: number;
  stalledThresholdMs: number;
  /** Window for the success rate, failures by category and the averages. */
  windowMs: number;
}

export interface QueueStats {
  windowMs: number;
  counts: { queued: number; processing: number; retrying: number; completed: number; failed: number; validationFailed: number; cancelled: number };
  byType: { type: string; status: string; count: number }[];
  byPriority: { priority: string; status: string; count: number }[];
  failuresByCategory: { category: string; count: number }[];
  /** Completed ÷ (completed + failed + validation failed) in the window; null with nothing finished. */
  successRate: number | null;
  averageProcessingMs: number | null;
  averageQueueMs: number | null;
  throughput: { lastHour: number; lastDay: number; lastWeek: number };
  stalled: number;
  oldestQueuedAgeMs: number | null;
}

export interface QueueHealth extends QueueStats {
  status: HealthStatus;
  reasons: string[];
  checkedAt: Date;
}

// Active jobs come from the partial indexes; finished ones from job_outcome_counts, one row per
// minute, type, priority, status and category, kept up by triggers on processing_jobs (migration
// 20261126090000_job_outcome_counts). The cost follows the windows (a week is 10,080 minutes
// times the groups seen), not the jobs finished in them: a week of 1M jobs used to take 0.7-1.2 s
// of index reads per computation. Windows are whole minutes: a minute counts when any of it falls
// inside the window, so a window reaches back up to a minute further than its length. Retention
// folds minutes older than two hours into hours (sql.ROLL_UP_OUTCOME_COUNTS): the last hour is
// exact to the minute, a day or a week to the hour.
export const STATS_SQL = `
WITH bounds AS (
  SELECT now, now - make_interval(secs => $2::double precision / 1000) - interval '1 minute' AS window_start,
    now - interval '61 minutes' AS hour_start, now - interval '1 day 1 minute' AS day_start, now - interval '7 days 1 minute' AS week_start
  FROM (SELECT COALESCE($1::timestamptz, now()) AS now) clock
),
finished AS (
  SELECT c.status, c.type, c.priority, NULLIF(c.error_code, '') AS error_code,
    coalesce(sum(c.count) FILTER (WHERE c.minute > b.window_start), 0)::int AS count,
    sum(c.processing_ms_sum) FILTER (WHERE c.minute > b.window_start) AS processing_sum,
    sum(c.processing_count) FILTER (WHERE c.minute > b.window_start) AS processing_count,
    sum(c.queue_us_sum) FILTER (WHERE c.minute > b.window_start) AS queue_us_sum,
    sum(c.queue_count) FILTER (WHERE c.minute > b.window_start) AS queue_count,
    coalesce(sum(c.count) FILTER (WHERE c.status = 'COMPLETED' AND c.minute > b.hour_start), 0)::int AS hour,
    coalesce(sum(c.count) FILTER (WHERE c.status = 'COMPLETED' AND c.minute > b.day_start), 0)::int AS day,
    coalesce(sum(c.count) FILTER (WHERE c.status = 'COMPLETED' AND c.minute > b.week_start), 0)::int AS week
  FROM bounds b JOIN job_outcome_counts c ON c.minute > least(b.window_start, b.week_start)
  GROUP BY c.status, c.type, c.priority, c.error_code
)
SELECT
  (SELECT coalesce(json_agg(a), '[]') FROM (
     SELECT status, type, priority, count(*)::int AS count FROM processing_jobs
     WHERE status IN ('QUEUED', 'RETRYING', 'PROCESSING') GROUP BY status, type, priority
     UNION ALL
     SELECT status, type, priority, sum(count)::int FROM finished GROUP BY status, type, priority HAVING sum(count) > 0) a) AS groups,
  (SELECT coalesce(json_agg(c), '[]') FROM (
     SELECT error_code AS category, sum(count)::int AS count FROM finished
     WHERE status IN ('FAILED', 'VALIDATION_FAILED', 'CANCELLED') AND error_code IS NOT NULL
     GROUP BY error_code HAVING sum(count) > 0 ORDER BY sum(count) DESC, error_code) c) AS categories,
  (SELECT sum(processing_sum)::numeric / NULLIF(sum(processing_count), 0) FROM finished) AS average_processing_ms,
  (SELECT sum(queue_us_sum)::numeric / 1000 / NULLIF(sum(queue_count), 0) FROM finished) AS average_queue_ms,
  (SELECT coalesce(sum(hour), 0)::int FROM finished) AS throughput_hour,
  (SELECT coalesce(sum(day), 0)::int FROM finished) AS throughput_day,
  (SELECT coalesce(sum(week), 0)::int FROM finished) AS throughput_week,
  (SELECT count(*)::int FROM processing_jobs, bounds WHERE status = 'PROCESSING'
     AND heartbeat_at < bounds.now - make_interval(secs => $3::double precision / 1000)) AS stalled,
  -- The earliest run_at of each priority is the first entry of the runnable index for it: three
  -- probes, whatever the backlog.
  (SELECT EXTRACT(EPOCH FROM (max(bounds.now) - min(first.run_at))) * 1000
     FROM bounds, ${PRIORITY_RANK_ROWS} AS ranks(rank),
     LATERAL (SELECT run_at FROM processing_jobs WHERE status IN ('QUEUED', 'RETRYING') AND priority_rank = ranks.rank
              ORDER BY priority_rank DESC, run_at LIMIT 1) first
     WHERE first.run_at <= bounds.now) AS oldest_queued_age_ms`;

interface StatsRow {
  groups: { status: string; type: string; priority: string; count: number }[];
  categories: { category: string; count: number }[];
  average_processing_ms: string | null;
  average_queue_ms: string | null;
  throughput_hour: number;
  throughput_day: number;
  throughput_week: number;
  stalled: number;
  oldest_queued_age_ms: string | null;
}

export async function queueStats(db: Pick<pg.Pool, "query">, options: { windowMs: number; stalledThresholdMs: number; clock?: Clock }): Promise<QueueStats> {
  const { rows } = await db.query<StatsRow>(STATS_SQL, [options.clock ? options.clock() : null, options.windowMs, options.stalledThresholdMs]);
  const row = rows[0]!;
  const total = (status: string) => row.groups.filter((group) => group.status === status).reduce((sum, group) => sum + group.count, 0);
  const counts = {
    queued: total("QUEUED"),
    processing: total("PROCESSING"),
    retrying: total("RETRYING"),
    completed: total("COMPLETED"),
    failed: total("FAILED"),
    validationFailed: total("VALIDATION_FAILED"),
    cancelled: total("CANCELLED"),
  };
  const finishedForRate = counts.completed + counts.failed + counts.validationFailed;
  return {
    windowMs: options.windowMs,
    counts,
    byType: sumBy(row.groups, (group) => `${group.type}\u0000${group.status}`).map(([key, count]) => {
      const [type = "", status = ""] = key.split("\u0000");
      return { type, status, count };
    }),
    byPriority: sumBy(row.groups, (group) => `${group.priority}\u0000${group.status}`).map(([key, count]) => {
      const [priority = "", status = ""] = key.split("\u0000");
      return { priority, status, count };
    }),
    failuresByCategory: row.categories,
    successRate: finishedForRate === 0 ? null : counts.completed / finishedForRate,
    averageProcessingMs: toNumber(row.average_processing_ms),
    averageQueueMs: toNumber(row.average_queue_ms),
    throughput: { lastHour: row.throughput_hour, lastDay: row.throughput_day, lastWeek: row.throughput_week },
    stalled: row.stalled,
    oldestQueuedAgeMs: toNumber(row.oldest_queued_age_ms),
  };
}

/** Health from the stats and the thresholds; every threshold crossed is listed as a reason. */
export function assessHealth(stats: QueueStats, thresholds: HealthThresholds): { status: HealthStatus; reasons: string[] } {
  const unhealthy: string[] = [];
  const degraded: string[] = [];
  const percent = (value: number) => `${(value * 100).toFixed(1)}%`;
  if (stats.successRate !== null) {
    if (stats.successRate < thresholds.unhealthySuccessRate) {
      unhealthy.push(`success rate ${percent(stats.successRate)} is below ${percent(thresholds.unhealthySuccessRate)}`);
    } else if (stats.successRate < thresholds.degradedSuccessRate) {
      degraded.push(`success rate ${percent(stats.successRate)} is below ${percent(thresholds.degradedSuccessRate)}`);
    }
  }
  if (stats.stalled > thresholds.unhealthyStalled) {
    unhealthy.push(`${stats.stalled} stalled jobs (more than ${thresholds.unhealthyStalled})`);
  } else if (stats.stalled > thresholds.degradedStalled) {
    degraded.push(`${stats.stalled} stalled job(s) (more than ${thresholds.degradedStalled})`);
  }
  const waiting = stats.counts.queued + stats.counts.retrying;
  if (waiting > thresholds.degradedQueued) degraded.push(`${waiting} jobs waiting (more than ${thresholds.degradedQueued})`);
  if (stats.oldestQueuedAgeMs !== null && stats.oldestQueuedAgeMs > thresholds.degradedOldestQueuedMs) {
    degraded.push(
      `oldest waiting job is ${Math.round(stats.oldestQueuedAgeMs / 1000)} s old (more than ${Math.round(thresholds.degradedOldestQueuedMs / 1000)} s)`,
    );
  }
  const status: HealthStatus = unhealthy.length ? "UNHEALTHY" : degraded.length ? "DEGRADED" : "HEALTHY";
  return { status, reasons: [...unhealthy, ...degraded] };
}

export async function queueHealth(db: Pick<pg.Pool, "query">, thresholds: HealthThresholds, clock?: Clock): Promise<QueueHealth> {
  const stats = await queueStats(db, { windowMs: thresholds.windowMs, stalledThresholdMs: thresholds.stalledThresholdMs, clock });
  return { ...stats, ...assessHealth(stats, thresholds), checkedAt: clock ? clock() : new Date() };
}

function sumBy<T extends { count: number }>(items: T[], key: (item: T) => string): [string, number][] {
  const sums = new Map<string, number>();
  for (const item of items) sums.set(key(item), (sums.get(key(item)) ?? 0) + item.count);
  return [...sums.entries()].sort(([a], [b]) => a.localeCompare(b));
}

function toNumber(value: string | number | null): number | null {
  if (value === null) return null;
  const number = Number(value);
  return Number.isFinite(number) ? number : null;
}
