import type { Logger } from "../logger.js";
import type { Job } from "../jobs/types.js";

export interface ProgressReport {
  bytesDone?: number;
  bytesTotal?: number;
}

export interface JobContext {
  job: Job;
  /** 1 for the first attempt. */
  attempt: number;
  /** Aborted on cancel, timeout, shutdown or lost claim; `signal.reason` says which. */
  signal: AbortSignal;
  logger: Logger;
  /**
   * Publishes the stage and percent (0–100) at once and persists them in the background: reports
   * of one job coalesce (the latest wins; every new stage enters the timeline) and are written in
   * batches, so a handler never waits for a commit. Throws the abort reason once aborted.
   */
  progress(stage: string, percent: number, bytes?: ProgressReport): Promise<void>;
}

/**
 * A job type's code. Throw JobValidationError for invalid input (never retried), PermanentJobError
 * when retrying cannot help, anything else to be retried. Runs at least once: be idempotent.
 */
export interface JobHandler<Payload = unknown, Result = unknown> {
  type: string;
  run(payload: Payload, context: JobContext): Promise<Result>;
  /** Overrides JOB_TIMEOUT_MS for this type. */
  timeoutMs?: number;
  /** Overrides JOB_MAX_ATTEMPTS for this type. */
  maxAttempts?: number;
  /** Checks a payload at enqueue time; returns problems, empty when valid. */
  validatePayload?(payload: unknown): string[];
  /**
   * Who may enqueue this type through the API's enqueueJob (default "anyone"). A type whose jobs
   * act on data the payload names, rather than on the payload itself, should say "operators" and
   * be enqueued by the code that checked that data's owner.
   */
  enqueuedBy?: "anyone" | "operators";
}

export class HandlerRegistry {
  private readonly handlers = new Map<string, JobHandler>();

  register<Payload, Result>(handler: JobHandler<Payload, Result>): this {
    if (!/^[a-z][a-z0-9._-]{0,63}$/.test(handler.type)) {
      throw new Error(`Job type "${handler.type}" must be lower-case letters, digits, '.', '_' or '-'`);
    }
    if (this.handlers.has(handler.type)) throw new Error(`A handler for "${handler.type}" is already registered`);
    this.handlers.set(handler.type, handler as JobHandler);
    return this;
  }

  get(type: string): JobHandler | undefined {
    return this.handlers.get(type);
  }

  types(): string[] {
    return [...this.handlers.keys()].sort();
  }
}
