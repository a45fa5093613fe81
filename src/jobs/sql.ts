import { CANCEL_CHANNEL, JOBS_CHANNEL } from "./notification-listener.js";
import { JOB_TOPIC_PREFIX } from "../events/messages.js";
import { EVENTS_CHANNEL, MAX_NOTIFY_BYTES } from "../events/pg-event-target.js";
import { PRIORITY_RANK } from "./types.js";

/**
 * Every statement the job engine runs, in plain SQL, in one place. Each transition is a single
 * statement: lock the rows that are still in the expected state (and, for a running job, still
 * held by the caller's claim token), update them, append their JobEvents, and return what changed. Two actors
 * can therefore never both win a transition, and no transaction is ever held across a handler.
 *
 * `$1` is always "now": a timestamp from an injected clock, or NULL for the database clock.
 */

const CLOCK = `clock AS (SELECT COALESCE($1::timestamptz, now()) AS now)`;

/** Columns every transition returns: enough for the published change and for the caller. */
export const CHANGE_COLUMNS = `id, type, owner, status, stage, progress, bytes_done, bytes_total, retry_count, error_code, updated_at, processing_time_ms, revision`;

/**
 * Milliseconds from a start time to now; NULL (never negative, never NaN) when there is no start.
 * Capped at the int column's largest value (24.8 days): an attempt that ran longer (a job without a
 * timeout, or one stalled while every instance was down that long) would otherwise fail its whole
 * statement with "integer out of range", and stalled recovery, which takes the oldest first,
 * would fail on it again at every pass.
 */
const DURATION_MS = `CASE WHEN j.started_at IS NULL THEN NULL
  ELSE LEAST(2147483647, GREATEST(0, ROUND(EXTRACT(EPOCH FROM (clock.now - j.started_at)) * 1000)))::int END`;

const CLEAR_ERROR = `error_code = NULL, error_message = NULL, error_details = NULL, error_recoverable = NULL`;

/** Adds a group's figures to its job_outcome_counts row (`counts`), or inserts it. */
const ADD_TO_OUTCOME_COUNTS = `ON CONFLICT (minute, type, priority, status, error_code) DO UPDATE SET
  count = counts.count + EXCLUDED.count,
  processing_ms_sum = counts.processing_ms_sum + EXCLUDED.processing_ms_sum,
  processing_count = counts.processing_count + EXCLUDED.processing_count,
  queue_us_sum = counts.queue_us_sum + EXCLUDED.queue_us_sum,
  queue_count = counts.queue_count + EXCLUDED.queue_count`;

/**
 * A CTE that counts the rows of `source` (jobs just updated) that reached a final state into
 * job_outcome_counts, the per-minute counters queue health reads (src/jobs/health.ts): one
 * aggregated upsert per statement, so a batch of completions costs one. Groups are upserted in key
 * order, so that two statements counting the same minutes lock them in the same order and cannot
 * deadlock. An outcome stays counted when its job is later retried or deleted.
 */
function countOutcomes(source: string): string {
  return `counted AS (
  INSERT INTO job_outcome_counts AS counts
    (minute, type, priority, status, error_code, count, processing_ms_sum, processing_count, queue_us_sum, queue_count)
  SELECT date_trunc('minute', n.completed_at), n.type, n.priority, n.status, coalesce(n.error_code, ''),
    count(*), coalesce(sum(n.processing_time_ms), 0), count(n.processing_time_ms),
    coalesce(sum((EXTRACT(EPOCH FROM n.started_at - n.created_at) * 1000000)::bigint) FILTER (WHERE n.started_at >= n.created_at), 0),
    count(*) FILTER (WHERE n.started_at >= n.created_at)
  FROM ${source} n
  WHERE n.status IN ('COMPLETED', 'FAILED', 'VALIDATION_FAILED', 'CANCELLED') AND n.completed_at IS NOT NULL
  GROUP BY 1, 2, 3, 4, 5
  ORDER BY 1, 2, 3, 4, 5
  ${ADD_TO_OUTCOME_COUNTS}
)`;
}

/**
 * CTEs that tell other instances of the job changes in `source` (rows of processing_jobs with
 * `previousStatus` the expression given), in the notifications src/events/pg-event-target.ts reads:
 * each change goes on the job's topic and on jobs:changed, and (`mayReopen`) on jobs:reopened with its
 * id when it left a final state, but only to topics another instance listens to (event_listeners,
 * kept by src/events/listener-registry.ts): the instance whose connection runs the statement (its
 * conveyor.instance, which signs the notification) tells its own subscribers itself. Nobody
 * listening elsewhere, as with a lone instance, costs one lookup per statement: the changes are
 * turned into JSON, and packed into notifications (conveyor_announce), only when someone listens,
 * and conveyor_announce is not even called otherwise (that call, returning at once, took a
 * one-job enqueue's execution after 20 ms idle from 0.40 to 0.42 ms at the median).
 * The notifications go out when the transaction commits, after its outcome is durable, and not at
 * all if it rolls back. `twicePerJob`: the source may hold two changes of one job (an enqueue's
 * handoff: QUEUED, then PROCESSING), sent in revision order. Only there: on PostgreSQL 16 and later
 * an ordered aggregate is planned with a Sort node, which the worker's connections must not need.
 * `newJobs`: the source holds jobs the statement created, whose own topics nobody can follow yet
 * (jobProgress finds the job before it registers, so its registration comes after this commit):
 * only jobs:changed is asked about, instead of a topic built and looked up per job (0.6 to 0.75 ms
 * of a 1,000-job enqueue's 16, interleaved, medians of 30).
 * conveyor_listened_topics is VOLATILE: called once the rows are updated (and locked), it sees a
 * registration committed meanwhile (migration 20261126120000_event_listeners).
 * The statement must read `(SELECT count(*) FROM announced)` for these to run.
 */
function announceChanges(source: string, previousStatus: string, options: { mayReopen?: boolean; twicePerJob?: boolean; newJobs?: boolean } = {}): string {
  const jobTopics = options.newJobs ? "" : ` || ARRAY(SELECT '${JOB_TOPIC_PREFIX}' || id FROM ${source})`;
  return `listened AS (
  SELECT conveyor_listened_topics(ARRAY['jobs:changed'${options.mayReopen ? ", 'jobs:reopened'" : ""}]${jobTopics}) AS topics
),
announced AS (
  SELECT CASE WHEN l.topics IS NULL THEN 0 ELSE conveyor_announce(l.topics, (
    SELECT json_agg(json_build_object('jobId', u.id, 'type', u.type, 'owner', u.owner, 'status', u.status, 'previousStatus', ${previousStatus},
      'stage', u.stage, 'progress', u.progress, 'bytesDone', u.bytes_done, 'bytesTotal', u.bytes_total,
      'retryCount', u.retry_count, 'errorCode', u.error_code, 'revision', u.revision,
      'at', to_char(u.updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))${options.twicePerJob ? " ORDER BY u.revision" : ""})
    FROM ${source} u WHERE l.topics IS NOT NULL
  ), ${options.mayReopen ? "true" : "false"}, current_setting('conveyor.instance', true), '${EVENTS_CHANNEL}', ${MAX_NOTIFY_BYTES}) END
  FROM listened l
)`;
}

