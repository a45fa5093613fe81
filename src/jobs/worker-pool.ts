import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import type { Logger } from "../logger.js";
import type { HandlerRegistry, JobContext } from "../handlers/registry.js";
import { JobAbortReason, UnrepresentableResultError } from "./job-errors.js";
import type { Claim, JobLifecycle } from "./lifecycle.js";
import { CANCEL_CHANNEL, JOBS_CHANNEL, NotificationListener } from "./notification-listener.js";
import { inClaimOrder, type Job } from "./types.js";

export interface WorkerPoolOptions {
  lifecycle: JobLifecycle;
  registry: HandlerRegistry;
  logger: Logger;
  /** For the LISTEN connection; without it the pool relies on polling alone. */
  connectionString?: string;
  concurrency: number;
  pollIntervalMs: number;
  /**
   * How long at most claims leave the slots offered to an enqueue without unique keys free
   * (offerSlots): ample for its statement's commit and answer, short enough that an enqueue held up
   * (waiting for a connection, say) does not keep the pool from other jobs meanwhile. 0: never.
   */
  handoffReserveMs?: number;
  heartbeatIntervalMs: number;
  jobTimeoutMs: number;
  shutdownGraceMs: number;
  /**
   * Jobs claimed ahead of free slots and held in this process until a slot frees, so that one claim
   * round trip serves several jobs (0: claim only for free slots). They count as PROCESSING from
   * their claim, heartbeat with the rest, go back to the queue at once on shutdown, and are
   * cancelled without starting if asked to. "auto": as many as the slots run in two claim round
   * trips, from the recent run and claim times (see prefetchNow).
   */
  prefetch?: number | "auto";
  /**
   * How long a completion or failure whose write fails (the database is away) is retried before
   * the pool gives up on it and leaves the job to stalled-job recovery. Keep it under the stalled
   * threshold: the job's heartbeat goes on meanwhile, so nobody else runs it.
   */
  outcomeRetryWindowMs?: number;
  workerId?: string;
}

/** Slots of an idle pool offered to one enqueue (WorkerPool.offerSlots). */
export interface SlotOffer {
  workerId: string;
  slots: number;
  /** The jobs the enqueue's statement created claimed by `workerId`: called once, as soon as it returns. */
  start(jobs: Job[]): void;
}

/** One attempt at one job in this pool: the claim that started it and its handler's state. */
interface Attempt {
  job: Job;
  claim: Claim;
  /**
   * Its signal is made only when read (by a handler, or by an abort): making one was 4.4 % of the
   * pool's CPU at concurrency 50 for handlers that never look at it (Node 20).
   */
  controller: AbortController;
  /** Why the attempt was aborted, once it was (as its signal's reason). */
  abortReason: JobAbortReason | undefined;
  /** The handler's promise settled (returned, threw, or finally gave up after an abort). */
  settled: boolean;
  settledPromise: Promise<void>;
  /** The attempt's outcome is written, or nothing more will be written for it. */
  finished: boolean;
  /** The outcome was written while the handler still ran: it ignored its abort signal. */
  abandoned: boolean;
  /** Its failure made the job due again at once: look for work as soon as this attempt is forgotten. */
  retryDue: boolean;
  done: Promise<void>;
  /** Starts the grace period after which the abort reason stands as the attempt's failure. */
  onAbort: () => void;
}

// How long a handler may take to settle after its signal fired before its outcome is written
// without it (the slot stays taken until it does settle).
const ABORT_SETTLE_MS = 2000;
const CLAIM_ERROR_BACKOFF_MS = 1000;
// Automatic prefetch: at most this many per slot, and at least this ceiling for any pool.
const AUTO_PREFETCH_PER_SLOT = 10;
const AUTO_PREFETCH_CEILING = 20;
// Weight of the newest run or claim time in their moving averages.
const TIMING_WEIGHT = 0.1;
const OUTCOME_RETRY_FIRST_DELAY_MS = 50;
const OUTCOME_RETRY_MAX_DELAY_MS = 2000;

/**
 * Runs jobs in `concurrency` slots. Claims as many jobs as it has free slots in one statement, wakes
 * on NOTIFY (polls as a fallback), heartbeats what it runs, gives each handler an AbortSignal for
 * cancel, timeout and shutdown, and on stop aborts, waits a grace period, and hands back what has
 * stopped. Every write for an attempt presents that attempt's claim token. Any number of pools, in
 * any number of processes, can share one database.
 *
 * A slot is taken from the claim until the handler's promise settles, even when the outcome was
 * written earlier (a handler that ignores its abort signal): abandoned handlers can never outnumber
 * the slots, and while one runs, this pool never claims that job again.
 */
