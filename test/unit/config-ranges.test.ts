// Settings that loadConfig must refuse because they would break the engine quietly: timers past
// what Node waits (they fire after 1 ms), repeating timers of 0, a stalled threshold that running
// jobs cross between two heartbeats, and windows PostgreSQL cannot subtract from now().
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config.js";
import { configProblem as problem } from "../support/config.js";

describe("configuration ranges", () => {
  it("refuses a timer longer than Node waits (it would fire after 1 ms: every job timed out at once)", () => {
    expect(problem({ JOB_TIMEOUT_MS: "3000000000" })).toMatch(/JOB_TIMEOUT_MS/);
    expect(problem({ RETENTION_INTERVAL_MS: "2592000000" })).toMatch(/RETENTION_INTERVAL_MS/);
    expect(problem({ JOB_TIMEOUT_MS: "2147483647" })).toBeNull();
  });

  it("refuses repeating timers of 0, which would run back to back", () => {
    expect(problem({ WORKER_POLL_INTERVAL_MS: "0" })).toMatch(/WORKER_POLL_INTERVAL_MS/);
    expect(problem({ WORKER_HEARTBEAT_INTERVAL_MS: "0" })).toMatch(/WORKER_HEARTBEAT_INTERVAL_MS/);
    expect(problem({ HEALTH_BROADCAST_INTERVAL_MS: "0" })).toMatch(/HEALTH_BROADCAST_INTERVAL_MS/);
    // 0 still turns the periodic tasks off.
    expect(problem({ STALLED_CHECK_INTERVAL_MS: "0", RETENTION_INTERVAL_MS: "0", JOB_TIMEOUT_MS: "0" })).toBeNull();
  });

  it("refuses a stalled threshold a running job crosses between two heartbeats", () => {
    expect(problem({ STALLED_THRESHOLD_MS: "1000" })).toMatch(/STALLED_THRESHOLD_MS: must be at least twice WORKER_HEARTBEAT_INTERVAL_MS \(15000\)/);
    expect(problem({ STALLED_THRESHOLD_MS: "0" })).toMatch(/STALLED_THRESHOLD_MS/);
    expect(problem({ STALLED_THRESHOLD_MS: "29999" })).toMatch(/STALLED_THRESHOLD_MS/);
    expect(problem({ STALLED_THRESHOLD_MS: "30000" })).toBeNull();
    expect(problem({ STALLED_THRESHOLD_MS: "1000", WORKER_HEARTBEAT_INTERVAL_MS: "500" })).toBeNull();
  });

  it("refuses windows and ages PostgreSQL cannot subtract from now(), and keeps ages longer than a timer", () => {
    expect(problem({ HEALTH_WINDOW_MS: "1000000000000000" })).toMatch(/HEALTH_WINDOW_MS/);
    expect(problem({ HEALTH_WINDOW_MS: String(8 * 24 * 3600_000) })).toMatch(/HEALTH_WINDOW_MS/);
    expect(problem({ RETENTION_MAX_AGE_MS: "1000000000000000" })).toMatch(/RETENTION_MAX_AGE_MS/);
    // Three months of jobs kept: longer than a timer waits, and not a timer.
    expect(loadConfig({ RETENTION_MAX_AGE_MS: String(90 * 24 * 3600_000) }).retention).toMatchObject({ maxAgeMs: 90 * 24 * 3600_000 });
  });
});
