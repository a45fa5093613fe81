import type { ErrorCategory } from "./error-categories.js";

export interface ValidationFailure {
  /** Path of the invalid input, e.g. "answers.q3". Never the value itself. */
  field: string;
  /** Stable machine code, e.g. "required", "out_of_range". */
  rule: string;
  /** Short explanation safe to show; must not quote the input. */
  reason: string;
}

/** Thrown by a handler when the job's input is invalid: the job ends VALIDATION_FAILED, never retried. */
export class JobValidationError extends Error {
  override name = "JobValidationError";
  constructor(readonly failures: ValidationFailure[], message = `${failures.length} invalid field(s)`) {
    super(message);
  }
}

/** Thrown by a handler when retrying cannot help: the job ends FAILED at once. */
export class PermanentJobError extends Error {
  override name = "PermanentJobError";
  constructor(
    message: string,
    readonly options: { category?: ErrorCategory; details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
  }
}

/** Thrown by a handler to pick the category of a failure that should be retried. */
export class RecoverableJobError extends Error {
  override name = "RecoverableJobError";
  constructor(
    message: string,
    readonly options: { category?: ErrorCategory; details?: Record<string, unknown>; cause?: unknown } = {},
  ) {
    super(message, { cause: options.cause });
  }
}

/**
 * A handler returned a value JSON cannot represent (a BigInt, a cycle) or jsonb cannot store (a NUL
 * character, an unpaired UTF-16 surrogate): running it again would return the same, so the job
 * fails at once, in a category of its own.
 */
export class UnrepresentableResultError extends PermanentJobError {
  override name = "UnrepresentableResultError";
  constructor(reason: string) {
    super(`The handler's result cannot be stored as JSON: ${reason}`, { category: "RESULT_ERROR", details: { reason: "result_not_json" } });
  }
}

/** The reason a job's AbortSignal fired; the pool sets it, classification reads it. */
export class JobAbortReason extends Error {
  override name = "JobAbortReason";
  constructor(readonly kind: "cancel" | "timeout" | "shutdown" | "lost", message: string) {
    super(message);
  }
}