/**
 * The running jobs a batch names (`input`: rows with `id` and `token`), each found through the primary
 * key and locked, as `j` (`status`, `cancel_requested_at`); the statement then updates them by id.
 *
 * Why this shape: joined as a set, on a table never analyzed, the planner expects few PROCESSING
 * rows and reads them all through the heartbeat index, visiting every dead entry left since the
 * last vacuum and comparing each with the whole id list; per job, a batch of 500 cost 258 µs
 * against 43 µs this way, and it grew with the batch and with the jobs run since the last vacuum.
 * A LATERAL lookup is one primary-key probe per job whatever the statistics. Its FOR UPDATE waits
 * for a concurrent write to the row (a heartbeat, a cancel request) and rechecks the claim on the
 * latest version; the UPDATE, joined by id, then finds the row through the primary key again (on
 * connections with WORKER_PLANNER_SETTINGS, never a sequential scan instead) and follows it to that
 * locked version. (Not by ctid: the latest version may be newer than the statement's snapshot, and
 * a ctid join would then find nothing.) Rows are locked in id order, so two batches sharing jobs
 * cannot deadlock.
 */
function claimedRows(input: string): string {
  // `status::text`: a test the heartbeat index's predicate (status = 'PROCESSING') cannot match. With
  // it written plainly, the generic plan the prepared statement keeps read each job through that
  // index once the table had statistics taken while few jobs ran: every PROCESSING row visited for
  // every job of the batch, instead of one primary-key probe (test/jobs/claim-plan.test.ts).
  return `(SELECT * FROM ${input} ORDER BY id) i CROSS JOIN LATERAL (
    SELECT status, cancel_requested_at FROM processing_jobs
    WHERE id = i.id AND lock_token = i.token AND status::text = 'PROCESSING'
    FOR UPDATE
  ) j`;
}

type TransitionParts = TargetParts & {
  /** SET assignments; `j` is the job, `clock.now` the time. */
  set: string;
  /** JobEvent.attempt for the event; defaults to the attempt in progress. */
  attempt?: string;
  /** JobEvent.message expression. */
  message?: string;
  /** Extra columns to return. */
  returning?: string;
  /** Writes an AuditEvent per moved job in the same statement: `actor` is an SQL expression. */
  audit?: { actor: string; action: string };
  /** The transition can finish jobs: count them for queue health (countOutcomes). */
  finishes?: boolean;
  /** The transition can take jobs out of a final state: announce them on jobs:reopened too. */
  mayReopen?: boolean;
};

/** The rows allowed to move, locked: a WHERE (with its ordering and limit), or a whole SELECT of `id` and `from_status`. */
type TargetParts = { target: string; where?: never; tail?: never; skipLocked?: never; targetColumns?: never } | WhereParts;

interface WhereParts {
  target?: never;
  /** WHERE on processing_jobs (unaliased) selecting the rows allowed to move. */
  where: string;
  /** LIMIT and ordering of the locked rows, for batch transitions. */
  tail?: string;
  /** SKIP LOCKED for maintenance sweeps that must not wait on busy rows. */
  skipLocked?: boolean;
  /** Extra columns of the locked rows (`t.<name>` in `set`). */
  targetColumns?: string;
}

export function transitionSql(parts: TransitionParts): string {
  return `WITH ${CLOCK},
target AS (
  ${
    parts.target ??
    `SELECT id, status AS from_status${parts.targetColumns ? `, ${parts.targetColumns}` : ""} FROM processing_jobs
  WHERE ${parts.where}
  ${parts.tail ?? ""}
  FOR UPDATE${parts.skipLocked ? " SKIP LOCKED" : ""}`
  }
),
updated AS (
  UPDATE processing_jobs j SET ${parts.set}, revision = j.revision + 1, updated_at = clock.now
  FROM target t, clock
  WHERE j.id = t.id
  RETURNING j.*, t.from_status
),
events AS (
  INSERT INTO job_events (job_id, from_status, to_status, attempt, stage, progress, message, at)
  SELECT id, from_status, status, ${parts.attempt ?? "retry_count + 1"}, stage, progress, ${parts.message ?? "NULL"}, updated_at
  FROM updated
)${parts.audit ? `,
audit AS (
  INSERT INTO audit_events (actor, action, entity_type, entity_id, correlation_id, metadata, at)
  SELECT ${parts.audit.actor}, '${parts.audit.action}', 'ProcessingJob', id::text, correlation_id,
    jsonb_build_object('from', from_status, 'to', status), updated_at
  FROM updated
)` : ""}${parts.finishes ? `,
${countOutcomes("updated")}` : ""},
${announceChanges("updated", "u.from_status", { mayReopen: parts.mayReopen })}
SELECT ${CHANGE_COLUMNS}, from_status${parts.returning ? `, ${parts.returning}` : ""}, (SELECT count(*) FROM announced) AS announced FROM updated`;
}

/**
 * $2 worker id, $3 job types, $4 how many, $5 ids this pool must not take (an earlier attempt of
 * theirs still runs here). Highest priority first, then oldest run_at. Each claimed row gets a
 * fresh lock_token: the claim's identity, which every later worker-side write must present.
 *
 * The claim must walk processing_jobs_runnable_idx (priority_rank DESC, run_at, id) in its order
 * and stop after $4 rows, whatever the planner believes. On a table never analyzed (a burst on a
 * fresh or quiet table, before autovacuum gets to it) PostgreSQL guesses a dozen waiting rows and
 * prefers a bitmap scan of every waiting job plus a sort: 10,000 waiting jobs made each claim read
 * and sort all 10,000 (9.5 ms), and the cost grew with the backlog. No shape of this query is
 * planned safely on guesses alone, so the worker's connections run with the sequential scan, the
 * bitmap scan and the sort disabled (database.ts, WORKER_PLANNER_SETTINGS): the ordered index scan
 * is then the only plan left. The worker's other statements (progress, heartbeat, completions,
 * failures) are primary-key lookups (claimedRows), which those settings keep that way.
 *
 * One walk per priority, highest first, appended: within one priority the index is ordered by
 * run_at, so `run_at <= now` bounds the walk and it ends at the first job not yet due. A single
 * walk of the whole index read every job of a higher priority that was not due yet before reaching
 * a due one (200,000 HIGH jobs due tomorrow, or retrying after a long backoff, took a claim of
 * NORMAL jobs from about 3,600 to 1,270 jobs/s in bench/claim-past.ts). PostgreSQL runs an Append's
 * branches in order (a statement that locks rows is never run in parallel), and the LIMIT above
 * stops pulling once it has $4 rows: a lower priority's walk does not start, nor lock anything,
 * when a higher one filled the claim. Each walk's own LIMIT comes after its row locks (SKIP
 * LOCKED), so it counts the rows it took.
 */
