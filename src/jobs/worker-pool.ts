import { hostname } from "node:os";
import { randomBytes } from "node:crypto";
import type { Logger } from "../logger.js";
import type { HandlerRegistry, JobContext } from "../handlers/registry.js";
import { JobAbortReason } from "./job-errors.js";
import type { JobLifecycle } from "./lifecycle.js";
import { CANCEL_CHANNEL, JOBS_CHANNEL, NotificationListener } from "./notification-listener.js";
import type { Job } from "./types.js";

export interface WorkerPoolOptions {
  lifecycle: JobLifecycle;
  registry: HandlerRegistry;
  logger: Logger;
  /** For the LISTEN connection; without it the pool relies on polling alone. */
  connectionString?: string;
  concurrency: number;
  pollIntervalMs: number;
  heartbeatIntervalMs: number;
  jobTimeoutMs: number;
  shutdownGraceMs: number;
  workerId?: string;
}

interface RunningJob {
  job: Job;
  controller: AbortController;
  done: Promise<void>;
  /** True once the handler settled: the slot is free while its outcome is being written. */
  slotFreed: boolean;
}

// How long a handler may take to settle after its signal fired before the slot is taken back.
const ABORT_SETTLE_MS = 2000;
const CLAIM_ERROR_BACKOFF_MS = 1000;

/**
 * Runs jobs in `concurrency` slots. Claims as many jobs as it has free slots in one statement, wakes
 * on NOTIFY (polls as a fallback), heartbeats what it runs, gives each handler an AbortSignal for
 * cancel, timeout and shutdown, and on stop drains for a grace period then hands back what still
 * runs. Any number of pools, in any number of processes, can share one database.
 */
export class WorkerPool {
  readonly workerId: string;
  /** Every job this pool owns, until its outcome is written. */
  private readonly running = new Map<string, RunningJob>();
  /** Jobs whose handler has not settled yet: what occupies a slot. */
  private busySlots = 0;
  private listener: NotificationListener | null = null;
  private pollTimer: NodeJS.Timeout | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private wakeTimers = new Set<NodeJS.Timeout>();
  private fetching: Promise<void> | null = null;
  private fetchAgain = false;
  private stopping = false;
  private stopped: Promise<void> | null = null;
  private claimFailures = 0;

  constructor(private readonly options: WorkerPoolOptions) {
    this.workerId = options.workerId ?? `${hostname()}:${process.pid}:${randomBytes(3).toString("hex")}`;
  }

  get runningCount(): number {
    return this.running.size;
  }

  runningJobIds(): string[] {
    return [...this.running.keys()];
  }