export class WorkerPool {
  readonly workerId: string;
  /** Every attempt whose handler still runs or whose outcome is not yet written, by claim token. */
  private readonly attempts = new Map<string, Attempt>();
  /** Attempts whose handler has not settled: what occupies a slot. */
  private busySlots = 0;
  /** Slots offered to enqueues in flight (offerSlots), so that concurrent enqueues are not offered the same slots. */
  private offeredSlots = 0;
  /**
   * Those of the offered slots that claims leave free, for at most handoffReserveMs. A claim while
   * the statement runs (the one its own NOTIFY triggers, for one) would otherwise start later jobs
   * of the same enqueue in the slots its first jobs were created for. Offers to enqueues of jobs
   * with unique keys are not reserved: a keyed insert can wait on another transaction's equal key
   * for as long as that transaction runs.
   */
  private reservedSlots = 0;
  /** Enqueues holding offers, and hand-backs of what they handed off while the pool stopped: the drain waits for them. */
  private readonly offers = new Set<Promise<unknown>>();
  /**
   * The last claim found fewer due jobs than it asked for, and no NOTIFY came while it ran: nothing
   * due waits, as far as this pool knows.
   */
  private queueDrained = false;
  /** NOTIFYs on the jobs channel so far: one that arrives during a claim means it may have missed jobs. */
  private notifications = 0;
  private started = false;
  /**
   * Unsettled attempts by job id (rarely more than one). Looked up on every wake and claim, so a
   * pool of 50 slots does not scan all its attempts for every prefetched job.
   */
  private readonly unsettledByJob = new Map<string, Attempt[]>();
  /** Unsettled attempts whose outcome is written or whose claim was taken over: see jobsStillRunningHere. */
  private readonly lingering = new Set<Attempt>();
  /** Claimed ahead (see `prefetch`), in claim order; not started yet. */
  private readonly prefetched: Job[] = [];
  /** When each claim came back (performance.now()), to place its progress on the database's timeline. */
  private readonly claimedAt = new WeakMap<Job, number>();
  private listener: NotificationListener | null = null;
  private pollTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private wakeTimers = new Set<NodeJS.Timeout>();
  private fetching: Promise<void> | null = null;
  private fetchAgain = false;
  /**
   * Jobs whose cancel was announced while a claim was on its way, and that this pool did not hold:
   * the claim may be the one that took them (a cancel is only requested of a running job, so its
   * NOTIFY can overtake the claim's answer). Checked when that claim's answer arrives.
   */
  private readonly cancelledDuringClaim = new Set<string>();
  private stopping = false;
  private stopped: Promise<void> | null = null;
  private claimFailures = 0;
  /** Moving averages of a handler's run and of a claim's round trip, in ms (NaN until timed). */
  private runMs = Number.NaN;
  private claimMs = Number.NaN;

  constructor(private readonly options: WorkerPoolOptions) {
    this.workerId = options.workerId ?? `${hostname()}:${process.pid}:${randomBytes(3).toString("hex")}`;
  }

  /** Slots in use, and how many of them hold a handler that ignored its abort signal. */
  stats(): { concurrency: number; busySlots: number; prefetched: number; abandonedHandlers: number } {
    let abandonedHandlers = 0;
    for (const attempt of this.attempts.values()) if (attempt.abandoned && !attempt.settled) abandonedHandlers++;
    return { concurrency: this.options.concurrency, busySlots: this.busySlots, prefetched: this.prefetched.length, abandonedHandlers };
  }

