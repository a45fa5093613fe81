import type pg from "pg";
import type { ProcessingJob } from "../generated/prisma/client.js";
import type { EventBus } from "../events/event-bus.js";
import type { HandlerRegistry } from "../handlers/registry.js";
import { queueHealth, queueStats, type HealthThresholds, type QueueHealth, type QueueStats } from "./health.js";
import { SharedComputation } from "./shared-computation.js";
import { batchedReadsById } from "./statement-batcher.js";
import { THROUGHPUT_RANGES, throughputSeries, type ThroughputRange, type ThroughputSeries } from "./throughput-series.js";
import type { JobLifecycle, JobSelection } from "./lifecycle.js";
import type { Maintenance } from "./maintenance.js";
import type { WorkerPool } from "./worker-pool.js";
import { enqueueJobs, findJob, findJobs, isDue, findJobRecords, queuePosition, queuePositions, type EnqueueInput, type EnqueueOptions, type Queryable } from "./queue.js";
import type { Clock } from "./types.js";
import { InvalidJobInputError, UnknownJobTypeError } from "./enqueue-errors.js";
import { UUID } from "../events/messages.js";

const RECENT_WINDOW_MS = 3600_000;

/** What the API and the tests use of the engine: enqueue, look up, cancel, retry, health. */
export class JobService {
  private readonly sharedHealth: SharedComputation<QueueHealth>;
  private readonly sharedThroughput: Record<ThroughputRange, SharedComputation<ThroughputSeries>>;
  private readonly sharedRecentStats: SharedComputation<QueueStats>;
  private readonly readRecord = batchedReadsById((ids) => findJobRecords(this.deps.pool, ids));

  constructor(
    private readonly deps: {
      pool: pg.Pool;
      lifecycle: JobLifecycle;
      registry: HandlerRegistry;
      events: EventBus;
      maintenance: Maintenance;
      thresholds: HealthThresholds;
      defaultMaxAttempts: number;
      /** How long one health computation serves every caller (0: compute on every call). */
      healthCacheMs: number;
      clock?: Clock;
      /** This process's pool, if it runs one: enqueues hand it jobs while it is idle (offerSlots). */
      workers?: WorkerPool | null;
    },
  ) {
    this.sharedHealth = new SharedComputation(() => queueHealth(this.deps.pool, this.deps.thresholds, this.deps.clock), deps.healthCacheMs);
    const series = (range: ThroughputRange) =>
      new SharedComputation(() => throughputSeries(this.deps.pool, range, this.deps.clock), Math.max(deps.healthCacheMs, THROUGHPUT_RANGES[range].minRefreshMs));
    this.sharedThroughput = { HOUR: series("HOUR"), DAY: series("DAY"), WEEK: series("WEEK") };
    this.sharedRecentStats = new SharedComputation(() => this.stats(RECENT_WINDOW_MS), deps.healthCacheMs);
  }

  /** Validates against the handler registry, then enqueues exactly once per unique key. */
  async enqueue(input: EnqueueInput, actor: string, db: Queryable = this.deps.pool, publish = true) {
    const [result] = await this.enqueueMany([input], actor, db, publish);
    return result!;
  }

  /**
   * Many jobs in one statement (one round trip, one commit): each validated like `enqueue`, all
   * refused together when any is invalid. Results come in the order of `inputs`, each job as the
   * statement left it: PROCESSING when this process's idle pool took it (WorkerPool.offerSlots).
   */
  async enqueueMany(inputs: EnqueueInput[], actor: string, db: Queryable = this.deps.pool, publish = true) {
    const checked = inputs.map((input) => this.checked(input));
    // Handed off only from a statement that commits on its own, whose changes are published here.
    const workers = db === this.deps.pool && publish ? this.deps.workers : null;
    if (!workers) return this.insert(checked, actor, db, publish, {});
    const nowMs = (this.deps.clock?.() ?? new Date()).getTime();
    const due = checked.filter((input) => isDue(input, nowMs)).length;
    // A keyed insert waits on another transaction's equal key until that one ends (ON CONFLICT).
    const waitsOnKeys = checked.some((input) => (input.idempotencyKey ?? null) !== null || (input.assessmentId ?? null) !== null);
    return workers.offerSlots({ wanted: due, waitsOnKeys }, (offer) =>
      this.insert(checked, actor, db, publish, {
        handoff: offer && {
          workerId: offer.workerId,
          slots: offer.slots,
          start: (jobs) => {
            this.deps.lifecycle.handedOff(jobs);
            offer.start(jobs);
          },
        },
        waiting: () => workers.jobsEnqueued(),
      }),
    );
  }

