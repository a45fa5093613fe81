// A week of realistic job history, generated in SQL (INSERT … SELECT generate_series): rows go in
// creation order, as a live table fills, so the heap is physically ordered by created_at.
import type pg from "pg";
import { ROLL_UP_OUTCOME_COUNTS } from "../../src/jobs/sql.js";

export interface SeedSummary {
  jobs: number;
  events: number;
  byStatus: Record<string, number>;
  owners: number;
  seconds: number;
}

/**
 * `rows` jobs created over the last 7 days by `owners` owners (skewed: a few heavy owners, a long
 * tail), mostly COMPLETED, ~3 % FAILED (with categories), some VALIDATION_FAILED / CANCELLED, and a
 * backlog of QUEUED / PROCESSING / RETRYING jobs among the last 10 minutes. Then a full JobEvent
 * timeline (created, claimed, a stage, the outcome) for `eventSample` of the jobs, the outcome
 * counters folded and vacuumed, VACUUM ANALYZE.
 */
export async function seedJobs(
  db: Pick<pg.Pool, "query">,
  options: { rows: number; owners: number; eventSample: number; analyze?: boolean },
): Promise<SeedSummary> {
  const started = performance.now();
  const { rows, owners, eventSample } = options;
  await db.query(`SELECT setseed(0.42)`);
  await db.query(
    `
WITH g AS (
  SELECT i,
    -- evenly through the week in insert order, plus up to a minute of jitter
    now() - interval '7 days' + (i::double precision / $1) * interval '7 days' - random() * interval '1 minute' AS created,
    -- skewed ownership: owner 0 has ~3 % of all jobs, the median owner ~0.07 %
    floor($2 * power(random(), 2))::int AS owner_n,
    random() AS r_status, random() AS r_kind, random() AS r_time, random() AS r_wait, random() AS r_prio, random() AS r_err
  FROM generate_series(1, $1) AS i
),
s AS (
  SELECT g.*,
    CASE
      WHEN created > now() - interval '10 minutes' THEN
        CASE WHEN r_status < 0.50 THEN 'QUEUED' WHEN r_status < 0.56 THEN 'PROCESSING' WHEN r_status < 0.58 THEN 'RETRYING' ELSE 'COMPLETED' END
      WHEN r_status < 0.030 THEN 'FAILED'
      WHEN r_status < 0.036 THEN 'VALIDATION_FAILED'
      WHEN r_status < 0.039 THEN 'CANCELLED'
      ELSE 'COMPLETED'
    END::"JobStatus" AS status,
    CASE WHEN r_kind < 0.7 THEN 'assessment' WHEN r_kind < 0.9 THEN 'report-export' ELSE 'file-import' END AS type,
    -- processing time: mostly sub-second, a long tail to ~30 s
    (40 + 30000 * power(r_time, 4))::int AS duration_ms,
    -- queue wait: mostly under a second, sometimes a minute
    (5 + 60000 * power(r_wait, 6))::int AS wait_ms,
    CASE WHEN r_prio < 0.1 THEN 'HIGH' WHEN r_prio < 0.2 THEN 'LOW' ELSE 'NORMAL' END::"JobPriority" AS priority
  FROM g
)
INSERT INTO processing_jobs (id, type, owner, correlation_id, status, stage, progress, priority, priority_rank, retry_count, max_attempts,
  run_at, last_retry_at, created_at, updated_at, started_at, completed_at, processing_time_ms, heartbeat_at, locked_by,
  payload, result, metadata, error_code, error_message, error_details, error_recoverable)
SELECT gen_random_uuid(), type, 'user-' || owner_n, 'corr-' || i, status,
  CASE status WHEN 'PROCESSING' THEN 'scoring' WHEN 'COMPLETED' THEN 'done' WHEN 'QUEUED' THEN NULL ELSE 'validating' END,
  CASE status WHEN 'COMPLETED' THEN 100 WHEN 'PROCESSING' THEN (r_time * 100)::int ELSE 0 END,
  priority, CASE priority WHEN 'HIGH' THEN 2 WHEN 'LOW' THEN 0 ELSE 1 END,
  CASE WHEN status IN ('FAILED') THEN 2 WHEN status = 'RETRYING' OR r_err < 0.02 AND status = 'COMPLETED' THEN 1 ELSE 0 END,
  3,
  CASE WHEN status = 'RETRYING' THEN now() + (r_wait * interval '30 seconds') ELSE created END,
  CASE WHEN status = 'RETRYING' THEN now() - interval '5 seconds' END,
  created,
  CASE WHEN status IN ('QUEUED') THEN created WHEN status IN ('PROCESSING', 'RETRYING') THEN now() - r_wait * interval '5 seconds'
       ELSE created + (wait_ms + duration_ms) * interval '1 millisecond' END,
  CASE WHEN status IN ('QUEUED', 'CANCELLED') THEN NULL WHEN status = 'PROCESSING' THEN now() - r_wait * interval '20 seconds'
       ELSE created + wait_ms * interval '1 millisecond' END,
  CASE WHEN status IN ('COMPLETED', 'FAILED', 'VALIDATION_FAILED') THEN created + (wait_ms + duration_ms) * interval '1 millisecond'
       WHEN status = 'CANCELLED' THEN created + wait_ms * interval '1 millisecond' END,
  CASE WHEN status IN ('COMPLETED', 'FAILED', 'VALIDATION_FAILED') THEN duration_ms END,
  CASE WHEN status = 'PROCESSING' THEN now() - r_wait * interval '10 seconds' END,
  CASE WHEN status = 'PROCESSING' THEN 'worker-bench-1' END,
  jsonb_build_object('assessmentKind', 'wellbeing-v2', 'locale', (ARRAY['en', 'fr', 'de'])[1 + i % 3], 'answers', 24 + i % 12,
    'source', 'web', 'requestedBy', 'user-' || owner_n),
  CASE WHEN status = 'COMPLETED' THEN jsonb_build_object('score', (r_time * 100)::int, 'band', (ARRAY['low', 'medium', 'high'])[1 + i % 3],
    'sections', jsonb_build_array(jsonb_build_object('id', 'sleep', 'score', i % 10), jsonb_build_object('id', 'stress', 'score', i % 7),
      jsonb_build_object('id', 'energy', 'score', i % 5)), 'generatedAt', created) END,
  jsonb_build_object('client', 'web', 'version', '1.4.2'),
  CASE WHEN status = 'FAILED' THEN (ARRAY['WORKER_ERROR', 'WORKER_ERROR', 'TIMEOUT', 'FILE_ERROR', 'QUEUE_ERROR'])[1 + (r_err * 5)::int % 5]
       WHEN status = 'VALIDATION_FAILED' THEN 'VALIDATION_ERROR' WHEN status = 'CANCELLED' THEN 'CANCELLED'
       WHEN status = 'RETRYING' THEN 'WORKER_ERROR' END,
  CASE WHEN status IN ('FAILED', 'RETRYING') THEN 'upstream scoring service returned 503'
       WHEN status = 'VALIDATION_FAILED' THEN 'answers failed validation' WHEN status = 'CANCELLED' THEN 'cancelled by the user' END,
  CASE WHEN status = 'VALIDATION_FAILED' THEN jsonb_build_object('problems', jsonb_build_array('question 7: expected 1-5')) END,
  CASE WHEN status IN ('FAILED', 'VALIDATION_FAILED', 'CANCELLED') THEN false WHEN status = 'RETRYING' THEN true END
FROM s ORDER BY i`,
    [rows, owners],
  );
  // The timeline a UI shows, for a sample: created, claimed, a stage, the outcome.
  const events = await db.query(
    `
INSERT INTO job_events (job_id, from_status, to_status, attempt, stage, progress, message, at)
SELECT j.id, e.from_status::"JobStatus", e.to_status::"JobStatus", 1, e.stage, e.progress, e.message, e.at
FROM processing_jobs j TABLESAMPLE BERNOULLI ($1)
CROSS JOIN LATERAL (VALUES
  (NULL, 'QUEUED', NULL::text, 0, 'created', j.created_at),
  ('QUEUED', 'PROCESSING', NULL, 0, NULL, j.started_at),
  ('PROCESSING', 'PROCESSING', 'scoring', 50, NULL, j.started_at + (j.completed_at - j.started_at) / 2),
  ('PROCESSING', j.status::text, j.stage, j.progress, j.error_message, j.completed_at)
) AS e(from_status, to_status, stage, progress, message, at)
WHERE j.completed_at IS NOT NULL AND j.started_at IS NOT NULL
ORDER BY j.created_at`,
    [eventSample * 100],
  );
  // A week of history has been through retention's hourly pass, which folds the outcome counters
  // (what queue health reads) older than two hours into hours. Live counting wrote them a batch at a
  // time over the week; the seed's one statement upserted each row about a hundred times, and the
  // dead versions (132,626 index entries for 9,541 rows at a million jobs) would cost health
  // 80–110 ms until a vacuum. VACUUM takes them away without taking statistics.
  await db.query(ROLL_UP_OUTCOME_COUNTS, [null]);
  await db.query(`VACUUM job_outcome_counts`);
  // A week of history has met autovacuum; `analyze: false` leaves the table as a burst would.
  if (options.analyze !== false) {
    await db.query(`VACUUM ANALYZE processing_jobs`);
    await db.query(`VACUUM ANALYZE job_events`);
  }
  const counts = await db.query<{ status: string; count: number }>(`SELECT status, count(*)::int AS count FROM processing_jobs GROUP BY status ORDER BY status`);
  const distinctOwners = await db.query<{ n: number }>(`SELECT count(DISTINCT owner)::int AS n FROM processing_jobs`);
  return {
    jobs: rows,
    events: events.rowCount ?? 0,
    byStatus: Object.fromEntries(counts.rows.map((row) => [row.status, row.count])),
    owners: distinctOwners.rows[0]!.n,
    seconds: (performance.now() - started) / 1000,
  };
}
