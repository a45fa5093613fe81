import { pino, type Logger } from "pino";

export type { Logger };

/** Structured JSON logs; personal data never goes in, callers log ids and redacted details only. */
export function createLogger(level: string, bindings: Record<string, unknown> = {}): Logger {
  return pino({
    level,
    base: { service: "conveyor", ...bindings },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: { paths: ["authorization", "*.authorization", "token", "*.token", "password", "*.password"], censor: "[redacted]" },
  });
}
