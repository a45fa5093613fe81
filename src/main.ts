import { createConveyor } from "./app.js";
import { ConfigError, loadConfig } from "./config.js";
import { createLogger } from "./logger.js";
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
  const conveyor = await createConveyor({ config, logger }).catch((error: unknown) => {
    logger.fatal({ err: error }, "Conveyor could not start");
    process.exit(1);
  });
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
  await conveyor.start().catch(async (error: unknown) => {
    logger.fatal({ err: error }, "Conveyor could not start");
    await conveyor.stop().catch(() => undefined);
    process.exit(1);
  });
}

void main();