  async start(): Promise<void> {
    const { connectionString, logger } = this.options;
    if (connectionString) {
      this.listener = new NotificationListener(
        connectionString,
        [JOBS_CHANNEL, CANCEL_CHANNEL],
        (channel, payload) => (channel === CANCEL_CHANNEL ? this.abortJob(payload, "cancel", "Cancelled by request") : this.jobsWaiting()),
        logger,
        () => this.wake(),
      );
      await this.listener.start();
    }
    // Stopped while its listener connected: the drain is done or under way, and must not be followed by timers.
    if (this.stopping) return;
    this.pollTimer = setInterval(() => this.wake(), this.options.pollIntervalMs);
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), this.options.heartbeatIntervalMs);
    logger.info({ workerId: this.workerId, concurrency: this.options.concurrency, types: this.options.registry.types() }, "worker pool started");
    this.started = true;
    this.wake();
  }

  /**
   * Jobs an enqueue in this process committed are waiting: taken as their NOTIFY would be, at once.
   * The NOTIFY reaches this pool's listener a little later, and until then the pool would still
   * take itself for drained and offer its slots to the next enqueue, whose jobs would then start
   * ahead of these.
   */
  jobsEnqueued(): void {
    if (this.started) this.jobsWaiting();
  }

  /** A NOTIFY: jobs wait that the last claim did not see. */
  private jobsWaiting(): void {
    this.notifications++;
    this.queueDrained = false;
    this.wake();
  }

  /** Looks for work now (also called on NOTIFY, on poll, and when a slot frees up). */
  wake(): void {
    if (this.stopping) return;
    if (this.fetching) {
      this.fetchAgain = true;
      return;
    }
    this.fetching = this.fill().finally(() => {
      this.fetching = null;
      // A wake that arrived after the last claim finished but before this point must not be lost.
      if (this.fetchAgain) this.wake();
    });
  }

  private async fill(): Promise<void> {
    this.fetchAgain = false;
    try {
      do {
        this.fetchAgain = false;
        const prefetch = this.prefetchNow();
        // Claims come in chunks: when a slot is free with nothing to start, or once the local
        // queue is down to half, fill everything up. Topping up one job at a time would cost a
        // round trip per job, which is what prefetching is there to avoid.
        // (A job held back because its earlier attempt still runs here is not ready to start.)
        const ready = this.prefetched.filter((job) => !this.hasUnsettledAttempt(job.id)).length;
        const freeSlots = this.options.concurrency - this.busySlots - this.reservedSlots;
        const idleSlot = freeSlots > 0 && ready === 0;
        if (!idleSlot && ready > prefetch / 2) break;
        const wanted = freeSlots + prefetch - this.prefetched.length;
        if (wanted <= 0 || this.stopping) break;
        const claimStarted = performance.now();
        const notificationsBefore = this.notifications;
        this.cancelledDuringClaim.clear();
        const claimed = await this.options.lifecycle.claim(this.workerId, this.options.registry.types(), wanted, this.jobsStillRunningHere());
        const jobs = this.withoutCancelled(claimed);
        this.claimMs = movingAverage(this.claimMs, performance.now() - claimStarted);
        this.claimFailures = 0;
        if (this.stopping) {
          // Claimed while the drain began: never started, so handed straight back.
          await this.releaseUnstarted(jobs);
          break;
        }
        for (const job of jobs) {
          // Claimed again while an earlier attempt of it still runs here, unknown to this pool
          // (recovered as stalled before a heartbeat told): that attempt is stale, and the new one
          // waits until it settles.
          for (const attempt of this.unsettledByJob.get(job.id) ?? []) this.abort(attempt, "lost", "This attempt's claim was taken over");
        }
        const now = performance.now();
        for (const job of jobs) this.claimedAt.set(job, now);
        this.prefetched.push(...jobs);
        this.startPrefetched();
        // A full batch means more may be waiting; a short one means the queue is drained for now.
        if (claimed.length === wanted) this.fetchAgain = true;
        this.queueDrained = claimed.length < wanted && this.notifications === notificationsBefore;
      } while (this.fetchAgain && !this.stopping);
    } catch (error) {
      // Retried after a backoff, not at once.
      this.fetchAgain = false;
      this.claimFailures++;
      this.options.logger.error({ err: error, failures: this.claimFailures }, "claiming jobs failed");
      this.wakeIn(Math.min(CLAIM_ERROR_BACKOFF_MS * this.claimFailures, 30_000));
    }
  }

  /**
   * Jobs to hold beyond the free slots. Fixed when configured. Automatic otherwise: enough to keep
   * every slot busy through two claim round trips at the recent run time, so that jobs of a few
   * milliseconds are claimed hundreds at a time while jobs of seconds are claimed for free slots
   * alone (holding them here would only keep them from idle pools elsewhere); none until a job has
   * been timed, and at most AUTO_PREFETCH_PER_SLOT per slot. With a fixed 20, no-op jobs ran at
   * 4,900 jobs/s at concurrency 10 and 6,400 at 50 (bench/peers); automatic, 6,900–11,200 and
   * 9,500–13,400.
   */
  private prefetchNow(): number {
    const { prefetch = 0, concurrency } = this.options;
    if (prefetch !== "auto") return prefetch;
    if (Number.isNaN(this.runMs) || Number.isNaN(this.claimMs)) return 0;
    const ceiling = Math.max(AUTO_PREFETCH_CEILING, AUTO_PREFETCH_PER_SLOT * concurrency);
    return Math.min(ceiling, Math.floor((2 * concurrency * this.claimMs) / Math.max(this.runMs, 0.01)));
  }

  private wakeIn(delayMs: number): void {
    const timer = setTimeout(() => {
      this.wakeTimers.delete(timer);
      this.wake();
    }, delayMs);
    timer.unref();
    this.wakeTimers.add(timer);
  }

  /**
   * Lets an enqueue in this process create up to `wanted` jobs already claimed for this pool's free
   * slots (sql.ENQUEUE_MANY's handoff): they start when its statement returns, without a NOTIFY and
   * a claim round trip, which on an idle pool are most of a job's wait. `enqueue` gets the offer,
   * or null when there is none, and must pass what its statement created claimed by this pool to
   * `offer.start` as soon as the statement returns, before anything else can fail: those jobs are
   * committed as running here, and only this pool can run them or hand them back.
   *
   * Slots are offered only while the pool is idle: started, not claiming, nothing claimed ahead,
   * and its last claim found the queue drained, so no due job waits ahead of the new ones as far as
   * this pool knows. A job enqueued elsewhere in the same moment, or a scheduled job that fell due
   * since the last claim, may start after one handed off here, as it may after a racing claim.
   * Claims while the statement runs leave the offered slots free (reservedSlots) for up to
   * handoffReserveMs, unless the enqueue `waitsOnKeys` (it inserts jobs with unique keys). Handed-off
   * jobs start in claim order among the jobs claimed meanwhile; those that find no free slot (a
   * claim took it, or took jobs that come first) go back to the queue at once. Should the
   * statement's answer be lost after its commit, its jobs wait for stalled-job recovery, as a
   * claim's would. `wanted`: the enqueue's due jobs.
   */
  async offerSlots<T>(request: { wanted: number; waitsOnKeys: boolean }, enqueue: (offer: SlotOffer | null) => Promise<T>): Promise<T> {
    const slots = Math.min(request.wanted, this.idleSlots());
    if (slots <= 0) return enqueue(null);
    const reserveMs = this.options.handoffReserveMs ?? 0;
    let reserved = request.waitsOnKeys || reserveMs === 0 ? 0 : slots;
    this.offeredSlots += slots;
    this.reservedSlots += reserved;
    const lapse = () => {
      this.reservedSlots -= reserved;
      reserved = 0;
      this.wake();
    };
    const lapseTimer = reserved > 0 ? setTimeout(lapse, reserveMs) : undefined;
    lapseTimer?.unref();
    let taken = false;
    const settle = () => {
      taken = true;
      clearTimeout(lapseTimer);
      this.offeredSlots -= slots;
      this.reservedSlots -= reserved;
    };
    const offer: SlotOffer = {
      workerId: this.workerId,
      slots,
      start: (jobs) => {
        if (taken) throw new Error("a slot offer's jobs are started once");
        const unused = reserved - jobs.length;
        settle();
        this.startHandedOff(jobs);
        // Slots the claims left free for jobs the statement did not hand off (not due by the
        // database's clock).
        if (unused > 0) this.wake();
      },
    };
    // A synchronous throw settles the offer too (finally, below).
    const enqueued = (async () => enqueue(offer))();
    const settled = enqueued.then(
      () => undefined,
      () => undefined,
    );
    this.offers.add(settled);
    try {
      return await enqueued;
    } finally {
      this.offers.delete(settled);
      if (!taken) {
        settle();
        if (reserved > 0) this.wake();
      }
    }
  }

  private async offersSettled(): Promise<void> {
    while (this.offers.size > 0) await Promise.allSettled([...this.offers]);
  }

  /** Free slots an enqueue would be offered now (offerSlots): none unless the pool is idle. */
  idleSlots(): number {
    const idle = this.started && !this.stopping && !this.fetching && this.prefetched.length === 0 && this.queueDrained;
    return idle ? Math.max(0, this.options.concurrency - this.busySlots - this.offeredSlots) : 0;
  }

  private startHandedOff(jobs: Job[]): void {
    if (jobs.length === 0) return;
    if (this.stopping) {
      // Committed as running here while the pool began to stop: back to the queue, never started.
      this.handBack(jobs);
      return;
    }
    const now = performance.now();
    for (const job of jobs) this.claimedAt.set(job, now);
    // In claim order among what claims brought meanwhile: later jobs of the same enqueue start
    // after these, in the slots reserved for these.
    this.prefetched.push(...jobs);
    this.prefetched.sort(inClaimOrder);
    this.startPrefetched();
    // A claim that ran meanwhile took the free slots, or brought jobs that come first: rather than
    // hold these behind jobs that may run for minutes, back to the queue for any pool (the release
    // wakes them).
    const unstarted = jobs.filter((job) => this.unqueue(job.id));
    if (unstarted.length > 0) this.handBack(unstarted);
  }

  private handBack(jobs: Job[]): void {
    const handedBack = this.releaseUnstarted(jobs);
    this.offers.add(handedBack);
    void handedBack.finally(() => this.offers.delete(handedBack));
  }

  /**
   * Jobs whose earlier attempt still runs here although the job may be claimable again: its outcome
   * is written (a timeout whose handler ignores its signal) or its claim was taken over (recovered as
   * stalled). Other pools may run them; this one waits until that attempt settles. Attempts that
   * still hold their claim need no exclusion: their jobs are PROCESSING.
   */
  private jobsStillRunningHere(): string[] {
    return [...this.lingering].map((attempt) => attempt.job.id);
  }

  /** Starts claimed jobs while slots are free, except those an earlier attempt of which still runs here. */
  private startPrefetched(): void {
    let index = 0;
    while (index < this.prefetched.length && this.busySlots + this.reservedSlots < this.options.concurrency && !this.stopping) {
      const job = this.prefetched[index]!;
      if (this.hasUnsettledAttempt(job.id)) index++;
      else this.run(this.prefetched.splice(index, 1)[0]!);
    }
  }

  private hasUnsettledAttempt(jobId: string): boolean {
    return this.unsettledByJob.has(jobId);
  }

  /** Takes a claimed job that has not started out of the local queue; false when it was not there. */
  private unqueue(jobId: string): Job | null {
    const index = this.prefetched.findIndex((job) => job.id === jobId);
    return index === -1 ? null : this.prefetched.splice(index, 1)[0]!;
  }

  private async releaseUnstarted(jobs: Job[]): Promise<void> {
    if (jobs.length === 0) return;
    await this.options.lifecycle.release(jobs.map((job) => ({ id: job.id, token: job.lockToken! }))).catch((error: unknown) => {
      this.options.logger.error({ err: error }, "handing back jobs that never started failed; stalled-job recovery will pick them up");
    });
  }

  /** A job asked to stop before it started ends at once, as its attempt would have. */
  private async cancelUnstarted(job: Job): Promise<void> {
    const reason = new JobAbortReason("cancel", "Cancelled by request");
    await this.options.lifecycle.fail(job, job.lockToken!, reason, reason).catch((error: unknown) => {
      this.options.logger.error({ err: error, jobId: job.id }, "cancelling a job that never started failed; stalled-job recovery will pick it up");
    });
  }

  private run(job: Job): void {
    const claim: Claim = { id: job.id, token: job.lockToken! };
    // A child logger per job costs more than a no-op job itself: made on first use.
    let jobLogger: Logger | undefined;
    const logger = (): Logger => (jobLogger ??= this.options.logger.child({ jobId: job.id, type: job.type, attempt: job.retryCount + 1 }));
    const controller = new AbortController();
    const attempt: Attempt = {
      job,
      claim,
      controller,
      abortReason: undefined,
      settled: false,
      settledPromise: Promise.resolve(),
      finished: false,
      abandoned: false,
      retryDue: false,
      done: Promise.resolve(),
      onAbort: () => {},
    };
    this.attempts.set(claim.token, attempt);
    const sameJob = this.unsettledByJob.get(job.id);
    if (sameJob) sameJob.push(attempt);
    else this.unsettledByJob.set(job.id, [attempt]);
    this.busySlots++;

    const handler = this.options.registry.get(job.type)!;
    const timeoutMs = job.timeoutMs ?? handler.timeoutMs ?? this.options.jobTimeoutMs;
    const timeout = timeoutMs > 0 ? setTimeout(() => this.abort(attempt, "timeout", `Timed out after ${timeoutMs} ms`), timeoutMs) : undefined;
    const context: JobContext = {
      job,
      attempt: job.retryCount + 1,
      get signal() {
        return controller.signal;
      },
      get logger() {
        return logger();
      },
      // Published at once, written in the background: a handler never waits for a progress commit.
      // A write that finds the claim taken over aborts the attempt.
      progress: async (stage, percent, bytes) => {
        if (attempt.abortReason) throw attempt.abortReason;
        // Work the handler left running after it returned: published now, a report would show the
        // job running again after its outcome (the outcome's write is queued after the handler
        // settled). Not thrown: nobody is left to catch it.
        if (attempt.settled) {
          logger().debug({ stage }, "progress reported after the attempt ended; ignored");
          return;
        }
        const at = new Date((job.startedAt?.getTime() ?? Date.now()) + (performance.now() - (this.claimedAt.get(job) ?? performance.now())));
        this.options.lifecycle.progress(claim, { stage, percent, bytesDone: bytes?.bytesDone, bytesTotal: bytes?.bytesTotal }, { job, at }).then(
          (valid) => {
            if (!valid) this.abort(attempt, "lost", "This attempt's claim was taken over");
          },
          (error: unknown) => logger().warn({ err: error }, "recording progress failed"),
        );
      },
    };
    const runStarted = performance.now();
    const handlerRun = Promise.resolve().then(() => handler.run(job.payload, context));
    attempt.settledPromise = handlerRun.then(
      () => undefined,
      () => undefined,
    );
    void attempt.settledPromise.then(() => {
      this.runMs = movingAverage(this.runMs, performance.now() - runStarted);
      clearTimeout(timeout);
      attempt.settled = true;
      this.lingering.delete(attempt);
      const remaining = this.unsettledByJob.get(job.id)?.filter((other) => other !== attempt);
      if (remaining?.length) this.unsettledByJob.set(job.id, remaining);
      else this.unsettledByJob.delete(job.id);
      this.busySlots--;
      if (attempt.abandoned) logger().warn("an abandoned handler finally settled; its slot is free again");
      this.forgetIfDone(attempt);
      this.startPrefetched();
      // The next claim runs while this outcome is being written, so the round trips overlap.
      this.wake();
    });
    attempt.done = this.execute(attempt, settleOrAbandon(handlerRun, attempt), logger).finally(() => {
      attempt.finished = true;
      if (!attempt.settled) this.lingering.add(attempt);
      this.forgetIfDone(attempt);
    });
  }

  private forgetIfDone(attempt: Attempt): void {
    if (!attempt.settled || !attempt.finished || this.attempts.get(attempt.claim.token) !== attempt) return;
    this.attempts.delete(attempt.claim.token);
    // Until now this pool kept the job out of its claims; a retry due at once need not wait.
    if (attempt.retryDue) this.wake();
  }

  /** `outcome`: the handler's, or its abort reason once it outlived the grace period (settleOrAbandon). */
  private async execute(attempt: Attempt, outcome: Promise<unknown>, logger: () => Logger): Promise<void> {
    const { claim } = attempt;
    const { lifecycle } = this.options;
    let result: unknown;
    try {
      result = await outcome;
    } catch (error) {
      const reason = attempt.abortReason;
      if (reason?.kind === "lost") {
        logger().info("attempt stopped: its claim was taken over");
        return;
      }
      if (reason?.kind === "shutdown") {
        // Handed back only once certainly stopped; one still running keeps its claim, so no other
        // instance can start the job while this one runs it (stalled recovery takes it otherwise).
        await attempt.settledPromise;
        const released = await lifecycle.release([claim]).catch((releaseError: unknown) => {
          logger().error({ err: releaseError }, "handing a job back failed; stalled-job recovery will pick it up");
          return 0;
        });
        if (released) logger().info("job handed back to the queue on shutdown");
        return;
      }
      if (!attempt.settled) {
        attempt.abandoned = true;
        logger().warn({ reason: reason?.kind, graceMs: ABORT_SETTLE_MS }, "handler ignored its abort signal; recording its failure, its slot stays taken until it settles");
      }
      await this.recordFailure(attempt, error, reason, logger);
      return;
    }
    if (attempt.abortReason?.kind === "lost") return;
    // A handler that returned, even after a shutdown or cancel signal, did its work: record it.
    try {
      const completed = await this.persist(() => lifecycle.complete(claim, result), "completion", logger, {
        jobId: claim.id,
        written: (answer) => answer,
      });
      if (completed === false) logger().warn("job finished but its claim was taken over; result discarded");
    } catch (error) {
      if (!(error instanceof UnrepresentableResultError)) throw error;
      await this.recordFailure(attempt, error, undefined, logger);
    }
  }

  private async recordFailure(attempt: Attempt, error: unknown, reason: unknown, logger: () => Logger): Promise<void> {
    const outcome = await this.persist(() => this.options.lifecycle.fail(attempt.job, attempt.claim.token, error, reason), "failure", logger, {
      jobId: attempt.job.id,
      written: (answer) => answer !== null,
    });
    if (outcome?.status === "RETRYING" && outcome.retryDelayMs !== null) {
      if (outcome.retryDelayMs <= 0) attempt.retryDue = true;
      else this.wakeIn(outcome.retryDelayMs + 5);
    }
    if (outcome) logger().debug({ status: outcome.status, category: outcome.error.category }, "job attempt failed");
  }

  /**
   * Writes an attempt's outcome, retrying a failed write (not the handler) with backoff for up to
   * outcomeRetryWindowMs; `undefined` when it gave up. Returns what the lifecycle returned.
   *
   * A write that failed may have committed all the same (the connection broke after the COMMIT,
   * before its answer): the retry then finds the claim gone and writes nothing (`written` says so
   * of its answer), and the outcome, committed by the first try, was never published here. It is
   * read back and published then (Lifecycle.announceCommitted), so that this instance's
   * subscribers still hear it.
   */
  private async persist<T>(
    write: () => Promise<T>,
    what: string,
    logger: () => Logger,
    lostAnswer: { jobId: string; written: (answer: T) => boolean },
  ): Promise<T | undefined> {
    const deadline = Date.now() + (this.options.outcomeRetryWindowMs ?? this.options.heartbeatIntervalMs);
    let delay = OUTCOME_RETRY_FIRST_DELAY_MS;
    let failedBefore = false;
    for (;;) {
      try {
        const answer = await write();
        if (failedBefore && !lostAnswer.written(answer)) {
          await this.options.lifecycle.announceCommitted(lostAnswer.jobId).catch((error: unknown) => {
            logger().warn({ err: error }, `reading back the job after its ${what}'s lost answer failed; its subscribers here may not hear of it`);
          });
        }
        return answer;
      } catch (error) {
        failedBefore = true;
        if (error instanceof UnrepresentableResultError) throw error;
        if (Date.now() + delay > deadline) {
          logger().error({ err: error }, `recording the job's ${what} failed; giving up, stalled-job recovery will run it again`);
          return undefined;
        }
        logger().warn({ err: error, retryInMs: delay }, `recording the job's ${what} failed; retrying the write`);
        await new Promise((resolve) => setTimeout(resolve, delay));
        delay = Math.min(delay * 2, OUTCOME_RETRY_MAX_DELAY_MS);
      }
    }
  }

  /** Every abort goes through here, so the grace period starts with the signal (no listener per job). */
  private abort(attempt: Attempt, kind: JobAbortReason["kind"], message: string): void {
    if (attempt.abortReason) return;
    attempt.abortReason = new JobAbortReason(kind, message);
    attempt.controller.abort(attempt.abortReason);
    if (kind === "lost" && !attempt.settled) this.lingering.add(attempt);
    attempt.onAbort();
  }

  private abortJob(jobId: string, kind: JobAbortReason["kind"], message: string): void {
    const unstarted = kind === "cancel" ? this.unqueue(jobId) : null;
    if (unstarted) void this.cancelUnstarted(unstarted);
    const attempts = this.unsettledByJob.get(jobId) ?? [];
    for (const attempt of attempts) if (!attempt.finished) this.abort(attempt, kind, message);
    if (kind === "cancel" && !unstarted && attempts.length === 0 && this.fetching) this.cancelledDuringClaim.add(jobId);
  }

  /** A claim's jobs less those cancelled while it was on its way, which end CANCELLED without starting. */
  private withoutCancelled(claimed: Job[]): Job[] {
    if (this.cancelledDuringClaim.size === 0) return claimed;
    const cancelled = claimed.filter((job) => this.cancelledDuringClaim.has(job.id));
    this.cancelledDuringClaim.clear();
    for (const job of cancelled) void this.cancelUnstarted(job);
    return cancelled.length === 0 ? claimed : claimed.filter((job) => !cancelled.includes(job));
  }

  private async heartbeat(): Promise<void> {
    const live = [...this.attempts.values()].filter((attempt) => !attempt.finished);
    const waiting = [...this.prefetched];
    if (live.length === 0 && waiting.length === 0) return;
    try {
      const claims = [...live.map((attempt) => attempt.claim), ...waiting.map((job) => ({ id: job.id, token: job.lockToken! }))];
      const { valid, cancelRequested } = await this.options.lifecycle.heartbeat(claims);
      for (const attempt of live) {
        if (attempt.finished) continue;
        if (!valid.has(attempt.claim.token)) this.abort(attempt, "lost", "This attempt's claim was taken over");
        else if (cancelRequested.has(attempt.claim.token)) this.abort(attempt, "cancel", "Cancelled by request");
      }
      for (const job of waiting) {
        if (!valid.has(job.lockToken!)) this.unqueue(job.id);
        else if (cancelRequested.has(job.lockToken!) && this.unqueue(job.id)) void this.cancelUnstarted(job);
      }
    } catch (error) {
      this.options.logger.warn({ err: error }, "heartbeat failed");
    }
  }

  /**
   * Stops claiming, aborts every running handler (reason "shutdown"), waits up to `graceMs` for
   * them to settle, and hands back to the queue the jobs whose handlers stopped. A handler that
   * returned a result anyway is completed. One that has not settled by then keeps its claim.
   */
  stop(graceMs = this.options.shutdownGraceMs): Promise<void> {
    this.stopped ??= this.drain(graceMs);
    return this.stopped;
  }

  private async drain(graceMs: number): Promise<void> {
    this.stopping = true;
    clearInterval(this.pollTimer);
    for (const timer of this.wakeTimers) clearTimeout(timer);
    await this.listener?.close();
    // A claim already under way still hands this pool its jobs; they must be drained too.
    await this.fetching;
    const { logger } = this.options;
    await this.releaseUnstarted(this.prefetched.splice(0));
    const attempts = [...this.attempts.values()];
    logger.info({ workerId: this.workerId, running: attempts.length, graceMs }, "worker pool draining");
    for (const attempt of attempts) this.abort(attempt, "shutdown", "Worker is shutting down");
    // An enqueue holding an offer hands back what it created for this pool (startHandedOff). It may
    // wait on a key another transaction holds, a handler's among them: handlers are told to stop
    // first, and the wait is bounded by the grace period too.
    await waitAtMost(Promise.all([...attempts.map((attempt) => attempt.done), this.offersSettled()]), graceMs);
    const stillRunning = attempts.filter((attempt) => !attempt.settled);
    if (stillRunning.length > 0) {
      logger.warn(
        { jobIds: stillRunning.map((attempt) => attempt.job.id) },
        "handlers did not stop within the grace period; their jobs stay claimed until stalled-job recovery",
      );
    }
    clearInterval(this.heartbeatTimer);
    logger.info({ workerId: this.workerId }, "worker pool stopped");
  }
}

/**
 * The handler's outcome; once the attempt is aborted (attempt.onAbort) it gets ABORT_SETTLE_MS to
 * settle, after which the abort reason stands as its failure (the handler itself may run on).
 */
function settleOrAbandon<T>(run: Promise<T>, attempt: Attempt): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    let settled = false;
    attempt.onAbort = () => {
      if (settled || timer) return;
      timer = setTimeout(() => reject(attempt.abortReason), ABORT_SETTLE_MS);
      timer.unref();
    };
    const settle = () => {
      settled = true;
      clearTimeout(timer);
    };
    run.then(
      (value) => {
        settle();
        resolve(value);
      },
      (error: unknown) => {
        settle();
        reject(error);
      },
    );
  });
}

function movingAverage(average: number, sample: number): number {
  return Number.isNaN(average) ? sample : average + TIMING_WEIGHT * (sample - average);
}

async function waitAtMost(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise.catch(() => {}), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
