import { MESSAGES, translate, type MessageKey } from "../i18n/messages.js";
import type { Locale } from "../i18n/locale.js";
import { JobAbortReason, JobValidationError, PermanentJobError, RecoverableJobError } from "./job-errors.js";
import { redactDetails, scrubText } from "./redaction.js";

export const ERROR_CATEGORIES = [
  "VALIDATION_ERROR",
  "TIMEOUT",
  "CANCELLED",
  "STALLED",
  "FILE_ERROR",
  "NETWORK_ERROR",
  "QUEUE_ERROR",
  "WORKER_ERROR",
  "PERMANENT_ERROR",
  "RESULT_ERROR",
] as const;
export type ErrorCategory = (typeof ERROR_CATEGORIES)[number];

export const MAX_ERROR_MESSAGE_LENGTH = 1000;

export interface ClassifiedError {
  category: ErrorCategory;
  /** Short, scrubbed, truncated: safe to store and to show an operator. */
  message: string;
  /** Redacted structured details, for operators only. */
  details: Record<string, unknown>;
  recoverable: boolean;
  /** VALIDATION_FAILED rather than FAILED. */
  validation: boolean;
}

const FILE_ERROR_CODES = new Set(["ENOENT", "EACCES", "EISDIR", "ENOTDIR", "EMFILE", "ENFILE", "ENOSPC", "EROFS", "EPERM", "EEXIST"]);
const NETWORK_ERROR_CODES = new Set(["ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "EHOSTUNREACH", "ENETUNREACH", "EAI_AGAIN", "ENOTFOUND", "EPIPE"]);

/** Turns anything a handler threw (or why its signal fired) into what the lifecycle stores. */
export function classifyError(error: unknown, abortReason?: unknown): ClassifiedError {
  if (abortReason instanceof JobAbortReason && abortReason.kind !== "lost") {
    const category: ErrorCategory = abortReason.kind === "timeout" ? "TIMEOUT" : abortReason.kind === "cancel" ? "CANCELLED" : "WORKER_ERROR";
    return build(category, abortReason.message, { reason: abortReason.kind, ...errorShape(error) }, abortReason.kind !== "cancel");
  }
  if (error instanceof JobValidationError) {
    return { ...build("VALIDATION_ERROR", error.message, { failures: error.failures }, false), validation: true };
  }
  if (error instanceof PermanentJobError) {
    return build(error.options.category ?? "PERMANENT_ERROR", error.message, { ...errorShape(error), ...error.options.details }, false);
  }
  if (error instanceof RecoverableJobError) {
    return build(error.options.category ?? "WORKER_ERROR", error.message, { ...errorShape(error), ...error.options.details }, true);
  }
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === "string" && FILE_ERROR_CODES.has(code)) return build("FILE_ERROR", messageOf(error), errorShape(error), true);
  if (typeof code === "string" && NETWORK_ERROR_CODES.has(code)) return build("NETWORK_ERROR", messageOf(error), errorShape(error), true);
  if ((error as Error | null)?.name === "TimeoutError") return build("TIMEOUT", messageOf(error), errorShape(error), true);
  return build("WORKER_ERROR", messageOf(error), errorShape(error), true);
}

/**
 * The message a user reads for a failure, in their language: the precise one when the stored
 * details name a reason that has one (a file problem, an unknown rule set), else the category's.
 */
export function userMessage(category: string, locale: Locale, details?: unknown): string {
  const precise = preciseMessageKey(category, details);
  if (precise) return translate(precise.key, locale, precise.parameters);
  const known = (ERROR_CATEGORIES as readonly string[]).includes(category) ? (category as ErrorCategory) : "WORKER_ERROR";
  return translate(`error.${known}`, locale);
}

function preciseMessageKey(category: string, details: unknown): { key: MessageKey; parameters: Record<string, string | number> } | null {
  if (details === null || typeof details !== "object") return null;
  const { reason, line, offset, fields, failures } = details as Record<string, unknown>;
  const candidate =
    category === "FILE_ERROR" && typeof reason === "string"
      ? `fileProblem.${reason}`
      : category === "VALIDATION_ERROR" && Array.isArray(failures) && typeof failures[0]?.rule === "string"
        ? `validationRun.${failures[0].rule as string}`
        : null;
  if (!candidate || !(candidate in MESSAGES)) return null;
  const parameters: Record<string, string | number> = {};
  if (typeof line === "number") parameters.line = line;
  if (typeof offset === "number") parameters.offset = offset;
  if (Array.isArray(fields)) parameters.fields = fields.filter((field) => typeof field === "string").join(", ");
  return { key: candidate as MessageKey, parameters };
}

function build(category: ErrorCategory, message: string, details: Record<string, unknown>, recoverable: boolean): ClassifiedError {
  return {
    category,
    message: scrubText(message || category, MAX_ERROR_MESSAGE_LENGTH),
    details: redactDetails({ category, ...details }) as Record<string, unknown>,
    recoverable,
    validation: false,
  };
}

function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (typeof error === "string") return error;
  return "Unknown error";
}

function errorShape(error: unknown): Record<string, unknown> {
  if (!(error instanceof Error)) return error === undefined ? {} : { name: typeof error };
  const shape: Record<string, unknown> = { name: error.name };
  const { code, errno, syscall } = error as NodeJS.ErrnoException;
  if (code !== undefined) shape.code = code;
  if (errno !== undefined) shape.errno = errno;
  if (syscall !== undefined) shape.syscall = syscall;
  // Stack frames only: the first line repeats the message, which may quote user input.
  const frames = error.stack?.split("\n").filter((line) => line.trimStart().startsWith("at ")).slice(0, 10);
  if (frames?.length) shape.stack = frames.map((line) => line.trim());
  if (error.cause instanceof Error) shape.cause = { name: error.cause.name, code: (error.cause as NodeJS.ErrnoException).code ?? null };
  return shape;
}
