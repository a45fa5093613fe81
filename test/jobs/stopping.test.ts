// Stopping while work is under way: retention between its batches, and an instance still starting.
import { describe, expect, it } from "vitest";
import { HealthMonitor } from "../../src/jobs/health-monitor.js";
import type { HealthStatus, QueueHealth } from "../../src/jobs/health.js";
import { createLogger } from "../../src/logger.js";
import { eventually, startTestConveyor } from "../support/conveyor.js";

describe("stopping", () => {
  it("ends retention after its current batch rather than deleting the whole backlog first", async () => {
    const conveyor = await startTestConveyor({
      start: false,
      handlers: [{ type: "old", run: async () => null }],
      environment: { RETENTION_BATCH_SIZE: "5" },
    });
    try {
      await conveyor.jobs.enqueueMany(Array.from({ length: 2000 }, () => ({ type: "old", owner: "alice" })), "alice");
      await conveyor.database.pool.query(`UPDATE processing_jobs SET status = 'COMPLETED', completed_at = now() - interval '30 days'`);
      const remaining = async () => Number((await conveyor.database.pool.query(`SELECT count(*) AS n FROM processing_jobs`)).rows[0].n);
      const cleanup = conveyor.maintenance.cleanup();
      await eventually(async () => (await remaining()) < 2000);
      const stopped = performance.now();
      await conveyor.maintenance.stop();
      const deleted = await cleanup;
      expect(performance.now() - stopped).toBeLessThan(5000);
      expect(await remaining()).toBeGreaterThan(0);
      expect(deleted).toBe(2000 - (await remaining()));
    } finally {
      await conveyor.dispose();
    }
  });

  it("leaves no port listening when stop() comes while start() is still under way", async () => {
    const conveyor = await startTestConveyor({ start: false, environment: { WORKER_ENABLED: "true" } });
    try {
      const starting = conveyor.start();
      await Promise.resolve();
      const stopping = conveyor.stop();
      await Promise.all([starting, stopping]);
      expect(conveyor.server.listening).toBe(false);
      expect(conveyor.workerPool?.stats().busySlots).toBe(0);
    } finally {
      await conveyor.dispose();
    }
  });
});

describe("queue health's monitor", () => {
  // A subscriber that joined between a change and its reversal read the new status when it joined,
  // while the monitor, still at the old one, saw nothing change: it was never told of the reversal.
  it("tells every listener each check's status, so a listener that joined in between is corrected", async () => {
    let status: HealthStatus = "HEALTHY";
    const monitor = new HealthMonitor(async () => ({ status, reasons: [], checkedAt: new Date() }) as unknown as QueueHealth, 0, createLogger("silent"));
    const shown = { early: "HEALTHY" as HealthStatus, late: "HEALTHY" as HealthStatus };
    const follow = (who: keyof typeof shown) => monitor.listen((change) => (shown[who] = change.status));
    const stopEarly = follow("early");
    await monitor.tick();
    status = "DEGRADED";
    shown.late = "DEGRADED"; // what the late subscriber read when it joined
    const stopLate = follow("late");
    status = "HEALTHY";
    await monitor.tick();
    await monitor.tick();
    expect(shown).toEqual({ early: "HEALTHY", late: "HEALTHY" });
    stopEarly();
    stopLate();
  });
});
