import type pg from "pg";
import type { Logger } from "../logger.js";
import type { JobLifecycle } from "./lifecycle.js";
import { deleteFinishedJobs, deleteOldAuditEvents, deleteOrphanFiles } from "./retention.js";
import * as sql from "./sql.js";
import type { Clock } from "./types.js";

const DAY_MS = 24 * 3600_000;
const WEEK_MS = 7 * DAY_MS;

export interface MaintenanceOptions {
  pool: pg.Pool;
  lifecycle: JobLifecycle;
  logger: Logger;
  stalledThresholdMs: number;
  stalledCheckIntervalMs: number;
  /** auditMaxAgeMs 0 keeps audit events. */
  retention: { maxAgeMs: number; intervalMs: number; batchSize: number; auditMaxAgeMs: number };
  /** Queue health's longest window: outcome counters older than it (plus a day) are deleted. */
  healthWindowMs: number;
  clock?: Clock;
  /** After finished jobs were deleted, with how many (caches of finished jobs drop their entries). */
  onDeleted?: (count: number) => void;
}

/**
 * Timers for stalled-job recovery and retention. Every instance runs them; both are conditional
 * and SKIP LOCKED, so instances running them at once do the work once.
 */
export class Maintenance {
  private timers: NodeJS.Timeout[] = [];
  private running: Promise<unknown>[] = [];
  /** Aborted by stop(): the deletions end after their current batch. */
  private readonly stopping = new AbortController();

  constructor(private readonly options: MaintenanceOptions) {}

  start(): void {
    const { stalledCheckIntervalMs, retention } = this.options;
    if (stalledCheckIntervalMs > 0) this.every(stalledCheckIntervalMs, () => this.recoverStalled());
    if (retention.intervalMs > 0 && retention.maxAgeMs > 0) this.every(retention.intervalMs, () => this.cleanup());
    if (retention.intervalMs > 0 && retention.auditMaxAgeMs > 0) this.every(retention.intervalMs, () => this.cleanupAudit());
    // Also once at start: minutes that were never folded (the migration's week of them, an import,
    // an instance down for hours) would otherwise cost every health computation until the first
    // interval ends (1 h by default): with a week of a million jobs by the minute, 115 ms per
    // computation in bench/api-latency.ts, against 6 ms folded (and vacuumed).
    if (retention.intervalMs > 0) this.every(retention.intervalMs, () => this.pruneOutcomeCounts(), { atStart: true });
  }

  /**
   * Outcome counters past every health window (src/jobs/health.ts reads a week at most, or
   * HEALTH_WINDOW_MS) are deleted, and minutes older than two hours folded into hours.
   */
  async pruneOutcomeCounts(): Promise<number> {
    const keepMs = Math.max(WEEK_MS, this.options.healthWindowMs) + DAY_MS;
    const now = this.options.clock ? this.options.clock() : null;
    const result = await this.options.pool.query(sql.DELETE_OLD_OUTCOME_COUNTS, [now, keepMs]);
    await this.options.pool.query(sql.ROLL_UP_OUTCOME_COUNTS, [now]);
    return result.rowCount ?? 0;
  }

  recoverStalled() {
    return this.options.lifecycle.recoverStalled(this.options.stalledThresholdMs);
  }

  async cleanup(maxAgeMs = this.options.retention.maxAgeMs): Promise<number> {
    const deleted = await deleteFinishedJobs(this.options.pool, {
      maxAgeMs,
      batchSize: this.options.retention.batchSize,
      clock: this.options.clock,
      signal: this.stopping.signal,
    });
    if (deleted > 0) {
      this.options.logger.info({ deleted, maxAgeMs }, "finished jobs deleted");
      this.options.onDeleted?.(deleted);
    }
    const orphans = await deleteOrphanFiles(this.options.pool, { batchSize: this.options.retention.batchSize, clock: this.options.clock, signal: this.stopping.signal });
    if (orphans > 0) this.options.logger.info({ deleted: orphans }, "uploads that never became a validation run deleted");
    return deleted;
  }

  async cleanupAudit(): Promise<number> {
    const { retention, pool, clock, logger } = this.options;
    if (retention.auditMaxAgeMs <= 0) return 0;
    const deleted = await deleteOldAuditEvents(pool, { maxAgeMs: retention.auditMaxAgeMs, batchSize: retention.batchSize, clock, signal: this.stopping.signal });
    if (deleted > 0) logger.info({ deleted, maxAgeMs: retention.auditMaxAgeMs }, "old audit events deleted");
    return deleted;
  }

  private every(intervalMs: number, task: () => Promise<unknown>, options: { atStart?: boolean } = {}): void {
    let busy = false;
    const runOnce = () => {
      if (busy) return;
      busy = true;
      const run = task()
        .catch((error: unknown) => this.options.logger.error({ err: error }, "maintenance task failed"))
        .finally(() => {
          busy = false;
          this.running = this.running.filter((promise) => promise !== run);
        });
      this.running.push(run);
    };
    const timer = setInterval(runOnce, intervalMs);
    timer.unref();
    this.timers.push(timer);
    if (options.atStart) runOnce();
  }

  async stop(): Promise<void> {
    this.stopping.abort();
    for (const timer of this.timers) clearInterval(timer);
    this.timers = [];
    await Promise.allSettled(this.running);
  }
}
