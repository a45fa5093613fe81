import { pino, type Logger } from "pino";

export type { Logger };

/** Structured JSON logs; personal data never goes in, callers log ids and redacted details only. */
export function createLogger(level: string, bindings: Record<string, unknown> = {}): Logger {
  return pino({
    level,
    base: { service: "conveyor", ...bindings },
    timestamp: pino.stdTimeFunctions.isoTime,
    // Only these fields of an error: pg, for one, attaches its whole client (with every prepared
    // statement) to errors it raises.
    serializers: {
      err: (error: Error & { code?: unknown }) =>
        error instanceof Error ? { type: error.name, message: error.message, code: error.code, stack: error.stack } : { message: String(error) },
    },
    redact: { paths: ["authorization", "*.authorization", "token", "*.token", "password", "*.password"], censor: "[redacted]" },
  });
}
