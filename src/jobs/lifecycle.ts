import type pg from "pg";
import { inTransaction } from "../db/transaction.js";
import type { JobChange } from "../events/messages.js";
import type { Logger } from "../logger.js";
import { classifyError, type ClassifiedError } from "./error-categories.js";
import { UnrepresentableResultError } from "./job-errors.js";
import { hasAttemptsLeft, retryDelayMs, DEFAULT_RETRY_POLICY, type RetryPolicy } from "./retry-policy.js";
import * as sql from "./sql.js";
import { StatementBatcher } from "./statement-batcher.js";
import { storableJson, storableText, unstorableInJson } from "./storable-text.js";
import { ProgressWriter, storedReport, type ProgressBatch, type ProgressReport } from "./progress-writer.js";
import { inClaimOrder, jobFromRow, type Clock, type Job, type JobStatus } from "./types.js";

export interface LifecycleOptions {
  pool: pg.Pool;
  /**
   * Connections for a worker's claims, progress reports and heartbeats; defaults to `pool`. See
   * Database.workerPool for why they may commit asynchronously.
   */
  workerPool?: pg.Pool;
  /**
   * Connections for completions and failures: an outcome is published only once its commit returns,
   * so these must commit durably unless the operator opted out. Defaults to `pool`.
   */
  outcomePool?: pg.Pool;
  logger: Logger;
  /** Called after each committed change; must not throw. */
  publish?: (change: JobChange) => void;
  /**
   * Called with the rows of each committed change (a statement's batch at once), and of progress
   * reports (status and from_status both PROCESSING): claim rows also carry created_at, run_at and
   * started_at, outcome rows processing_time_ms. For counters (src/server/metrics.ts); must be cheap.
   */
  observe?: (rows: readonly Record<string, unknown>[]) => void;
  retryPolicy?: RetryPolicy;
  clock?: Clock;
  /** [0, 1) source for retry jitter; injectable for tests. */
  random?: () => number;
  /** How long a retry's or cancel's statement waits for a row another session holds (default 5 s). */
  actionLockTimeoutMs?: number;
}

/**
 * A retry or cancel gave up on a lock (most often a job's row) another session held longer than
 * JOB_ACTION_LOCK_TIMEOUT_MS. The statement that waited changed nothing; the action's earlier
 * steps, if any, stay committed. Worth trying again, unlike a job in the wrong state.
 */
export class JobsHeldError extends Error {
  override name = "JobsHeldError";
  /** What the action's earlier steps changed (committed and published) before this one gave up. */
  done: { changed: string[]; cancelRequested: string[] } = { changed: [], cancelRequested: [] };
}

/** Jobs chosen by what they are rather than by id (the API's JobFilter); absent fields do not filter. */
export interface JobSelection {
  statuses?: readonly JobStatus[];
  type?: string;
  owner?: string;
  assessmentId?: string;
  createdAfter?: Date;
  createdBefore?: Date;
}

/** $1..$6 of sql.CHOOSE_*, the selection; its first, the statuses, is also $4 of the *_CHOSEN statements. */
function selectionValues(selection: JobSelection): unknown[] {
  return [
    selection.statuses?.length ? selection.statuses : null,
    selection.type ?? null,
    selection.owner ?? null,
    selection.assessmentId ?? null,
    selection.createdAfter ?? null,
    selection.createdBefore ?? null,
  ];
}

export type CancelOutcome =
  | { outcome: "cancelled"; change: JobChange }
  | { outcome: "requested" }
  | { outcome: "not-cancellable" };

export interface FailureOutcome {
  status: JobStatus;
  error: ClassifiedError;
  retryDelayMs: number | null;
}

/** A worker's hold on one running job: the job's id and the token its claim received. */
export interface Claim {
  id: string;
  token: string;
}

interface Completion {
  id: string;
  token: string;
  result: string;
}

interface Failure {
  id: string;
  token: string;
  status: JobStatus;
  delayMs: number;
  error: ClassifiedError;
}

/**
 * The one place a job changes state. Each method runs one conditional statement from sql.ts and
 * publishes what changed once it is committed (durably, for outcomes). Worker-side methods take the
 * claim's token, not the worker's id: a caller whose claim was taken over (the job was recovered,
 * perhaps re-claimed by the same worker) gets `false`/`null` back and must not act on the job again.
 */
