import { createConveyor, type Conveyor, type ConveyorOptions } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/logger.js";
import { testEnvironment, type TestConveyor } from "../support/conveyor.js";

export { freePort, REDIS_SERVER, redisServerAvailable, startRedis, stopRedis } from "../support/services.js";

/**
 * Another Conveyor on the same database as `first` (startTestConveyor makes a database per call;
 * several instances must share one). Its own pools, LISTEN connection, event bus and port.
 */
export async function startSiblingConveyor(
  first: TestConveyor,
  options: { environment?: Record<string, string> } & Omit<ConveyorOptions, "config"> = {},
): Promise<Conveyor> {
  const config = loadConfig({ ...testEnvironment(options.environment), DATABASE_URL: first.databaseUrl });
  const conveyor = await createConveyor({ ...options, config, logger: options.logger ?? createLogger(config.logLevel) });
  await conveyor.start();
  return conveyor;
}

