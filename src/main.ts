import { createConveyor, type Conveyor } from "./app.js";
import { ConfigError, loadConfig } from "./config.js";
import { EmbeddedPostgresError } from "./db/embedded-postgres.js";
import type { JobHandler } from "./handlers/registry.js";
import { createLogger, type Logger } from "./logger.js";
import { installProcessHandlers } from "./server/process-handlers.js";

// Process entry: config → database (embedded when DATABASE_URL is unset) → migrations → server and
// worker pool → signals. SIGINT/SIGTERM drain the pool, close the server and stop the database.
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      console.error(error.message);
      process.exit(2);
    }
    throw error;
  }
  const logger = createLogger(config.logLevel);
  installProcessHandlers(logger);
  // Signals are handled from the very start: a Ctrl-C while the embedded database starts or while
  // Conveyor waits for PostgreSQL must still stop what was started, not kill the process mid-way.
  const starting = new AbortController();
  let conveyor: Conveyor | undefined;
  let firstSignalAt: number | null = null;
  const shutdown = (signal: string) => {
    // npm and the terminal often deliver one Ctrl-C twice; only a later, deliberate second signal forces an exit.
    if (firstSignalAt !== null) {
      if (Date.now() - firstSignalAt < 2000) return;
      logger.warn({ signal }, "second signal: exiting now");
      process.exit(1);
    }
    firstSignalAt = Date.now();
    logger.info({ signal }, "shutting down");
    // The pool's grace plus time to close connections and stop the database; past that, something
    // hangs, and an exit that says so beats a process that never ends.
    const boundMs = config.worker.shutdownGraceMs + 30_000;
    setTimeout(() => {
      logger.error({ boundMs }, "shutdown did not finish in time; exiting");
      process.exit(1);
    }, boundMs).unref();
    if (!conveyor) {
      starting.abort(new Error(`${signal} during start-up`));
      return;
    }
    conveyor.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, "shutdown failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", () => shutdown("SIGINT"));
  process.on("SIGTERM", () => shutdown("SIGTERM"));

  try {
    conveyor = await createConveyor({ config, logger, signal: starting.signal, handlers: config.environment === "test" ? [testSleep] : [] });
  } catch (error) {
    if (starting.signal.aborted) {
      logger.info("stopped before start-up finished");
      process.exit(0);
    }
    failStart(logger, error);
  }
  if (firstSignalAt !== null) {
    // A signal came while the database was being opened: stop what was built, start nothing.
    await conveyor.stop().catch(() => undefined);
    process.exit(0);
  }
  await conveyor.start().catch(async (error: unknown) => {
    logger.fatal({ err: error }, "Conveyor could not start");
    await conveyor!.stop().catch(() => undefined);
    process.exit(1);
  });
}

/**
 * Registered only under NODE_ENV=test: process-level tests (test/faults) need jobs that are still
 * running when a signal arrives, through the real entry point. Sleeps `ms`, stops when aborted; its
 * result names the process that ran it.
 */
const testSleep: JobHandler<{ ms?: number }, { sleptMs: number; pid: number }> = {
  type: "test-sleep",
  async run(payload, { signal }) {
    const ms = payload?.ms ?? 1000;
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(resolve, ms);
      signal.addEventListener("abort", () => (clearTimeout(timer), reject(signal.reason)), { once: true });
    });
    return { sleptMs: ms, pid: process.pid };
  },
};

/**
 * Ends a failed start-up. Failures with a known remedy (the embedded database, a refused database
 * login) are one line saying what to do; anything else is logged whole, since its stack is the
 * only clue.
 */
function failStart(logger: Logger, error: unknown): never {
  if (error instanceof EmbeddedPostgresError) {
    logger.fatal(error.message);
  } else if (typeof (error as { code?: unknown })?.code === "string" && (error as { severity?: unknown }).severity) {
    logger.fatal(`PostgreSQL refused Conveyor: ${(error as Error).message}. Check DATABASE_URL (user, password, database name).`);
  } else {
    logger.fatal({ err: error }, "Conveyor could not start");
  }
  process.exit(1);
}

void main();