// Time columns keep milliseconds and round half up, so a run_at written as "now" can lie up to
// half a millisecond ahead of the clock: allow for it, or a job woken by NOTIFY would wait a poll.
const DUE_ALLOWANCE = `interval '0.5 milliseconds'`;

const CLAIMABLE = `status IN ('QUEUED', 'RETRYING')
      AND run_at <= COALESCE($1::timestamptz, now()) + ${DUE_ALLOWANCE}
      AND type = ANY($3::text[]) AND id <> ALL($5::uuid[])`;

// A subquery each: a branch of a UNION cannot lock rows itself.
const claimWalk = (rank: number) => `SELECT * FROM (SELECT id, status AS from_status FROM processing_jobs
    WHERE priority_rank = ${rank} AND ${CLAIMABLE}
    ORDER BY run_at, id LIMIT $4 FOR UPDATE SKIP LOCKED) AS rank_${rank}`;

export const CLAIM = transitionSql({
  target: `SELECT id, from_status FROM (
    ${Object.values(PRIORITY_RANK).sort((a, b) => b - a).map(claimWalk).join("\n    UNION ALL\n    ")}
  ) AS by_priority LIMIT $4`,
  set: `status = 'PROCESSING', locked_by = $2, lock_token = gen_random_uuid(), started_at = clock.now, heartbeat_at = clock.now,
    completed_at = NULL, processing_time_ms = NULL, stage = NULL, progress = 0, bytes_done = NULL, bytes_total = NULL`,
  returning: `assessment_id, correlation_id, schema_version, idempotency_key, priority, max_attempts, run_at,
    last_retry_at, created_at, started_at, completed_at, processing_time_ms, heartbeat_at, locked_by, lock_token, timeout_ms,
    payload, result, metadata, error_message, error_details, error_recoverable, cancel_requested_at`,
});

/** $2 ids, $3 claim tokens, $4 results (jsonb[]): completes a batch, each guarded by its own claim. */
export const COMPLETE_MANY = `WITH ${CLOCK},
input AS (SELECT * FROM unnest($2::uuid[], $3::uuid[], $4::jsonb[]) AS i(id, token, result)),
target AS (SELECT i.id, i.result FROM ${claimedRows("input")}),
updated AS (
  UPDATE processing_jobs j SET status = 'COMPLETED', result = t.result, progress = 100, completed_at = clock.now,
    processing_time_ms = ${DURATION_MS}, locked_by = NULL, lock_token = NULL, heartbeat_at = NULL, ${CLEAR_ERROR}, revision = j.revision + 1, updated_at = clock.now
  FROM target t, clock
  WHERE j.id = t.id
  RETURNING j.*
),
events AS (
  INSERT INTO job_events (job_id, from_status, to_status, attempt, stage, progress, at)
  SELECT id, 'PROCESSING', 'COMPLETED', retry_count + 1, stage, 100, updated_at FROM updated
),
${countOutcomes("updated")},
${announceChanges("updated", "'PROCESSING'")}
SELECT ${CHANGE_COLUMNS}, 'PROCESSING'::"JobStatus" AS from_status, (SELECT count(*) FROM announced) AS announced FROM updated`;

/**
 * Records a batch of failed attempts in one statement (one commit for all): parallel arrays $2 ids,
 * $3 claim tokens, $4 next statuses, $5 retry delays ms (RETRYING only), $6 codes, $7 messages,
 * $8 details, $9 recoverable. The caller (the lifecycle) has decided each next status, except that
 * a job whose cancel was requested meanwhile ends CANCELLED rather than retrying. Each is guarded by
 * its own claim; a retry due at once wakes idle pools everywhere.
 */
export const FAIL_MANY = `WITH ${CLOCK},
input AS (
  SELECT * FROM unnest($2::uuid[], $3::uuid[], $4::text[], $5::double precision[], $6::text[], $7::text[], $8::jsonb[], $9::boolean[])
    AS i(id, token, next, delay_ms, code, message, details, recoverable)
),
target AS (
  SELECT i.id, j.status AS from_status, i.next AS asked,
    CASE WHEN j.cancel_requested_at IS NOT NULL THEN 'CANCELLED' ELSE i.next END AS next,
    i.delay_ms, i.code, i.message, i.details, i.recoverable
  FROM ${claimedRows("input")}
),
updated AS (
  UPDATE processing_jobs j SET status = t.next::"JobStatus",
    retry_count = CASE WHEN t.next = 'RETRYING' THEN j.retry_count + 1 ELSE j.retry_count END,
    run_at = CASE WHEN t.next = 'RETRYING' THEN clock.now + make_interval(secs => t.delay_ms / 1000) ELSE j.run_at END,
    last_retry_at = CASE WHEN t.next = 'RETRYING' THEN clock.now ELSE j.last_retry_at END,
    completed_at = CASE WHEN t.next = 'RETRYING' THEN NULL ELSE clock.now END,
    processing_time_ms = ${DURATION_MS},
    locked_by = NULL, lock_token = NULL, heartbeat_at = NULL,
    error_code = CASE WHEN t.next = 'CANCELLED' AND t.asked <> 'CANCELLED' THEN 'CANCELLED' ELSE t.code END,
    error_message = CASE WHEN t.next = 'CANCELLED' AND t.asked <> 'CANCELLED' THEN 'Cancelled by request' ELSE t.message END,
    error_details = CASE WHEN t.next = 'CANCELLED' AND t.asked <> 'CANCELLED'
      THEN jsonb_build_object('category', 'CANCELLED', 'reason', 'cancel requested', 'attempt', t.details) ELSE t.details END,
    error_recoverable = CASE WHEN t.next = 'CANCELLED' THEN false ELSE t.recoverable END,
    revision = j.revision + 1, updated_at = clock.now
  FROM target t, clock
  WHERE j.id = t.id
  RETURNING j.*, t.from_status
),
events AS (
  INSERT INTO job_events (job_id, from_status, to_status, attempt, stage, progress, message, at)
  SELECT id, from_status, status, CASE WHEN status = 'RETRYING' THEN retry_count ELSE retry_count + 1 END, stage, progress, error_code, updated_at
  FROM updated
),
wake AS (
  SELECT pg_notify('${JOBS_CHANNEL}', '') FROM (SELECT 1 FROM updated, clock WHERE status = 'RETRYING' AND run_at <= clock.now LIMIT 1) AS due
),
${countOutcomes("updated")},
${announceChanges("updated", "u.from_status")}
SELECT ${CHANGE_COLUMNS}, from_status, (SELECT count(*) FROM wake) AS notified, (SELECT count(*) FROM announced) AS announced FROM updated`;

