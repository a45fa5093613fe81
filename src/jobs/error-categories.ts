import { translate } from "../i18n/messages.js";
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

/** The message a user reads for a failure's category, in their language. */
export function userMessage(category: string, locale: Locale): string {
  const known = (ERROR_CATEGORIES as readonly string[]).includes(category) ? (category as ErrorCategory) : "WORKER_ERROR";
  return translate(`error.${known}`, locale);
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