  /** `localPool`: what this process's pool takes part in (EnqueueOptions' handoff and waiting). */
  private async insert(checked: EnqueueInput[], actor: string, db: Queryable, publish: boolean, localPool: Pick<EnqueueOptions, "handoff" | "waiting">) {
    const { events } = this.deps;
    const expected: string[] = [];
    try {
      const results = await enqueueJobs(db, checked, {
        actor,
        defaultMaxAttempts: this.deps.defaultMaxAttempts,
        clock: this.deps.clock,
        publish: publish ? (change) => events.publishJobChange(change) : undefined,
        // Also when the caller publishes, after its transaction commits: a worker can claim the
        // job as soon as it commits, before the caller's publish.
        beforeInsert: (jobIds) => {
          expected.push(...jobIds);
          events.expectCreations(jobIds);
        },
        ...localPool,
      });
      const created = new Set(results.flatMap((result) => (result.created ? [result.job.id] : [])));
      events.settleCreations([...created], expected.filter((jobId) => !created.has(jobId)));
      return results;
    } catch (error) {
      events.settleCreations([], expected);
      throw error;
    }
  }

  private checked(input: EnqueueInput): EnqueueInput {
    const handler = this.deps.registry.get(input.type);
    if (!handler) throw new UnknownJobTypeError(`Unknown job type "${input.type}". Known types: ${this.deps.registry.types().join(", ")}`);
    const problems = handler.validatePayload?.(input.payload) ?? [];
    if (input.maxAttempts !== undefined && (!Number.isInteger(input.maxAttempts) || input.maxAttempts < 1 || input.maxAttempts > 100)) {
      problems.push("maxAttempts must be a whole number from 1 to 100");
    }
    if (input.runAt !== undefined && input.runAt !== null && !isStorableDate(input.runAt)) {
      problems.push("runAt must be a valid date between the years 1 and 9999");
    }
    if (input.assessmentId !== undefined && input.assessmentId !== null && !UUID.test(input.assessmentId)) {
      problems.push("assessmentId must be a UUID");
    }
    // Stored as an int and handed to setTimeout, which fires at once for more than 2^31 − 1 ms; 0 is none.
    if (input.timeoutMs !== undefined && input.timeoutMs !== null && (!Number.isInteger(input.timeoutMs) || input.timeoutMs < 0 || input.timeoutMs > 2_147_483_647)) {
      problems.push("timeoutMs must be a whole number of milliseconds from 0 to 2147483647");
    }
    if (input.idempotencyKey !== undefined && input.idempotencyKey !== null && (input.idempotencyKey.length === 0 || input.idempotencyKey.length > 200)) {
      problems.push("idempotencyKey must be 1 to 200 characters");
    }
    if (problems.length > 0) throw new InvalidJobInputError(problems);
    // The handler's own default holds unless the caller set a value (an `undefined` must not wipe it).
    // An assessment id in the form PostgreSQL stores: its duplicates are found by comparing it.
    // Copied only when something changes: a copy costs about 1.4 µs, over a millisecond per 1,000 jobs.
    const maxAttempts = input.maxAttempts ?? handler.maxAttempts;
    const assessmentId = input.assessmentId?.toLowerCase() ?? input.assessmentId;
    return maxAttempts === input.maxAttempts && assessmentId === input.assessmentId ? input : { ...input, maxAttempts, assessmentId };
  }