/**
 * Progress of many running jobs in one statement; not a status change. $2..$8 one row per job, its
 * latest report: ids, claim tokens, stages, percents, bytes done, bytes total, and the stages it
 * entered since the last write, for the timeline (a JSON array of {stage, progress, at}, at the
 * moment each was reported; NULL for none). Returns the tokens still valid; a report whose claim
 * was taken over writes nothing.
 */
export const PROGRESS_MANY = `WITH ${CLOCK},
latest AS (
  SELECT * FROM unnest($2::uuid[], $3::uuid[], $4::text[], $5::int[], $6::bigint[], $7::bigint[], $8::jsonb[])
    AS l(id, token, stage, progress, bytes_done, bytes_total, new_stages)
),
target AS (SELECT i.id, i.stage, i.progress, i.bytes_done, i.bytes_total, i.new_stages FROM ${claimedRows("latest")}),
updated AS (
  UPDATE processing_jobs j SET stage = t.stage, progress = GREATEST(0, LEAST(100, t.progress)),
    bytes_done = t.bytes_done, bytes_total = t.bytes_total, heartbeat_at = clock.now, updated_at = clock.now
  FROM target t, clock
  WHERE j.id = t.id
  RETURNING j.*, t.new_stages
),
events AS (
  -- The timeline records each new stage, not every percent. Each job's stages ride with it, in
  -- order: matched to the updated jobs by a join instead, they cost stages × jobs comparisons, as
  -- the worker's connections join a data-modifying CTE's rows only in a nested loop.
  INSERT INTO job_events (job_id, from_status, to_status, attempt, stage, progress, at)
  SELECT u.id, 'PROCESSING', 'PROCESSING', u.retry_count + 1, e.stage, GREATEST(0, LEAST(100, e.progress)), e.at
  FROM updated u CROSS JOIN LATERAL jsonb_to_recordset(u.new_stages) AS e(stage text, progress int, at timestamptz)
),
${announceChanges("updated", "'PROCESSING'")}
SELECT lock_token AS token, (SELECT count(*) FROM announced) AS announced FROM updated`;

/** $2 ids, $3 their claim tokens. Returns the tokens still valid, and whether a cancel was requested. */
export const HEARTBEAT = `WITH input AS (SELECT * FROM unnest($2::uuid[], $3::uuid[]) AS h(id, token)),
target AS (SELECT i.id FROM ${claimedRows("input")})
UPDATE processing_jobs j SET heartbeat_at = COALESCE($1::timestamptz, now())
FROM target t
WHERE j.id = t.id
RETURNING j.lock_token AS token, j.cancel_requested_at IS NOT NULL AS cancel_requested`;

/** Waiting jobs become CANCELLED at once: the one cancel, for a single job and for a selection. */
const CANCEL_WAITING_PARTS = {
  set: `status = 'CANCELLED', cancel_requested_at = clock.now, completed_at = clock.now,
    error_code = 'CANCELLED', error_message = 'Cancelled by request', error_details = NULL, error_recoverable = false`,
  attempt: `retry_count`,
  message: `'cancelled'`,
  finishes: true,
} satisfies Partial<TransitionParts>;

/** The states a retry by hand takes a job from, and those a cancel ends at once. */
const RETRYABLE = `'FAILED', 'VALIDATION_FAILED', 'CANCELLED'`;
const WAITING = `'QUEUED', 'RETRYING'`;

/** $2 id, $3 actor. Queued or retrying jobs are cancelled at once. */
export const CANCEL_WAITING = transitionSql({
  where: `id = $2 AND status IN (${WAITING})`,
  ...CANCEL_WAITING_PARTS,
  audit: { actor: "$3", action: "job.cancelled" },
});

/**
 * Marks running jobs chosen by `where` (on processing_jobs) as asked to stop, audited as `actor`;
 * their pools, told by NOTIFY, abort the handlers, whose failure then ends the jobs CANCELLED.
 */
function requestCancelSql(where: string, actor: string): string {
  return `WITH requested AS (
  UPDATE processing_jobs SET cancel_requested_at = COALESCE(cancel_requested_at, COALESCE($1::timestamptz, now()))
  WHERE ${where} AND status = 'PROCESSING'
  RETURNING id, correlation_id
),
audit AS (
  INSERT INTO audit_events (actor, action, entity_type, entity_id, correlation_id, metadata)
  SELECT ${actor}, 'job.cancel-requested', 'ProcessingJob', id::text, correlation_id, '{}'::jsonb FROM requested
),
wake AS (SELECT pg_notify('${CANCEL_CHANNEL}', id::text) FROM requested)
SELECT id, (SELECT count(*) FROM wake) AS notified FROM requested`;
}

/** $2 id, $3 actor. A running job is only marked; its pool (told by NOTIFY) aborts the handler. */
export const REQUEST_CANCEL = requestCancelSql(`id = $2`, "$3");

/**
 * $2 id, $3 actor. FAILED, VALIDATION_FAILED and CANCELLED jobs go back to the queue with fresh
 * attempts, keeping a run_at still in the future: a retried scheduled job keeps its schedule.
 */
const RETRY_BY_HAND_PARTS = {
  set: `status = 'QUEUED', retry_count = 0, run_at = GREATEST(j.run_at, clock.now), started_at = NULL, completed_at = NULL,
    processing_time_ms = NULL, cancel_requested_at = NULL, stage = NULL, progress = 0, result = NULL, ${CLEAR_ERROR}`,
  attempt: `1`,
  message: `'retried by hand'`,
  mayReopen: true,
} satisfies Partial<TransitionParts>;

export const RETRY_BY_HAND = transitionSql({
  where: `id = $2 AND status IN (${RETRYABLE})`,
  ...RETRY_BY_HAND_PARTS,
  audit: { actor: "$3", action: "job.retried" },
});

