import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JobHandler } from "../../src/handlers/registry.js";
import { eventually, startTestConveyor, type TestConveyor } from "../support/conveyor.js";

const calls: string[] = [];
const echo: JobHandler<{ value: number }, { doubled: number }> = {
  type: "echo",
  async run(payload, context) {
    await context.progress("working", 50);
    calls.push(context.job.id);
    return { doubled: payload.value * 2 };
  },
};

describe("worker pool", () => {
  let conveyor: TestConveyor;
  beforeAll(async () => {
    conveyor = await startTestConveyor({ handlers: [echo], environment: { WORKER_ENABLED: "true", WORKER_CONCURRENCY: "4" } });
  });
  afterAll(() => conveyor?.dispose());

  it("runs an enqueued job to completion with its lifecycle metadata", async () => {
    const { job, created } = await conveyor.jobs.enqueue({ type: "echo", owner: "alice", payload: { value: 21 } }, "alice");
    expect(created).toBe(true);
    const done = await eventually(async () => {
      const current = await conveyor.jobs.find(job.id);
      return current?.status === "COMPLETED" ? current : undefined;
    });
    expect(done.result).toEqual({ doubled: 42 });
    expect(done.startedAt).toBeInstanceOf(Date);
    expect(done.completedAt!.getTime()).toBeGreaterThanOrEqual(done.startedAt!.getTime());
    expect(done.processingTimeMs).toBeGreaterThanOrEqual(0);
    expect(done.lockedBy).toBeNull();
    const events = await conveyor.database.pool.query("SELECT from_status, to_status, stage FROM job_events WHERE job_id = $1 ORDER BY id", [job.id]);
    expect(events.rows.map((row) => `${row.from_status}>${row.to_status}${row.stage ? `:${row.stage}` : ""}`)).toEqual([
      "null>QUEUED",
      "QUEUED>PROCESSING",
      "PROCESSING>PROCESSING:working",
      "PROCESSING>COMPLETED:working",
    ]);
  });
});