  find(id: string, db: Queryable = this.deps.pool) {
    return findJob(db, id);
  }

  /** The jobs of these ids that exist, read a thousand per statement. */
  findMany(ids: readonly string[]) {
    return findJobs(this.deps.pool, ids);
  }

  /**
   * The job's row as Prisma shapes it, for the API's `job(id)`: what frontends poll while a job
   * runs. Through Prisma's client that read cost about three times the CPU of the rest of the
   * request (bench/api-throughput.ts); here the reads that arrive together share one prepared
   * statement and one round trip (and, should that statement fail, its error, as requests sharing
   * a broken connection would).
   */
  findRecord(id: string): Promise<ProcessingJob | null> {
    // A malformed id would fail the whole statement, and with it every read sharing it.
    if (!UUID.test(id)) return Promise.resolve(null);
    return this.readRecord(id.toLowerCase());
  }

  /** The latest progress this instance published of a job it runs (JobLifecycle.publishedProgress). */
  publishedProgress(id: string) {
    return this.deps.lifecycle.publishedProgress(id);
  }

  queuePosition(id: string) {
    return queuePosition(this.deps.pool, id, this.deps.clock);
  }

  /** Positions of many jobs in one statement (a page of a connection); keyed by id. */
  queuePositions(ids: readonly string[]) {
    return queuePositions(this.deps.pool, ids, this.deps.clock);
  }

  /** Who may enqueue `type` through the API; undefined for a type nobody registered. */
  enqueuedBy(type: string): "anyone" | "operators" | undefined {
    const handler = this.deps.registry.get(type);
    return handler ? (handler.enqueuedBy ?? "anyone") : undefined;
  }

  cancel(id: string, actor: string) {
    return this.deps.lifecycle.cancel(id, actor);
  }

  retry(id: string, actor: string) {
    return this.deps.lifecycle.retry(id, actor);
  }

  /** Bulk retry of a selection, at most `limit` jobs (lifecycle.retrySelected). */
  retrySelected(selection: JobSelection, limit: number, actor: string) {
    return this.deps.lifecycle.retrySelected(selection, limit, actor);
  }

  /** Bulk cancel of a selection, at most `limit` jobs (lifecycle.cancelSelected). */
  cancelSelected(selection: JobSelection, limit: number, actor: string) {
    return this.deps.lifecycle.cancelSelected(selection, limit, actor);
  }

  /** Queue health; aggregating a large table is costly, so one computation serves every caller for a moment. */
  health() {
    return this.sharedHealth.get();
  }

  /** Completions and failures per bucket over `range`, for charts; shared like the health (longer for DAY and WEEK). */
  throughput(range: ThroughputRange) {
    return this.sharedThroughput[range].get();
  }

  /**
   * The last hour's figures, for the estimates any user may ask of a waiting job: shared like the
   * health, since each computation counts every waiting and running job.
   */
  recentStats(): Promise<QueueStats> {
    return this.sharedRecentStats.get();
  }

  stats(windowMs: number) {
    return queueStats(this.deps.pool, { windowMs, stalledThresholdMs: this.deps.thresholds.stalledThresholdMs, clock: this.deps.clock });
  }

  cleanup(olderThanMs?: number) {
    return this.deps.maintenance.cleanup(olderThanMs);
  }

  recoverStalled() {
    return this.deps.maintenance.recoverStalled();
  }
}

/** A Date PostgreSQL takes from its ISO form: years 1 to 9999 (JSON writes others as ±YYYYYY). */
function isStorableDate(value: unknown): boolean {
  if (!(value instanceof Date) || !Number.isFinite(value.getTime())) return false;
  const year = value.getUTCFullYear();
  return year >= 1 && year <= 9999;
}
