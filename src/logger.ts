import { pino, type DestinationStream, type Logger } from "pino";
import { redactDetails, scrubText } from "./jobs/redaction.js";

export type { Logger };

/**
 * Structured JSON logs; personal data never goes in, callers log ids and redacted details only.
 * `destination` defaults to stdout; tests pass their own to read what was written.
 */
export function createLogger(level: string, bindings: Record<string, unknown> = {}, destination?: DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { service: "conveyor", ...bindings },
    timestamp: pino.stdTimeFunctions.isoTime,
    // Only these fields of an error: pg, for one, attaches its whole client (with every prepared
    // statement) to errors it raises.
    serializers: { err: serializeError },
    hooks: {
      // Two ways round the serializer: pino takes an error's raw message as the line's message when
      // none is given, and interpolates string arguments into it. Both are scrubbed here.
      logMethod(inputArgs, method) {
        const args: unknown[] = inputArgs.map((arg) => (typeof arg === "string" ? scrubText(arg) : arg));
        if (args[0] instanceof Error) args[0] = { err: args[0] };
        const fields = args[0] as { err?: unknown; msg?: unknown } | null | undefined;
        if (typeof fields === "object" && fields !== null && fields.err instanceof Error && fields.msg === undefined && typeof args[1] !== "string") {
          args.splice(1, 0, scrubText(fields.err.message));
        }
        return method.apply(this, args as Parameters<typeof method>);
      },
    },
    redact: { paths: ["authorization", "*.authorization", "token", "*.token", "password", "*.password"], censor: "[redacted]" },
  };
  return destination ? pino(options, destination) : pino(options);
}

const MAX_STACK = 8000;
const MAX_CAUSES = 3;

/**
 * An error's type, code, path and, scrubbed like stored job errors (emails, phone numbers, tokens),
 * its message and stack: both quote user input more often than not. The cause (a GraphQL error's
 * originalError) is kept the same way, since it is usually the error that says what went wrong.
 */
export function serializeError(error: unknown, depth = 0): Record<string, unknown> {
  if (!(error instanceof Error)) return { message: scrubText(String(error)) };
  const { code, path, originalError, cause } = error as Error & { code?: unknown; path?: unknown; originalError?: unknown; cause?: unknown };
  const serialized: Record<string, unknown> = {
    type: error.name,
    message: scrubText(error.message),
    code: typeof code === "string" || typeof code === "number" ? code : undefined,
    path: Array.isArray(path) ? path.join(".") : undefined,
    stack: error.stack === undefined ? undefined : scrubText(error.stack, MAX_STACK),
  };
  const inner = originalError ?? cause;
  if (inner !== undefined && inner !== null && inner !== error && depth < MAX_CAUSES) serialized.cause = serializeError(inner, depth + 1);
  return serialized;
}

type LogMethod = (...args: unknown[]) => void;

/**
 * graphql-yoga's logger interface over pino. Yoga passes raw values (the errors it masks among
 * them); errors go under `err` and its serializer, text is scrubbed, anything else is redacted as
 * stored error details are, so nothing reaches a log line unredacted.
 */
export function yogaLogger(logger: Logger): { debug: LogMethod; info: LogMethod; warn: LogMethod; error: LogMethod } {
  const method =
    (level: "debug" | "info" | "warn" | "error"): LogMethod =>
    (...args) => {
      if (!logger.isLevelEnabled(level)) return;
      const errors = args.filter((arg): arg is Error => arg instanceof Error);
      const texts = args.filter((arg): arg is string => typeof arg === "string").map((text) => scrubText(text));
      const others = args.filter((arg) => !(arg instanceof Error) && typeof arg !== "string").map((arg) => redactDetails(arg));
      const fields: Record<string, unknown> = { source: "graphql-yoga" };
      if (errors.length > 0) fields.err = errors[0];
      if (errors.length > 1) fields.moreErrors = errors.slice(1).map((error) => serializeError(error));
      if (texts.length > 1) fields.text = texts.slice(1);
      if (others.length > 0) fields.details = others;
      logger[level](fields, texts[0] ?? (errors.length > 0 ? "graphql error" : "graphql"));
    };
  return { debug: method("debug"), info: method("info"), warn: method("warn"), error: method("error") };
}