/**
 * A selection of jobs (the API's JobFilter), its values from $`first`: statuses, type, owner,
 * assessment id, created at or after, created before; each NULL when not filtered on.
 */
function selected(first: number): string {
  const [statuses, type, owner, assessment, from, to] = [0, 1, 2, 3, 4, 5].map((offset) => `$${first + offset}`);
  return `(${statuses}::"JobStatus"[] IS NULL OR status = ANY(${statuses}::"JobStatus"[]))
  AND (${type}::text IS NULL OR type = ${type}) AND (${owner}::text IS NULL OR owner = ${owner}) AND (${assessment}::uuid IS NULL OR assessment_id = ${assessment})
  AND (${from}::timestamptz IS NULL OR created_at >= ${from}) AND (${to}::timestamptz IS NULL OR created_at < ${to})`;
}

/**
 * An operator's bulk action first chooses its jobs, then acts on those it chose. $1..$6 a selection
 * (`selected`), $7 the most jobs a call may act on: the ids of its jobs that meet `condition`,
 * oldest first. A read only: how many it chose tells whether more may match (limitReached), whatever
 * happens to them before the action locks them.
 */
function chooseSql(condition: string): string {
  return `SELECT id FROM processing_jobs WHERE ${condition} AND ${selected(1)} ORDER BY created_at, id LIMIT $7`;
}

export const CHOOSE_RETRYABLE = chooseSql(`status IN (${RETRYABLE})`);
export const CHOOSE_WAITING = chooseSql(`status IN (${WAITING})`);
/** Running jobs not yet asked to stop. */
export const CHOOSE_RUNNING = chooseSql(`status = 'PROCESSING' AND cancel_requested_at IS NULL`);

/**
 * $3 the chosen ids, $4 the selection's statuses: those still in `statuses`, locked in id order. A
 * row another statement holds (a claim taking a waiting job, a subscriber's registration holding
 * a finished one FOR SHARE) is waited for rather than skipped: skipped, the operator's action on
 * it was silently lost. The status is checked again once the row is locked (a claim may have
 * started the job meanwhile; the rest of a selection cannot change), and every batch that writes
 * several jobs locks them in id order, so none of them can deadlock with this one.
 */
function chosenAndLocked(statuses: string): string {
  return `id IN (SELECT id FROM processing_jobs WHERE id = ANY($3::uuid[]) AND status IN (${statuses})
    AND ($4::"JobStatus"[] IS NULL OR status = ANY($4::"JobStatus"[])) ORDER BY id FOR UPDATE)`;
}

/** $2 actor, $3 chosen ids, $4 the selection's statuses: failed, invalid and cancelled jobs back to the queue. */
export const RETRY_CHOSEN = transitionSql({
  where: chosenAndLocked(RETRYABLE),
  ...RETRY_BY_HAND_PARTS,
  audit: { actor: "$2", action: "job.retried" },
});

/** $2 actor, $3 chosen ids, $4 the selection's statuses: queued and retrying jobs cancelled at once. */
export const CANCEL_CHOSEN_WAITING = transitionSql({
  where: chosenAndLocked(WAITING),
  ...CANCEL_WAITING_PARTS,
  audit: { actor: "$2", action: "job.cancelled" },
});

/**
 * $2 actor, $3 chosen ids: those running and not yet asked to stop are asked to (chosen running,
 * or chosen waiting and started by a claim since). Locked in id order and waited for, both
 * conditions checked again once locked, as chosenAndLocked: a job someone else asked to stop
 * meanwhile is neither asked, audited nor counted twice.
 */
export const REQUEST_CANCEL_CHOSEN = requestCancelSql(
  `id IN (SELECT id FROM processing_jobs WHERE id = ANY($3::uuid[]) AND status = 'PROCESSING' AND cancel_requested_at IS NULL ORDER BY id FOR UPDATE)`,
  "$2",
);

/**
 * $2 ids, $3 their claim tokens: on shutdown, stopped jobs go back to the queue; the attempt does
 * not count. A job whose cancel was requested meanwhile (the pool had stopped listening for
 * cancels) ends CANCELLED instead, as its failure would: back in the queue, the next pool would
 * run it again. Locked in id order, as the progress and outcome batches that may still be writing
 * these jobs lock them (claimedRows): in scan order the two could deadlock.
 */
export const RELEASE = transitionSql({
  where: `id = ANY($2::uuid[]) AND (id, lock_token) IN (SELECT * FROM unnest($2::uuid[], $3::uuid[])) AND status = 'PROCESSING'`,
  tail: `ORDER BY id`,
  targetColumns: `cancel_requested_at IS NOT NULL AS cancelled`,
  set: `status = CASE WHEN t.cancelled THEN 'CANCELLED' ELSE 'QUEUED' END::"JobStatus",
    locked_by = NULL, lock_token = NULL, heartbeat_at = NULL,
    started_at = CASE WHEN t.cancelled THEN j.started_at END,
    run_at = CASE WHEN t.cancelled THEN j.run_at ELSE clock.now END,
    stage = CASE WHEN t.cancelled THEN j.stage END,
    progress = CASE WHEN t.cancelled THEN j.progress ELSE 0 END,
    completed_at = CASE WHEN t.cancelled THEN clock.now ELSE j.completed_at END,
    processing_time_ms = CASE WHEN t.cancelled THEN ${DURATION_MS} ELSE j.processing_time_ms END,
    error_code = CASE WHEN t.cancelled THEN 'CANCELLED' ELSE j.error_code END,
    error_message = CASE WHEN t.cancelled THEN 'Cancelled by request' ELSE j.error_message END,
    error_details = CASE WHEN t.cancelled THEN jsonb_build_object('category', 'CANCELLED', 'reason', 'cancel requested') ELSE j.error_details END,
    error_recoverable = CASE WHEN t.cancelled THEN false ELSE j.error_recoverable END`,
  message: `CASE WHEN status = 'CANCELLED' THEN 'cancelled on shutdown' ELSE 'released on shutdown' END`,
  finishes: true,
});

/**
 * $2 stalled threshold ms, $3 batch size, $4 error message, $5..$8 the retry policy (initial delay
 * ms, multiplier, max delay ms, jitter). Jobs whose heartbeat stopped go to RETRYING after the same
 * backoff as any failed attempt (a job that crashes its process must not crash every instance at
 * once, again and again), FAILED when out of attempts, or CANCELLED when a cancel was requested.
 */