export class JobLifecycle {
  private readonly pool: pg.Pool;
  private readonly workerPool: pg.Pool;
  private readonly outcomePool: pg.Pool;
  private readonly logger: Logger;
  private readonly publish: (change: JobChange) => void;
  private readonly observe?: (rows: readonly Record<string, unknown>[]) => void;
  readonly retryPolicy: RetryPolicy;
  private readonly clock?: Clock;
  private readonly random: () => number;
  private readonly actionLockTimeoutMs: number;
  // Outcomes arriving together are written in one statement and one durable commit each way.
  private readonly completions = new StatementBatcher<Completion, boolean>((items) => this.writeCompletions(items));
  private readonly failures = new StatementBatcher<Failure, JobStatus | null>((items) => this.writeFailures(items));
  private readonly progressWriter = new ProgressWriter((batch) => this.writeProgress(batch));
  /**
   * The latest progress published of each job running here (its row, made a JobChange only when a
   * subscriber asks), until its attempt's outcome is written.
   */
  private readonly latestProgress = new Map<string, Record<string, unknown>>();

  constructor(options: LifecycleOptions) {
    this.pool = options.pool;
    this.workerPool = options.workerPool ?? options.pool;
    this.outcomePool = options.outcomePool ?? options.pool;
    this.logger = options.logger;
    this.publish = options.publish ?? (() => {});
    this.observe = options.observe;
    this.retryPolicy = options.retryPolicy ?? DEFAULT_RETRY_POLICY;
    this.clock = options.clock;
    this.random = options.random ?? Math.random;
    this.actionLockTimeoutMs = options.actionLockTimeoutMs ?? 5000;
    // Interpolated into SET LOCAL: a hand-built Config skips loadConfig's bounds (0 would mean no limit).
    if (!Number.isInteger(this.actionLockTimeoutMs) || this.actionLockTimeoutMs < 1) {
      throw new RangeError(`actionLockTimeoutMs must be a whole number of milliseconds from 1, not ${this.actionLockTimeoutMs}`);
    }
  }

  now(): Date | null {
    return this.clock ? this.clock() : null;
  }

  /**
   * QUEUED/RETRYING → PROCESSING for up to `limit` runnable jobs of the given types, except those in
   * `excludedIds`. Each returned job carries its claim's `lockToken`.
   */
  async claim(workerId: string, types: string[], limit: number, excludedIds: string[] = []): Promise<Job[]> {
    if (limit <= 0 || types.length === 0) return [];
    const { rows } = await this.workerPool.query(claimStatement(this.now(), workerId, types, limit, excludedIds));
    this.announce(rows);
    // In claim order (the statement returns its rows in no promised order), so that the pool starts
    // them in it: equal jobs in the order they were enqueued, their ids being time-ordered.
    return rows.map(jobFromRow).sort(inClaimOrder);
  }

  /**
   * Jobs an enqueue created already claimed for an idle pool here (sql.ENQUEUE_MANY's handoff): their
   * creation as QUEUED (revision 1), then their QUEUED → PROCESSING change, published and observed
   * as a claim's, in the order the statement wrote them.
   */
  handedOff(jobs: readonly Job[]): void {
    for (const job of jobs) this.publishSafely(changeOf({ ...job, status: "QUEUED", revision: 1 }, null));
    this.announce(
      jobs.map((job) => ({
        ...changeRow(job, "QUEUED"),
        created_at: job.createdAt,
        run_at: job.runAt,
        started_at: job.startedAt,
      })),
    );
  }

  /**
   * Stage and percent of a running job. With `job`, the change is published at once; the write is
   * coalesced and batched (ProgressWriter) and the promise tells, once written, whether the claim was
   * still valid. `at` places the report on the database's timeline (the claim's start time plus the
   * time since, on the worker's clock).
   */
  progress(claim: Claim, report: ProgressReport, options: { job?: Pick<Job, "type" | "owner" | "retryCount" | "revision">; at?: Date } = {}): Promise<boolean> {
    const at = options.at ?? this.now() ?? new Date();
    const stored = storedReport(report);
    const written = this.progressWriter.report(claim, stored, at);
    if (options.job) {
      const row = {
        id: claim.id,
        type: options.job.type,
        owner: options.job.owner,
        status: "PROCESSING",
        from_status: "PROCESSING",
        stage: stored.stage,
        progress: stored.percent,
        bytes_done: stored.bytesDone,
        bytes_total: stored.bytesTotal,
        retry_count: options.job.retryCount,
        error_code: null,
        revision: options.job.revision,
        updated_at: at,
      };
      this.announce([row]);
      this.latestProgress.set(claim.id, row);
    }
    return written;
  }

