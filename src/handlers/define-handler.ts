import type { z } from "zod";
import { JobValidationError, type ValidationFailure } from "../jobs/job-errors.js";
import type { EnqueueInput } from "../jobs/queue.js";
import type { JobContext, JobHandler } from "./registry.js";

export interface HandlerDefinition<Schema extends z.ZodType, Result> {
  /** The job type: lower-case letters, digits, '.', '_' or '-'. */
  type: string;
  /** Validates the payload at enqueue time (invalid → refused with the issues) and again before each run. */
  payload: Schema;
  /** Gets the payload as the schema parsed it (defaults filled, transforms applied). */
  run(payload: z.output<Schema>, context: JobContext): Promise<Result>;
  /** Overrides JOB_TIMEOUT_MS for this type. */
  timeoutMs?: number;
  /** Overrides JOB_MAX_ATTEMPTS for this type. */
  maxAttempts?: number;
  /** Who may enqueue this type through the GraphQL API (default "anyone"). */
  enqueuedBy?: "anyone" | "operators";
}

// `run` takes the payload as stored (unknown) because it parses it itself.
export interface DefinedHandler<Schema extends z.ZodType, Result> extends JobHandler<unknown, Result> {
  readonly payload: Schema;
  validatePayload(payload: unknown): string[];
  /**
   * An enqueue request of this type whose payload the compiler checks:
   * `conveyor.enqueue(sendReport.job({ reportId }), { client })`.
   */
  job(payload: z.input<Schema>, options?: Omit<EnqueueInput, "type" | "payload" | "owner"> & { owner?: string }): JobRequest;
}

/** What `Conveyor.enqueue` takes: an EnqueueInput whose owner defaults to "system". */
export type JobRequest = Omit<EnqueueInput, "owner"> & { owner?: string };

/**
 * A job handler whose payload is a zod schema: enqueue refuses a payload the schema rejects (each
 * issue becomes a problem of the BAD_USER_INPUT error, or of the InvalidJobInputError thrown to
 * library callers), and `run` receives the parsed, typed payload.
 */
export function defineHandler<Schema extends z.ZodType, Result>(definition: HandlerDefinition<Schema, Result>): DefinedHandler<Schema, Result> {
  const { payload: schema, run } = definition;
  return {
    type: definition.type,
    payload: schema,
    timeoutMs: definition.timeoutMs,
    maxAttempts: definition.maxAttempts,
    enqueuedBy: definition.enqueuedBy,
    validatePayload(payload) {
      const parsed = schema.safeParse(payload ?? {});
      return parsed.success ? [] : parsed.error.issues.map((issue) => `${fieldOf(issue.path)}: ${issue.message}`);
    },
    // Parsed again at run time: a job stored before the schema changed, or written by other code,
    // must end VALIDATION_FAILED rather than reach `run` with the wrong shape.
    async run(payload, context) {
      const parsed = schema.safeParse(payload ?? {});
      if (!parsed.success) {
        const failures: ValidationFailure[] = parsed.error.issues.map((issue) => ({ field: fieldOf(issue.path), rule: issue.code, reason: issue.message }));
        throw new JobValidationError(failures);
      }
      return run(parsed.data, context);
    },
    job(payload, options = {}) {
      return { ...options, type: definition.type, payload };
    },
  };
}

function fieldOf(path: readonly PropertyKey[]): string {
  return ["payload", ...path.map((key) => String(key))].join(".");
}