export const RECOVER_STALLED = transitionSql({
  where: `status = 'PROCESSING'
    AND heartbeat_at < COALESCE($1::timestamptz, now()) - make_interval(secs => $2::double precision / 1000)`,
  tail: `ORDER BY heartbeat_at LIMIT $3`,
  skipLocked: true,
  targetColumns: `CASE WHEN cancel_requested_at IS NOT NULL THEN 'CANCELLED'
    WHEN retry_count + 1 < max_attempts THEN 'RETRYING' ELSE 'FAILED' END AS next`,
  set: `status = t.next::"JobStatus",
    retry_count = CASE WHEN t.next = 'RETRYING' THEN j.retry_count + 1 ELSE j.retry_count END,
    last_retry_at = CASE WHEN t.next = 'RETRYING' THEN clock.now ELSE j.last_retry_at END,
    run_at = CASE WHEN t.next = 'RETRYING' THEN clock.now + make_interval(secs =>
      GREATEST(0, LEAST($5::double precision * power($6::double precision, j.retry_count), $7::double precision)
        * (1 + $8::double precision * (2 * random() - 1))) / 1000) ELSE j.run_at END,
    completed_at = CASE WHEN t.next = 'RETRYING' THEN NULL ELSE clock.now END,
    processing_time_ms = ${DURATION_MS},
    locked_by = NULL, lock_token = NULL, heartbeat_at = NULL,
    error_code = CASE WHEN t.next = 'CANCELLED' THEN 'CANCELLED' ELSE 'STALLED' END,
    error_message = CASE WHEN t.next = 'CANCELLED' THEN 'Cancelled by request' ELSE $4 END,
    error_recoverable = t.next <> 'CANCELLED',
    error_details = jsonb_build_object('category', CASE WHEN t.next = 'CANCELLED' THEN 'CANCELLED' ELSE 'STALLED' END,
      'reason', 'heartbeat stopped', 'lockedBy', j.locked_by)`,
  attempt: `CASE WHEN status = 'RETRYING' THEN retry_count ELSE retry_count + 1 END`,
  message: `'recovered: heartbeat stopped'`,
  audit: { actor: "'system'", action: "job.recovered" },
  finishes: true,
});

/**
 * What ENQUEUE_MANY reads of each job, in the order of its JSON input, with each field's type
 * (`jsonb` fields are taken as they are). `handoff`: the job may be created already claimed for
 * the idle pool named by $4, if it is due.
 */
export const ENQUEUE_FIELDS = {
  id: "uuid",
  type: "text",
  owner: "text",
  assessment_id: "uuid",
  correlation_id: "text",
  schema_version: "text",
  idempotency_key: "text",
  priority: '"JobPriority"',
  priority_rank: "smallint",
  max_attempts: "int",
  run_at: "timestamptz",
  timeout_ms: "int",
  payload: "jsonb",
  metadata: "jsonb",
  handoff: "boolean",
} as const;
export type EnqueueField = keyof typeof ENQUEUE_FIELDS;
export const ENQUEUE_FIELD_ORDER = Object.keys(ENQUEUE_FIELDS) as EnqueueField[];

const ENQUEUE_INPUT = ENQUEUE_FIELD_ORDER.map((name, index) => {
  const type = ENQUEUE_FIELDS[name];
  return type === "jsonb" ? `job->${index} AS ${name}` : `(job->>${index})::${type} AS ${name}`;
}).join(", ");

/** A job created claimed (`handed`) is as CLAIM would leave it: PROCESSING, one revision on, its claim fresh. */
const whenHanded = (value: string) => `CASE WHEN handed THEN ${value} END`;

// A JSON null (a payload JSON.stringify wrote as null: NaN, a function…) is stored as {}, as SQL NULL is.
const ENQUEUE_INSERT = `INSERT INTO processing_jobs (${ENQUEUE_FIELD_ORDER.filter((name) => name !== "handoff").join(", ")},
    created_at, updated_at, status, revision, locked_by, lock_token, started_at, heartbeat_at)
  SELECT id, type, owner, assessment_id, correlation_id, schema_version, idempotency_key, priority,
    priority_rank, max_attempts, GREATEST(COALESCE(run_at, at), at), timeout_ms,
    COALESCE(NULLIF(payload, 'null'), '{}'), COALESCE(NULLIF(metadata, 'null'), '{}'), at, at,
    CASE WHEN handed THEN 'PROCESSING'::"JobStatus" ELSE 'QUEUED'::"JobStatus" END, CASE WHEN handed THEN 2 ELSE 1 END,
    ${whenHanded("$4::text")}, ${whenHanded("gen_random_uuid()")}, ${whenHanded("at")}, ${whenHanded("at")}
  FROM (SELECT input.*, clock.now AS at, handoff AND $4::text IS NOT NULL AND COALESCE(run_at, clock.now) <= clock.now AS handed FROM input, clock) AS i`;

/**
 * $2 the jobs as one JSON array with an array per job: its ENQUEUE_FIELDS in order. $3 actor.
 * $4 the worker id of an idle pool in the caller's process, or NULL.
 *
 * Why this input: with an object per job read by json_to_recordset, parsing the input was a third
 * of the statement (15 to 17 ms per 1,000 jobs, against 5 to 8 ms read this way);
 * one jsonb document, whose fields are then read by position, is parsed once, its payloads
 * included; per-column arrays would make pg escape every string element with regular expressions.
 *
 * Exactly once: a job that carries a unique key (an idempotency key, or an assessment's
 * correlation id and schema version) is inserted with ON CONFLICT DO NOTHING, and the caller
 * re-reads the existing job where nothing was inserted. Keyed jobs are inserted in key order, so
 * that two batches sharing keys wait for each other's keys in the same order rather than deadlock
 * (in input order they could, each holding a key the other needs). Of the jobs of one batch that
 * share a key, the first given is created, as calls one after another would create it (ordered by
 * the key alone, the random correlation ids picked one). A job without a key cannot conflict (its
 * id is a fresh UUIDv7 the caller chose), so it is inserted without the speculative insertion
 * that ON CONFLICT costs on every row. One NOTIFY per statement wakes idle pools when
 * a job waits.
 *
 * Handoff (WorkerPool.offerSlots): a due job marked `handoff` is created already claimed by $4, as
 * CLAIM would leave it, with both JobEvents (created, then QUEUED → PROCESSING) and both changes
 * announced, so that it starts when this statement returns rather than after a NOTIFY and a claim
 * round trip of their own.
 *
 * Returns the creation time every job of the statement shares (epoch milliseconds, as stored), and
 * one JSON document (parsed once, rather than a row per job through pg's parsers): per job created,
 * its id, its stored payload and metadata, and its claim token when it was handed off; the caller
 * knows the rest (a job's run_at is its runAt or its creation, whichever is later). `json`, not
 * `jsonb`: each payload is printed as jsonb prints it (its keys in jsonb's order) and copied into
 * the text, where a jsonb document would take every payload apart into a tree of its own and print
 * it again. With that, and the creation time once instead of two times per job, a 1,000-job
 * statement took 1.7 ms less of its 18 (interleaved, medians of 30 runs each).
 */