  async start(): Promise<void> {
    const { connectionString, logger } = this.options;
    if (connectionString) {
      this.listener = new NotificationListener(
        connectionString,
        [JOBS_CHANNEL, CANCEL_CHANNEL],
        (channel, payload) => (channel === CANCEL_CHANNEL ? this.abortJob(payload, "cancel", "Cancelled by request") : this.wake()),
        logger,
        () => this.wake(),
      );
      await this.listener.start();
    }
    this.pollTimer = setInterval(() => this.wake(), this.options.pollIntervalMs);
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), this.options.heartbeatIntervalMs);
    logger.info({ workerId: this.workerId, concurrency: this.options.concurrency, types: this.options.registry.types() }, "worker pool started");
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
        const free = this.options.concurrency - this.busySlots;
        if (free <= 0 || this.stopping) break;
        const jobs = await this.options.lifecycle.claim(this.workerId, this.options.registry.types(), free);
        this.claimFailures = 0;
        for (const job of jobs) this.run(job);
        // A full batch means more may be waiting; a short one means the queue is drained for now.
        if (jobs.length === free) this.fetchAgain = true;
      } while (this.fetchAgain && !this.stopping);
    } catch (error) {
      // Retried after a backoff, not at once.
      this.fetchAgain = false;
      this.claimFailures++;
      this.options.logger.error({ err: error, failures: this.claimFailures }, "claiming jobs failed");
      this.wakeIn(Math.min(CLAIM_ERROR_BACKOFF_MS * this.claimFailures, 30_000));
    }
  }

  private wakeIn(delayMs: number): void {
    const timer = setTimeout(() => {
      this.wakeTimers.delete(timer);
      this.wake();
    }, delayMs);
    timer.unref();
    this.wakeTimers.add(timer);
  }

  private run(job: Job): void {
    const controller = new AbortController();
    const entry: RunningJob = { job, controller, done: Promise.resolve(), slotFreed: false };
    this.running.set(job.id, entry);
    this.busySlots++;
    entry.done = this.execute(entry).finally(() => {
      this.freeSlot(entry);
      if (this.running.get(job.id) === entry) this.running.delete(job.id);
    });
  }

  /**
   * Called as soon as a handler settles: the next claim then runs while this job's outcome is
   * being written, so the two round trips overlap instead of adding up.
   */
  private freeSlot(entry: RunningJob): void {
    if (entry.slotFreed) return;
    entry.slotFreed = true;
    this.busySlots--;
    this.wake();
  }

  private async execute(entry: RunningJob): Promise<void> {
    const { job, controller } = entry;
    const { lifecycle, registry, logger: poolLogger } = this.options;
    const handler = registry.get(job.type)!;
    const logger = poolLogger.child({ jobId: job.id, type: job.type, attempt: job.retryCount + 1 });
    const timeoutMs = job.timeoutMs ?? handler.timeoutMs ?? this.options.jobTimeoutMs;
    const timeout =
      timeoutMs > 0
        ? setTimeout(() => controller.abort(new JobAbortReason("timeout", `Timed out after ${timeoutMs} ms`)), timeoutMs)
        : undefined;
    const signal = controller.signal;
    const context: JobContext = {
      job,
      attempt: job.retryCount + 1,
      signal,
      logger,
      progress: async (stage, percent, bytes) => {
        signal.throwIfAborted();
        const owned = await lifecycle.progress(job.id, this.workerId, {
          stage,
          percent,
          bytesDone: bytes?.bytesDone,
          bytesTotal: bytes?.bytesTotal,
        });
        if (!owned) controller.abort(new JobAbortReason("lost", "This worker no longer owns the job"));
        signal.throwIfAborted();
      },
    };

    try {
      const result = await settleOrAbandon(() => handler.run(job.payload, context), signal);
      this.freeSlot(entry);
      const reason = signal.reason;
      if (reason instanceof JobAbortReason && (reason.kind === "lost" || reason.kind === "shutdown")) return;
      const completed = await lifecycle.complete(job.id, this.workerId, result);
      if (!completed) logger.warn("job finished but its claim was taken over; result discarded");
    } catch (error) {
      this.freeSlot(entry);
      const reason = signal.aborted ? signal.reason : undefined;
      if (reason instanceof JobAbortReason && (reason.kind === "lost" || reason.kind === "shutdown")) {
        logger.info({ reason: reason.kind }, "job stopped without recording a failure");
        return;
      }
      try {
        const outcome = await lifecycle.fail(job, this.workerId, error, reason);
        if (outcome?.status === "RETRYING" && outcome.retryDelayMs !== null) this.wakeIn(outcome.retryDelayMs + 5);
        logger.info({ status: outcome?.status, category: outcome?.error.category }, "job attempt failed");
      } catch (writeError) {
        // The row stays PROCESSING; stalled-job recovery will pick it up.
        logger.error({ err: writeError }, "recording a job failure failed");
      }
    } finally {
      clearTimeout(timeout);
    }
  }

  private abortJob(jobId: string, kind: JobAbortReason["kind"], message: string): void {
    const entry = this.running.get(jobId);
    if (entry && !entry.controller.signal.aborted) entry.controller.abort(new JobAbortReason(kind, message));
  }

  private async heartbeat(): Promise<void> {
    const ids = this.runningJobIds();
    if (ids.length === 0) return;
    try {
      const { owned, cancelRequested } = await this.options.lifecycle.heartbeat(this.workerId, ids);
      for (const id of ids) {
        if (!owned.has(id)) this.abortJob(id, "lost", "This worker no longer owns the job");
        else if (cancelRequested.has(id)) this.abortJob(id, "cancel", "Cancelled by request");
      }
    } catch (error) {
      this.options.logger.warn({ err: error }, "heartbeat failed");
    }
  }

  /**
   * Stops claiming, lets running jobs finish for `graceMs`, then hands back to the queue what still
   * runs (aborting those handlers with a "shutdown" reason).
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
    const { logger, lifecycle } = this.options;
    logger.info({ workerId: this.workerId, running: this.running.size, graceMs }, "worker pool draining");
    await waitAtMost(Promise.all([...this.running.values()].map((entry) => entry.done)), graceMs);
    const leftovers = [...this.running.values()];
    if (leftovers.length > 0) {
      const released = await lifecycle
        .release(this.workerId, leftovers.map((entry) => entry.job.id))
        .catch((error: unknown) => {
          logger.error({ err: error }, "releasing running jobs failed; stalled-job recovery will pick them up");
          return 0;
        });
      for (const entry of leftovers) entry.controller.abort(new JobAbortReason("shutdown", "Worker is shutting down"));
      logger.warn({ released }, "released running jobs back to the queue");
      await waitAtMost(Promise.all(leftovers.map((entry) => entry.done)), ABORT_SETTLE_MS);
    }
    clearInterval(this.heartbeatTimer);
    logger.info({ workerId: this.workerId }, "worker pool stopped");
  }
}

/**
 * Runs the handler; once its signal fires it gets ABORT_SETTLE_MS to settle, after which the slot
 * is taken back and the abort reason stands as its failure.
 */
async function settleOrAbandon<T>(run: () => Promise<T>, signal: AbortSignal): Promise<T> {
  let onAbort: (() => void) | undefined;
  const abandoned = new Promise<never>((_, reject) => {
    onAbort = () => setTimeout(() => reject(signal.reason), ABORT_SETTLE_MS).unref();
    signal.addEventListener("abort", onAbort, { once: true });
  });
  abandoned.catch(() => {});
  try {
    return await Promise.race([Promise.resolve().then(run), abandoned]);
  } finally {
    if (onAbort) signal.removeEventListener("abort", onAbort);
  }
}

async function waitAtMost(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([promise.catch(() => {}), new Promise<void>((resolve) => (timer = setTimeout(resolve, ms)))]);
  clearTimeout(timer);
}