  /**
   * The latest progress published of a job running here. Published before it is written, it may be
   * newer than the job as read: a subscriber that started listening just after it was published,
   * and read the job before it was written, would otherwise not see it until the job's next change.
   */
  publishedProgress(jobId: string): JobChange | null {
    const row = this.latestProgress.get(jobId);
    return row ? toChange(row) : null;
  }

  private async writeProgress(batch: ProgressBatch): Promise<Set<string>> {
    const { latest } = batch;
    const { rows } = await this.workerPool.query<{ token: string }>({
      name: "conveyor-progress",
      text: sql.PROGRESS_MANY,
      values: [
        this.now(),
        uuidArray(latest.map((report) => report.id)),
        uuidArray(latest.map((report) => report.token)),
        latest.map((report) => report.stage),
        latest.map((report) => report.percent),
        latest.map((report) => report.bytesDone),
        latest.map((report) => report.bytesTotal),
        // Each job's new stages as one JSON array (sql.PROGRESS_MANY), in StageReached's shape.
        latest.map((report) => (report.stages.length > 0 ? JSON.stringify(report.stages) : null)),
      ],
    });
    return new Set(rows.map((row) => row.token));
  }

  /**
   * PROCESSING → COMPLETED. Completions arriving together are written in one statement and one
   * durable commit; each is still guarded by its own claim, so a stale attempt cannot complete.
   * Throws UnrepresentableResultError at once (nothing written) for a result JSON cannot hold.
   */
  complete({ id, token }: Claim, result: unknown): Promise<boolean> {
    const serialized = serializeResult(result);
    return this.completions.add({ id, token, result: serialized });
  }

  private async writeCompletions(items: Completion[]): Promise<boolean[]> {
    // A job's progress is written before its outcome, so its timeline keeps every stage.
    await this.progressWriter.drain();
    this.forgetProgress(items);
    const { rows } = await this.outcomePool.query(
      completeStatement(this.now(), uuidArray(items.map((item) => item.id)), uuidArray(items.map((item) => item.token)), items.map((item) => item.result)),
    );
    this.announce(rows);
    const completed = new Set(rows.map((row) => row.id as string));
    return items.map((item) => completed.has(item.id));
  }

  /**
   * Publishes a job's state as committed, unless it is running: for an outcome whose statement's
   * answer was lost after its commit (WorkerPool.persist). Only what durable transactions write is
   * published (a claim commits asynchronously: visible before it is flushed), and a subscriber
   * drops a revision it already has (isStale), so a state published before is not shown twice.
   * Not observed (metrics): the instance that wrote it may have counted it.
   */
  async announceCommitted(jobId: string): Promise<void> {
    const { rows } = await this.pool.query(sql.SELECT_JOB, [jobId]);
    const job = rows[0] ? jobFromRow(rows[0]) : null;
    if (job && job.status !== "PROCESSING") this.publishSafely(changeOf(job, "PROCESSING"));
  }

  /**
   * PROCESSING → RETRYING (recoverable, attempts left), FAILED, VALIDATION_FAILED or CANCELLED,
   * by the retry policy; CANCELLED whatever happened when a cancel was requested meanwhile. Returns
   * null when the caller's claim is no longer valid.
   */
  async fail(job: Pick<Job, "id" | "retryCount" | "maxAttempts">, token: string, thrown: unknown, abortReason?: unknown): Promise<FailureOutcome | null> {
    const error = classifyError(thrown, abortReason);
    const status: JobStatus = error.validation
      ? "VALIDATION_FAILED"
      : error.category === "CANCELLED"
        ? "CANCELLED"
        : error.recoverable && hasAttemptsLeft(job.retryCount, job.maxAttempts)
          ? "RETRYING"
          : "FAILED";
    const delay = status === "RETRYING" ? retryDelayMs(job.retryCount, this.retryPolicy, this.random) : null;
    const stored = await this.failures.add({ id: job.id, token, status, delayMs: delay ?? 0, error });
    if (stored === null) return null;
    return { status: stored, error, retryDelayMs: stored === "RETRYING" ? delay : null };
  }

