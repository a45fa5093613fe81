import type { Logger } from "../logger.js";

/**
 * Last-resort handlers for the process. Node ends the process on an unhandled rejection, with a
 * bare stack on stderr and nothing in the logs; one stray promise (a failed publish, a cleanup
 * that threw) would take every running job and connection down with it. Such a rejection is a
 * bug to fix, not a reason to stop: it is logged with what is known about it, counted, and the
 * process carries on. An uncaught exception is different (the code that threw stopped half-way,
 * so state may be inconsistent): it is logged and the process exits with 1, to be restarted.
 */
export function installProcessHandlers(logger: Logger): { unhandledRejections: () => number } {
  let unhandledRejections = 0;
  process.on("unhandledRejection", (reason: unknown, promise: Promise<unknown>) => {
    unhandledRejections++;
    logger.error(
      {
        err: reason instanceof Error ? reason : new Error(String(reason)),
        reasonType: reason instanceof Error ? reason.name : typeof reason,
        unhandledRejections,
        promise: String(promise),
      },
      "unhandled promise rejection; the process keeps running",
    );
  });
  process.on("uncaughtException", (error: Error, origin: string) => {
    logger.fatal({ err: error, origin }, "uncaught exception; exiting");
    // pino flushes its buffered output on exit, so this line is not lost.
    process.exit(1);
  });
  return { unhandledRejections: () => unhandledRejections };
}