export const ENQUEUE_MANY = `WITH ${CLOCK},
input AS (SELECT ${ENQUEUE_INPUT}, position FROM jsonb_array_elements($2::jsonb) WITH ORDINALITY AS jobs(job, position)),
keyed AS (
  ${ENQUEUE_INSERT} WHERE idempotency_key IS NOT NULL OR assessment_id IS NOT NULL
  ORDER BY owner, idempotency_key, CASE WHEN idempotency_key IS NOT NULL THEN position END, assessment_id, correlation_id, schema_version, position
  ON CONFLICT DO NOTHING
  RETURNING *
),
unkeyed AS (
  ${ENQUEUE_INSERT} WHERE idempotency_key IS NULL AND assessment_id IS NULL
  RETURNING *
),
inserted AS (SELECT * FROM keyed UNION ALL SELECT * FROM unkeyed),
events AS (
  INSERT INTO job_events (job_id, from_status, to_status, attempt, progress, message, at)
  SELECT id, NULL::"JobStatus", 'QUEUED'::"JobStatus", 1, NULL::int, 'created', created_at FROM inserted
  UNION ALL
  SELECT id, 'QUEUED', status, 1, progress, NULL, created_at FROM inserted WHERE status = 'PROCESSING'
),
audit AS (
  INSERT INTO audit_events (actor, action, entity_type, entity_id, correlation_id, metadata, at)
  SELECT $3, 'job.created', 'ProcessingJob', id::text, correlation_id, jsonb_build_object('type', type), created_at FROM inserted
),
wake AS (SELECT pg_notify('${JOBS_CHANNEL}', '') FROM (SELECT 1 FROM inserted WHERE status = 'QUEUED' LIMIT 1) AS any_waiting),
changes AS (
  SELECT id, type, owner, 'QUEUED'::"JobStatus" AS status, stage, progress, bytes_done, bytes_total, retry_count, error_code,
    1 AS revision, updated_at, NULL::"JobStatus" AS from_status
  FROM inserted
  UNION ALL
  SELECT id, type, owner, status, stage, progress, bytes_done, bytes_total, retry_count, error_code, revision, updated_at, 'QUEUED'
  FROM inserted WHERE status = 'PROCESSING'
),
${announceChanges("changes", "u.from_status", { twicePerJob: true, newJobs: true })}
SELECT ${epochMilliseconds("(SELECT now FROM clock)::timestamptz(3)")} AS created_at,
  (SELECT json_agg(json_build_array(id, payload, metadata, lock_token)) FROM inserted) AS created,
  (SELECT count(*) FROM wake) AS notified, (SELECT count(*) FROM announced) AS announced`;

/** A timestamptz(3) column as exact epoch milliseconds (a float8 below 2^53). */
function epochMilliseconds(column: string): string {
  return `round(EXTRACT(EPOCH FROM ${column}) * 1000)::float8`;
}

/** $1 idempotency keys, $2 assessment ids, $3 correlation ids, $4 schema versions, $5 owners. */
export const FIND_EXISTING = `SELECT j.* FROM processing_jobs j
JOIN unnest($1::text[], $2::uuid[], $3::text[], $4::text[], $5::text[]) AS k(idempotency_key, assessment_id, correlation_id, schema_version, owner)
  ON (k.idempotency_key IS NOT NULL AND j.owner = k.owner AND j.idempotency_key = k.idempotency_key)
  OR (k.assessment_id IS NOT NULL AND j.assessment_id = k.assessment_id AND j.correlation_id = k.correlation_id
      AND j.schema_version = k.schema_version)`;

/** Wakes idle pools everywhere after something became runnable outside an enqueue. */
export const WAKE_POOLS = `SELECT pg_notify('${JOBS_CHANNEL}', '')`;

export const SELECT_JOB = `SELECT * FROM processing_jobs WHERE id = $1`;
export const SELECT_JOBS = `SELECT * FROM processing_jobs WHERE id = ANY($1::uuid[])`;

/**
 * $1 job ids: their rows, each as one JSON document (queue.ts, findJobRecords), parsed once,
 * natively, instead of 37 columns through pg's type parsers and the row description's 37 names.
 */
export const SELECT_JOB_DOCUMENTS = `SELECT id, row_to_json(j) AS job FROM processing_jobs j WHERE id = ANY($1::uuid[])`;

/** One row per priority, `(VALUES (0), (1), (2))`: for a walk per priority (queue positions, health). */
export const PRIORITY_RANK_ROWS = `(VALUES ${Object.values(PRIORITY_RANK)
  .map((rank) => `(${rank})`)
  .join(", ")})`;

/**
 * Each priority's waiting jobs (rank, run_at and `columns`), in the runnable index, up to the latest
 * run_at that `bounds` (rows of rank and run_at) gives for that priority.
 */
function waitingUpTo(bounds: string, columns: string): string {
  return `(SELECT rank, max(run_at) AS run_at FROM ${bounds} GROUP BY rank) AS reach CROSS JOIN LATERAL (
      SELECT priority_rank AS rank, run_at, ${columns} FROM processing_jobs
      WHERE status IN ('QUEUED', 'RETRYING') AND priority_rank = reach.rank AND run_at <= reach.run_at
    )`;
}

/**
 * $1 job ids, $2 now: for each waiting one, its 1-based place among the jobs claims will take before
 * it; ids that are not waiting (or do not exist) come back with a null position.
 *
 * Claims take due jobs only, highest priority first, then oldest run_at, then id (CLAIM). So the
 * jobs ahead of a job are those of its own priority before it in that order, and those of a higher
 * priority due by the time it is due itself: now (with the claim's half millisecond) for a due
 * job, its run_at for one scheduled later (the count as of that moment, of the jobs known now).
 * A job of a higher priority due tomorrow is not ahead of one due now: counted as ahead, 200,000
 * HIGH jobs retrying after a backoff made a NORMAL job that a claim would take next read as
 * 200,001st, and its estimated start hours away.
 *
 * A whole page in one statement, reading each priority's waiting jobs up to the furthest point the
 * jobs asked about need, at most twice (a page of 20 jobs around 10,000 deep read 200,000 rows when
 * each counted its own): once numbered, for the jobs asked about of that priority, which take their
 * numbers; once with a mark sorted in per job of a lower priority, after the jobs due by its
 * due_by, where one running count gives every mark its count.
 */