  private async writeFailures(items: Failure[]): Promise<(JobStatus | null)[]> {
    await this.progressWriter.drain();
    this.forgetProgress(items);
    const { rows } = await this.outcomePool.query({
      name: "conveyor-fail",
      text: sql.FAIL_MANY,
      values: [
        this.now(),
        uuidArray(items.map((item) => item.id)),
        uuidArray(items.map((item) => item.token)),
        items.map((item) => item.status),
        items.map((item) => item.delayMs),
        items.map((item) => item.error.category),
        items.map((item) => storableText(item.error.message)),
        items.map((item) => storableJson(JSON.stringify(item.error.details))),
        items.map((item) => item.error.recoverable),
      ],
    });
    this.announce(rows);
    const stored = new Map(rows.map((row) => [row.id as string, row.status as JobStatus]));
    return items.map((item) => stored.get(item.id) ?? null);
  }

  /** Marks claimed jobs alive. Returns the tokens still valid, and those whose job was asked to stop. */
  async heartbeat(claims: Claim[]): Promise<{ valid: Set<string>; cancelRequested: Set<string> }> {
    if (claims.length === 0) return { valid: new Set(), cancelRequested: new Set() };
    const { rows } = await this.workerPool.query<{ token: string; cancel_requested: boolean }>({
      name: "conveyor-heartbeat",
      text: sql.HEARTBEAT,
      values: [this.now(), uuidArray(claims.map((claim) => claim.id)), uuidArray(claims.map((claim) => claim.token))],
    });
    return {
      valid: new Set(rows.map((row) => row.token)),
      cancelRequested: new Set(rows.filter((row) => row.cancel_requested).map((row) => row.token)),
    };
  }

  /** QUEUED/RETRYING → CANCELLED at once; a running job is asked to stop through its pool. */
  async cancel(jobId: string, actor: string): Promise<CancelOutcome> {
    const { rows } = await this.waitingForHeldRows(sql.CANCEL_WAITING, [this.now(), jobId, actor]);
    this.announce(rows);
    if (rows[0]) return { outcome: "cancelled", change: toChange(rows[0]) };
    const requested = await this.waitingForHeldRows(sql.REQUEST_CANCEL, [this.now(), jobId, actor]);
    return requested.rowCount ? { outcome: "requested" } : { outcome: "not-cancellable" };
  }

  /** FAILED/VALIDATION_FAILED/CANCELLED → QUEUED with its attempts reset; null when not in those states. */
  async retry(jobId: string, actor: string): Promise<JobChange | null> {
    const { rows } = await this.waitingForHeldRows(sql.RETRY_BY_HAND, [this.now(), jobId, actor]);
    this.announce(rows);
    if (rows[0]) await this.pool.query(sql.WAKE_POOLS);
    return rows[0] ? toChange(rows[0]) : null;
  }

  /**
   * FAILED/VALIDATION_FAILED/CANCELLED → QUEUED for up to `limit` jobs of `selection`, oldest first;
   * each change is published once it is committed. `limitReached`: `limit` jobs were chosen, so
   * more may match.
   */
  async retrySelected(selection: JobSelection, limit: number, actor: string): Promise<{ retried: JobChange[]; limitReached: boolean }> {
    const values = selectionValues(selection);
    const chosen = await this.choose(sql.CHOOSE_RETRYABLE, values, limit);
    if (chosen.length === 0) return { retried: [], limitReached: false };
    const { rows } = await this.waitingForHeldRows(sql.RETRY_CHOSEN, [this.now(), actor, chosen, values[0]]);
    this.announce(rows);
    if (rows.length) await this.pool.query(sql.WAKE_POOLS);
    return { retried: rows.map(toChange), limitReached: chosen.length >= limit };
  }

