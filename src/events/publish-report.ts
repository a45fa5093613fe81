import type { Logger } from "../logger.js";

// During an outage every publish fails; one line per interval says so without flooding the log.
const FAILURE_LOG_INTERVAL_MS = 10_000;

/**
 * Logs publish failures without flooding: the first of an outage at once, then at most one line per
 * FAILURE_LOG_INTERVAL_MS with the count since, and one line when publishing works again (then
 * `recovered` is called).
 */
export function reportPublishing(logger: Logger, what: string, count: (failures: number) => number, recovered: () => void = () => {}) {
  let failing = false;
  let lastFailureLog = 0;
  let failuresSinceLog = 0;
  return {
    published() {
      if (!failing) return;
      failing = false;
      logger.info({ publishFailures: count(0) }, `${what} recovered`);
      recovered();
    },
    failed(error: unknown, events: number, context: Record<string, unknown> = {}) {
      const publishFailures = count(events);
      failuresSinceLog += events;
      if (failing && Date.now() - lastFailureLog < FAILURE_LOG_INTERVAL_MS) return;
      failing = true;
      lastFailureLog = Date.now();
      logger.error({ err: error, ...context, failures: failuresSinceLog, publishFailures }, `${what} failed; event lost, jobs keep running`);
      failuresSinceLog = 0;
    },
  };
}

/** Logs a Redis client's connection errors at most once per FAILURE_LOG_INTERVAL_MS. */
export function throttledErrorLog(logger: Logger, context: Record<string, unknown>, message: string): (error: unknown) => void {
  let lastErrorLog = 0;
  return (error) => {
    if (Date.now() - lastErrorLog < FAILURE_LOG_INTERVAL_MS) return;
    lastErrorLog = Date.now();
    logger.warn({ err: error, ...context }, message);
  };
}
