import { createConveyor, type Conveyor, type ConveyorOptions } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/logger.js";
import { createTestDatabase } from "./database.js";

export interface TestConveyor extends Conveyor {
  databaseUrl: string;
  /** Stops the service and drops its database. */
  dispose(): Promise<void>;
}

/**
 * A whole Conveyor on a fresh database and a free port. `environment` overrides configuration
 * variables (WORKER_CONCURRENCY, RETRY_INITIAL_DELAY_MS, …); the pool is off unless asked for.
 */
export async function startTestConveyor(
  options: { environment?: Record<string, string>; start?: boolean } & Omit<ConveyorOptions, "config"> = {},
): Promise<TestConveyor> {
  const database = await createTestDatabase();
  const config = loadConfig({ ...testEnvironment(options.environment), DATABASE_URL: database.url });
  const conveyor = await createConveyor({ ...options, config, logger: options.logger ?? createLogger(config.logLevel) });
  if (options.start !== false) await conveyor.start();
  return Object.assign(conveyor, {
    databaseUrl: database.url,
    async dispose() {
      await conveyor.stop();
      await database.drop();
    },
  });
}

/** The configuration every test instance starts from: quiet, no pool, no timers; `overrides` win. */
export function testEnvironment(overrides: Record<string, string> = {}): Record<string, string> {
  return {
    NODE_ENV: "test",
    PORT: "0",
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? "silent",
    WORKER_ENABLED: "false",
    WORKER_POLL_INTERVAL_MS: "200",
    STALLED_CHECK_INTERVAL_MS: "0",
    RETENTION_INTERVAL_MS: "0",
    HEALTH_CACHE_MS: "0",
    DATABASE_POOL_SIZE: "10",
    ...(process.env.REDIS_URL ? { REDIS_URL: process.env.REDIS_URL } : {}),
    ...overrides,
  };
}

/** Polls `check` until it returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function eventually<T>(check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 20_000, intervalMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value as T;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) throw new Error(`Condition not met within ${timeoutMs} ms${lastError ? `: ${String(lastError)}` : ""}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
