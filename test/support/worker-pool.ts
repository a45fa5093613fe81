import { WorkerPool, type WorkerPoolOptions } from "../../src/jobs/worker-pool.js";
import type { TestConveyor } from "./conveyor.js";

type Engine = Pick<TestConveyor, "lifecycle" | "registry" | "logger" | "databaseUrl">;

/** A worker pool of a test's own on a test conveyor's engine: quick polls, no heartbeat or timeout in the way. */
export function testWorkerPool(conveyor: Engine, options: Partial<WorkerPoolOptions> = {}): WorkerPool {
  return new WorkerPool({
    lifecycle: conveyor.lifecycle,
    registry: conveyor.registry,
    logger: conveyor.logger,
    connectionString: conveyor.databaseUrl,
    concurrency: 1,
    pollIntervalMs: 50,
    heartbeatIntervalMs: 60_000,
    jobTimeoutMs: 60_000,
    shutdownGraceMs: 1000,
    ...options,
  });
}