export const QUEUE_POSITIONS = `WITH asked AS (
  SELECT id, priority_rank AS rank, run_at, GREATEST(run_at, COALESCE($2::timestamptz, now()) + ${DUE_ALLOWANCE}) AS due_by FROM processing_jobs
  WHERE id = ANY($1::uuid[]) AND status IN ('QUEUED', 'RETRYING')
),
-- Its place in its own priority: that priority's waiting jobs numbered once, up to the latest asked
-- about, and the numbers of those asked about kept (materialized: inlined, a never-analyzed table
-- got it numbered again for each job asked about).
own AS MATERIALIZED (
  SELECT id, place FROM (
    SELECT o.id, row_number() OVER (PARTITION BY o.rank ORDER BY o.run_at, o.id) AS place
    FROM ${waitingUpTo("asked", "id")} AS o
  ) AS numbered
  WHERE id = ANY($1::uuid[])
),
-- A higher priority's jobs due by its due_by: a mark per job asked about and higher priority,
-- sorted in after that priority's jobs due by then, counts them.
marks AS (
  SELECT a.id AS asked, r.rank, a.due_by AS run_at
  FROM asked a JOIN ${PRIORITY_RANK_ROWS} AS r(rank) ON r.rank > a.rank
),
higher AS (
  SELECT asked, count(*) FILTER (WHERE asked IS NULL) OVER (PARTITION BY rank ORDER BY run_at, asked IS NOT NULL ROWS UNBOUNDED PRECEDING) AS ahead
  FROM (
    SELECT o.* FROM ${waitingUpTo("marks", "NULL::uuid AS asked")} AS o
    UNION ALL
    SELECT rank, run_at, asked FROM marks
  ) AS jobs_and_marks
),
ahead_of AS (SELECT asked AS id, sum(ahead) AS ahead FROM higher WHERE asked IS NOT NULL GROUP BY asked),
positions AS (
  SELECT a.id, own.place + COALESCE(ahead_of.ahead, 0) AS position
  FROM asked a JOIN own ON own.id = a.id LEFT JOIN ahead_of ON ahead_of.id = a.id
)
SELECT wanted.id, positions.position
FROM unnest($1::uuid[]) AS wanted(id) LEFT JOIN positions ON positions.id = wanted.id`;

/**
 * $1 now, $2 max age ms, $3 batch size. Deletes one bounded batch of finished jobs with their
 * events; the caller loops until a batch comes back short.
 */
export const DELETE_FINISHED_BATCH = `WITH doomed AS (
  SELECT id FROM processing_jobs
  WHERE completed_at IS NOT NULL AND status IN ('COMPLETED', 'FAILED', 'VALIDATION_FAILED', 'CANCELLED')
    AND completed_at < COALESCE($1::timestamptz, now()) - make_interval(secs => $2::double precision / 1000)
  ORDER BY completed_at
  LIMIT $3
  FOR UPDATE SKIP LOCKED
),
deleted AS (DELETE FROM processing_jobs j USING doomed d WHERE j.id = d.id RETURNING j.id),
-- job_events has no foreign key (it would cost every transition a lookup): its rows go here, found
-- by one probe of its index per deleted job. Joined to the deleted rows instead, a never-analyzed
-- table got a merge join that read every event's index entry: 177 ms per batch at a million jobs.
events AS (DELETE FROM job_events e WHERE e.job_id = ANY(ARRAY(SELECT id FROM deleted))),
-- A validation run's uploaded file goes with its job; the run itself and the file's chunks follow
-- by their foreign keys (ON DELETE CASCADE).
files AS (DELETE FROM validation_files f USING validation_runs r WHERE r.job_id = ANY(ARRAY(SELECT id FROM deleted)) AND f.id = r.file_id)
SELECT count(*)::int AS deleted FROM deleted`;

/**
 * $1 now, $2 max age ms, $3 batch size: uploads that never became a run (the request failed, or
 * the process died while storing it), older than the age given.
 */
export const DELETE_ORPHAN_FILES_BATCH = `DELETE FROM validation_files WHERE id IN (
  SELECT f.id FROM validation_files f
  WHERE f.created_at < COALESCE($1::timestamptz, now()) - make_interval(secs => $2::double precision / 1000)
    AND NOT EXISTS (SELECT 1 FROM validation_runs r WHERE r.file_id = f.id)
  ORDER BY f.created_at
  LIMIT $3
)`;

/**
 * $1 now. Folds the per-minute outcome counters older than two hours into one row per hour: the
 * hour and the minutes around it stay exact, longer windows (a day, a week) are read to the hour,
 * and a week costs about 170 rows per group instead of 10,080. Rows are re-added in key order, like
 * countOutcomes, so this cannot deadlock with the statements counting new outcomes.
 */
export const ROLL_UP_OUTCOME_COUNTS = `WITH moved AS (
  DELETE FROM job_outcome_counts
  WHERE minute < date_trunc('hour', COALESCE($1::timestamptz, now()) - interval '2 hours') AND minute <> date_trunc('hour', minute)
  RETURNING *
)
INSERT INTO job_outcome_counts AS counts
  (minute, type, priority, status, error_code, count, processing_ms_sum, processing_count, queue_us_sum, queue_count)
SELECT date_trunc('hour', minute), type, priority, status, error_code,
  sum(count), sum(processing_ms_sum), sum(processing_count), sum(queue_us_sum), sum(queue_count)
FROM moved
GROUP BY 1, 2, 3, 4, 5
ORDER BY 1, 2, 3, 4, 5
${ADD_TO_OUTCOME_COUNTS}`;

// Outcome counters past the longest window queue health reads (a week, or HEALTH_WINDOW_MS): the
// primary key leads with the minute, so this is a range of the index.
export const DELETE_OLD_OUTCOME_COUNTS = `DELETE FROM job_outcome_counts
  WHERE minute < COALESCE($1::timestamptz, now()) - make_interval(secs => $2::double precision / 1000)`;

/** $1 now, $2 max age ms, $3 batch size: one bounded batch of old audit events (audit_events_at_idx). */
export const DELETE_AUDIT_BATCH = `DELETE FROM audit_events WHERE id IN (
  SELECT id FROM audit_events
  WHERE at < COALESCE($1::timestamptz, now()) - make_interval(secs => $2::double precision / 1000)
  ORDER BY at
  LIMIT $3
)`;