  /**
   * Cancels up to `limit` jobs of `selection`, oldest first: waiting ones at once (published once
   * committed; one a claim started meanwhile is asked to stop instead), then, within what is left
   * of `limit`, running ones are asked to stop.
   */
  async cancelSelected(selection: JobSelection, limit: number, actor: string): Promise<{ cancelled: JobChange[]; requested: string[]; limitReached: boolean }> {
    const values = selectionValues(selection);
    const waiting = await this.choose(sql.CHOOSE_WAITING, values, limit);
    let cancelled: JobChange[] = [];
    const requested: string[] = [];
    try {
      if (waiting.length > 0) {
        const { rows } = await this.waitingForHeldRows(sql.CANCEL_CHOSEN_WAITING, [this.now(), actor, waiting, values[0]]);
        this.announce(rows);
        cancelled = rows.map(toChange);
        const done = new Set(cancelled.map((change) => change.jobId));
        requested.push(...(await this.requestCancel(waiting.filter((id) => !done.has(id)), actor)));
      }
      if (waiting.length >= limit) return { cancelled, requested, limitReached: true };
      const running = await this.choose(sql.CHOOSE_RUNNING, values, limit - waiting.length);
      requested.push(...(await this.requestCancel(running, actor)));
      return { cancelled, requested, limitReached: waiting.length + running.length >= limit };
    } catch (error) {
      if (error instanceof JobsHeldError) error.done = { changed: cancelled.map((change) => change.jobId), cancelRequested: [...requested] };
      throw error;
    }
  }

  /** The ids of at most `limit` jobs of a selection (sql.CHOOSE_*), oldest first. */
  private async choose(statement: string, values: unknown[], limit: number): Promise<string[]> {
    const { rows } = await this.pool.query<{ id: string }>(statement, [...values, limit]);
    return rows.map((row) => row.id);
  }

  /** Asks those of `ids` that run to stop; returns them. */
  private async requestCancel(ids: string[], actor: string): Promise<string[]> {
    if (ids.length === 0) return [];
    const { rows } = await this.waitingForHeldRows<{ id: string }>(sql.REQUEST_CANCEL_CHOSEN, [this.now(), actor, ids]);
    return rows.map((row) => row.id);
  }

  /**
   * A retry's or cancel's statement, which locks its jobs' rows and waits for those another
   * statement holds: every holder inside Conveyor is one short statement, but a session outside it
   * (an operator's psql with a transaction left open) could hold one for hours, and the request
   * (for a bulk action, with every row it had locked) with it. lock_timeout bounds each such wait
   * (any lock the statement needs: the row, an outcome counter, a table a migration alters); the
   * statement then changes nothing.
   */
  private async waitingForHeldRows<Row extends pg.QueryResultRow = Record<string, unknown>>(text: string, values: unknown[]): Promise<pg.QueryResult<Row>> {
    try {
      return await inTransaction(this.pool, async (client) => {
        await client.query(`SET LOCAL lock_timeout = ${this.actionLockTimeoutMs}`);
        return client.query<Row>(text, values);
      });
    } catch (error) {
      if ((error as { code?: string }).code === "55P03") {
        throw new JobsHeldError(`waited over ${this.actionLockTimeoutMs} ms for a lock another session holds (most often the job's row)`);
      }
      throw error;
    }
  }

  /** PROCESSING → QUEUED for claims a worker gives back on shutdown; the attempt does not count. */
  async release(claims: Claim[]): Promise<number> {
    if (claims.length === 0) return 0;
    await this.progressWriter.drain();
    this.forgetProgress(claims);
    const { rows } = await this.pool.query(sql.RELEASE, [this.now(), claims.map((claim) => claim.id), claims.map((claim) => claim.token)]);
    this.announce(rows);
    if (rows.length) await this.pool.query(sql.WAKE_POOLS);
    return rows.length;
  }

  /** PROCESSING with no heartbeat for `thresholdMs` → RETRYING or FAILED. Returns how many moved. */
  async recoverStalled(thresholdMs: number, batchSize = 500): Promise<JobChange[]> {
    const recovered: JobChange[] = [];
    for (;;) {
      const { rows } = await this.pool.query(sql.RECOVER_STALLED, [
        this.now(),
        thresholdMs,
        batchSize,
        "The worker stopped sending heartbeats",
        this.retryPolicy.initialDelayMs,
        this.retryPolicy.multiplier,
        this.retryPolicy.maxDelayMs,
        this.retryPolicy.jitter,
      ]);
      this.announce(rows);
      recovered.push(...rows.map(toChange));
      if (rows.length < batchSize) break;
    }
    if (recovered.length > 0) {
      this.logger.warn({ count: recovered.length, jobIds: recovered.map((change) => change.jobId) }, "stalled jobs recovered");
      if (recovered.some((change) => change.status === "RETRYING")) await this.pool.query(sql.WAKE_POOLS);
    }
    return recovered;
  }

