import { AsyncLocalStorage } from "node:async_hooks";
import { randomUUID } from "node:crypto";
import type { EventEmitter } from "node:events";
import { createRequire } from "node:module";
import { pino, type DestinationStream, type Logger } from "pino";
import { environmentValue } from "./config.js";
import { redactDetails, scrubText } from "./jobs/redaction.js";

export type { Logger };

interface RequestScope {
  readonly requestId: string;
  open: boolean;
}

// Timers and connections created while serving a request keep its async context after it ends (a
// health monitor started by a subscriber, a pooled connection opened for a query): a scope closes
// with its response or socket, so their later lines do not carry a finished request's id.
const requestScope = new AsyncLocalStorage<RequestScope>();

// Printable, short, and free of anything that would need escaping in a header or a log query.
const SANE_REQUEST_ID = /^[A-Za-z0-9._:/+=@-]{1,128}$/;

/** The client's `x-request-id` when it is a sane one, else a fresh UUID. */
export function requestIdFrom(header: string | string[] | undefined): string {
  const value = Array.isArray(header) ? header[0] : header;
  return value !== undefined && SANE_REQUEST_ID.test(value) ? value : randomUUID();
}

/**
 * Runs `run` so that every log line it leads to, synchronously or after any await, carries
 * `requestId`, until `lifetime` (the response, or a WebSocket's socket) emits "close".
 */
export function inRequestScope<T>(requestId: string, lifetime: EventEmitter, run: () => T): T {
  const scope: RequestScope = { requestId, open: true };
  lifetime.once("close", () => {
    scope.open = false;
  });
  return requestScope.run(scope, run);
}

/** The id of the request being served here, if any. */
export function currentRequestId(): string | undefined {
  const scope = requestScope.getStore();
  return scope?.open ? scope.requestId : undefined;
}

/**
 * Structured JSON logs; personal data never goes in, callers log ids and redacted details only.
 * `destination` defaults to stdout; tests pass their own to read what was written.
 */
export function createLogger(level: string, bindings: Record<string, unknown> = {}, destination?: DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    level,
    base: { service: "conveyor", ...bindings },
    timestamp: pino.stdTimeFunctions.isoTime,
    // A fresh object each time: pino merges the line's own fields into the one returned.
    mixin: () => {
      const scope = requestScope.getStore();
      return scope?.open ? { requestId: scope.requestId } : {};
    },
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
  const stream = destination ?? prettyStream();
  return stream ? pino(options, stream) : pino(options);
}

/**
 * pino-pretty for a developer at a terminal (NODE_ENV development, stdout a TTY); JSON everywhere
 * else, tests and CI included. It is a development dependency: without it, JSON as well.
 */
function prettyStream(): DestinationStream | undefined {
  if (environmentValue("NODE_ENV") !== "development" || !process.stdout.isTTY) return undefined;
  try {
    const pretty = createRequire(import.meta.url)("pino-pretty") as (options: Record<string, unknown>) => DestinationStream;
    // Synchronous: main() exits with process.exit, which would drop lines still buffered.
    return pretty({ colorize: true, translateTime: "SYS:HH:MM:ss.l", ignore: "pid,hostname,service", sync: true });
  } catch {
    return undefined;
  }
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