  /** These attempts are over: nothing more will be reported under their claims. */
  private forgetProgress(claims: readonly Claim[]): void {
    for (const claim of claims) {
      this.progressWriter.forget(claim.token);
      this.latestProgress.delete(claim.id);
    }
  }

  private announce(rows: Record<string, unknown>[]): void {
    for (const row of rows) this.publishSafely(toChange(row));
    if (this.observe && rows.length > 0) {
      try {
        this.observe(rows);
      } catch (error) {
        // The change is committed whatever an observer does with it.
        this.logger.error({ err: error }, "observing job changes failed");
      }
    }
  }

  private publishSafely(change: JobChange): void {
    try {
      this.publish(change);
    } catch (error) {
      this.logger.error({ err: error, jobId: change.jobId }, "publishing a job change failed");
    }
  }
}

/** sql.CLAIM, named: each connection parses it once (warm-connections.ts does it at start-up). A `limit` of 0 claims nothing. */
export function claimStatement(now: Date | null, workerId: string, types: string[], limit: number, excludedIds: string[]): pg.QueryConfig {
  return { name: "conveyor-claim", text: sql.CLAIM, values: [now, workerId, types, limit, excludedIds] };
}

/** sql.COMPLETE_MANY, named like claimStatement; `ids` and `tokens` as uuidArray literals ("{}" completes nothing). */
export function completeStatement(now: Date | null, ids: string, tokens: string, results: string[]): pg.QueryConfig {
  return { name: "conveyor-complete", text: sql.COMPLETE_MANY, values: [now, ids, tokens, results] };
}

/**
 * A uuid[] parameter as PostgreSQL's array literal. pg quotes and escapes every element of a string
 * array with two regular expressions, which showed as 5 % of the engine's time at concurrency 50;
 * ids and claim tokens come from the database and are always bare uuids, which need neither.
 */
function uuidArray(values: readonly string[]): string {
  return `{${values.join(",")}}`;
}

/** The JSON text of a result, or UnrepresentableResultError: jsonb also refuses NUL and unpaired surrogates. */
function serializeResult(result: unknown): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(result ?? null);
  } catch (error) {
    const message = error instanceof Error ? error.message : "";
    throw new UnrepresentableResultError(/circular/i.test(message) ? "it contains a cycle" : /BigInt/i.test(message) ? "it contains a BigInt" : "serializing it threw");
  }
  if (text === undefined) return "null";
  const unstorable = unstorableInJson(text);
  if (unstorable) throw new UnrepresentableResultError(`it contains ${unstorable}`);
  return text;
}

export function toChange(row: Record<string, unknown>): JobChange {
  return {
    jobId: row.id as string,
    type: row.type as string,
    owner: row.owner as string,
    status: row.status as JobStatus,
    previousStatus: (row.from_status as JobStatus | null) ?? null,
    stage: (row.stage as string | null) ?? null,
    progress: row.progress as number,
    bytesDone: (row.bytes_done as number | null) ?? null,
    bytesTotal: (row.bytes_total as number | null) ?? null,
    retryCount: row.retry_count as number,
    errorCode: (row.error_code as string | null) ?? null,
    revision: row.revision as number,
    at: isoTime(row.updated_at as Date),
  };
}

// A batch's changes share one time (its statement's clock), and toISOString costs 2 µs a call.
let lastIsoTime = { ms: Number.NaN, text: "" };

function isoTime(date: Date): string {
  const ms = date.getTime();
  if (ms !== lastIsoTime.ms) lastIsoTime = { ms, text: date.toISOString() };
  return lastIsoTime.text;
}

/** A job's current state, and the state it left, as the columns toChange reads. */
function changeRow(job: Job, previousStatus: JobStatus | null): Record<string, unknown> {
  return {
    id: job.id,
    from_status: previousStatus,
    type: job.type,
    owner: job.owner,
    status: job.status,
    stage: job.stage,
    progress: job.progress,
    bytes_done: job.bytesDone,
    bytes_total: job.bytesTotal,
    retry_count: job.retryCount,
    error_code: job.errorCode,
    revision: job.revision,
    updated_at: job.updatedAt,
  };
}

/** The change a job in its current state announces (for jobs created inside a caller's transaction). */
export function changeOf(job: Job, previousStatus: JobStatus | null): JobChange {
  return toChange(changeRow(job, previousStatus));
}
