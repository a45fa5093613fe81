import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { JobChange } from "../../src/events/messages.js";
import type { JobHandler } from "../../src/handlers/registry.js";
import { eventually, startTestConveyor, type TestConveyor } from "../support/conveyor.js";
import { startSiblingConveyor } from "../multi-instance/instances.js";
import { WAKE_POOLS } from "../../src/jobs/sql.js";

// Handlers that wait until the test lets them go, so that the pool's slots are busy for as long as it needs.
const releases: (() => void)[] = [];
const started: string[] = [];
const held: JobHandler<Record<string, never>, null> = {
  type: "held",
  async run(_payload, context) {
    started.push(context.job.id);
    await new Promise<void>((resolve) => releases.push(resolve));
    return null;
  },
};
const quick: JobHandler<Record<string, never>, null> = { type: "quick", run: async () => null };

function releaseAll(): void {
  for (const release of releases.splice(0)) release();
}

/** Every slot free, and the pool's last claim came back short: an enqueue is offered them all. */
async function untilIdle(conveyor: TestConveyor): Promise<void> {
  await eventually(() => conveyor.workerPool!.idleSlots() === conveyor.config.worker.concurrency);
}

/**
 * What every pool here runs with but the ones that test the reservation's lapse (below): offered
 * slots stay reserved however long the enqueue's statement takes, so that no test depends on it
 * finishing within the default 100 ms on a loaded machine (once it did not, a claim took two
 * slots meanwhile, and the jobs were not started in the order asserted).
 */
const POOL_ENVIRONMENT = { WORKER_ENABLED: "true", REDIS_URL: "", WORKER_POLL_INTERVAL_MS: "60000", WORKER_HANDOFF_RESERVE_MS: "60000" };

/** An idle pool of its own (`concurrency` slots), on a fresh database. */
function startIdlePool(concurrency: number): Promise<TestConveyor> {
  return startTestConveyor({ handlers: [held], environment: { ...POOL_ENVIRONMENT, WORKER_CONCURRENCY: String(concurrency) } });
}

/**
 * A transaction holding an uncommitted job with `key`: `enqueue`, which must enqueue that key
 * too, waits for it; resolves once its statement waits, with what rolls the transaction back.
 */
async function whileKeyHeld<T>(conveyor: TestConveyor, key: string, enqueue: () => Promise<T>): Promise<{ enqueued: Promise<T>; rollBack: () => Promise<void> }> {
  const blocker = await conveyor.database.pool.connect();
  await blocker.query("BEGIN");
  await conveyor.jobs.enqueue({ type: "held", owner: "alice", idempotencyKey: key }, "alice", blocker, false);
  const enqueued = enqueue();
  const waiting = "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()";
  await eventually(async () => (await conveyor.database.pool.query(waiting)).rowCount! > 0);
  return {
    enqueued,
    rollBack: async () => {
      await blocker.query("ROLLBACK");
      blocker.release();
    },
  };
}

describe("jobs enqueued into an idle pool in the same process start without a claim of their own", () => {
  let conveyor: TestConveyor;
  beforeAll(async () => {
    conveyor = await startTestConveyor({ handlers: [held, quick], environment: { ...POOL_ENVIRONMENT, WORKER_CONCURRENCY: "3" } });
  });
  afterEach(async () => {
    releaseAll();
    await untilIdle(conveyor);
  });
  afterAll(() => conveyor?.dispose());

  it("creates the job claimed by this pool, with both JobEvents and both changes in order, and runs it", async () => {
    await untilIdle(conveyor);
    const changes: JobChange[] = [];
    const unsubscribe = conveyor.subscribe(undefined, (change) => changes.push(change));
    await unsubscribe.listening;
    try {
      const { job, created } = await conveyor.jobs.enqueue({ type: "held", owner: "alice" }, "alice");
      expect(created).toBe(true);
      // Returned as stored: claimed, its handler started with the statement's return.
      expect(job).toMatchObject({ status: "PROCESSING", revision: 2, lockedBy: conveyor.workerPool!.workerId, retryCount: 0 });
      expect(job.lockToken).toMatch(/^[0-9a-f-]{36}$/);
      expect(job.startedAt!.getTime()).toBe(job.createdAt.getTime());
      expect(started).toContain(job.id);
      const stored = await conveyor.jobs.find(job.id);
      expect(stored).toMatchObject({ status: "PROCESSING", revision: 2, lockedBy: job.lockedBy, lockToken: job.lockToken });
      releaseAll();
      await eventually(async () => (await conveyor.jobs.find(job.id))?.status === "COMPLETED");
      const events = await conveyor.database.pool.query("SELECT from_status, to_status, attempt, message FROM job_events WHERE job_id = $1 ORDER BY id", [job.id]);
      expect(events.rows.map((row) => `${row.from_status}>${row.to_status}#${row.attempt}`)).toEqual(["null>QUEUED#1", "QUEUED>PROCESSING#1", "PROCESSING>COMPLETED#1"]);
      expect(events.rows[0].message).toBe("created");
      await eventually(() => changes.some((change) => change.jobId === job.id && change.status === "COMPLETED"));
      expect(changes.filter((change) => change.jobId === job.id).map((change) => [change.previousStatus, change.status, change.revision])).toEqual([
        [null, "QUEUED", 1],
        ["QUEUED", "PROCESSING", 2],
        ["PROCESSING", "COMPLETED", 3],
      ]);
      // One audit row, as for any job created.
      const audit = await conveyor.database.pool.query("SELECT action FROM audit_events WHERE entity_id = $1", [job.id]);
      expect(audit.rows.map((row) => row.action)).toEqual(["job.created"]);
    } finally {
      unsubscribe();
    }
  });

  it("hands off no more jobs than it has free slots; the rest wait and are claimed as slots free", async () => {
    await untilIdle(conveyor);
    const results = await conveyor.jobs.enqueueMany(
      Array.from({ length: 5 }, () => ({ type: "held", owner: "alice" })),
      "alice",
    );
    expect(results.map(({ job }) => job.status)).toEqual(["PROCESSING", "PROCESSING", "PROCESSING", "QUEUED", "QUEUED"]);
    expect(conveyor.workerPool!.stats().busySlots).toBe(3);
    // A busy pool offers nothing: the next job waits too.
    const { job: next } = await conveyor.jobs.enqueue({ type: "quick", owner: "alice" }, "alice");
    expect(next.status).toBe("QUEUED");
    releaseAll();
    await eventually(async () => {
      releaseAll();
      const all = await Promise.all([...results.map(({ job }) => job.id), next.id].map((id) => conveyor.jobs.find(id)));
      return all.every((job) => job?.status === "COMPLETED");
    });
  });

  it("hands off no job that is not due, nor one created in the caller's transaction, nor a duplicate", async () => {
    await untilIdle(conveyor);
    const later = await conveyor.jobs.enqueue({ type: "quick", owner: "alice", runAt: new Date(Date.now() + 60_000) }, "alice");
    expect(later.job.status).toBe("QUEUED");

    const client = await conveyor.database.pool.connect();
    let inTransaction;
    try {
      await client.query("BEGIN");
      inTransaction = await conveyor.enqueue({ type: "quick", owner: "alice" }, { client });
      expect(inTransaction.job.status).toBe("QUEUED");
      await client.query("COMMIT");
    } finally {
      client.release();
    }
    await eventually(async () => (await conveyor.jobs.find(inTransaction.job.id))?.status === "COMPLETED");

    await untilIdle(conveyor);
    const first = await conveyor.jobs.enqueue({ type: "held", owner: "alice", idempotencyKey: "once" }, "alice");
    expect(first.job.status).toBe("PROCESSING");
    const again = await conveyor.jobs.enqueue({ type: "held", owner: "alice", idempotencyKey: "once" }, "alice");
    expect(again.created).toBe(false);
    expect(again.job.id).toBe(first.job.id);
    expect(started.filter((id) => id === first.job.id)).toHaveLength(1);
    // The slot offered to the duplicate was given back: the next two jobs both start at once.
    await eventually(() => conveyor.workerPool!.idleSlots() === 2);
    const two = await conveyor.jobs.enqueueMany([{ type: "held", owner: "alice" }, { type: "held", owner: "alice" }], "alice");
    expect(two.map(({ job }) => job.status)).toEqual(["PROCESSING", "PROCESSING"]);
  });

  it("hands off in claim order, highest priority first, and counts each start as a claim in the metrics", async () => {
    await untilIdle(conveyor);
    const claims = async () => (await conveyor.metrics.registry.getSingleMetric("conveyor_job_claims_total")!.get()).values.reduce((sum, value) => sum + value.value, 0);
    const before = await claims();
    const results = await conveyor.jobs.enqueueMany(
      (["LOW", "LOW", "NORMAL", "LOW", "HIGH"] as const).map((priority) => ({ type: "held", owner: "alice", priority })),
      "alice",
    );
    expect(results.map(({ job }) => `${job.priority}:${job.status}`)).toEqual(["LOW:PROCESSING", "LOW:QUEUED", "NORMAL:PROCESSING", "LOW:QUEUED", "HIGH:PROCESSING"]);
    expect(await claims()).toBe(before + 3);
    await eventually(async () => {
      releaseAll();
      const all = await Promise.all(results.map(({ job }) => conveyor.jobs.find(job.id)));
      return all.every((job) => job?.status === "COMPLETED");
    });
  });

  it("hands back, never started, what an enqueue in flight when the pool began to stop created for it", async () => {
    const other = await startIdlePool(2);
    try {
      await untilIdle(other);
      const { enqueued, rollBack } = await whileKeyHeld(other, "contested", () =>
        other.jobs.enqueueMany([{ type: "held", owner: "alice" }, { type: "held", owner: "alice", idempotencyKey: "contested" }], "alice"),
      );
      const stopped = other.workerPool!.stop();
      await rollBack();
      const results = await enqueued;
      await stopped;
      expect(results.map(({ created }) => created)).toEqual([true, true]);
      const stored = await Promise.all(results.map(({ job }) => other.jobs.find(job.id)));
      expect(stored.map((job) => [job?.status, job?.lockedBy])).toEqual([
        ["QUEUED", null],
        ["QUEUED", null],
      ]);
      expect(started.filter((id) => results.some(({ job }) => job.id === id))).toEqual([]);
      // Created claimed (the statement's result says so), then handed back.
      expect(results.map(({ job }) => job.status)).toEqual(["PROCESSING", "PROCESSING"]);
      const events = await other.database.pool.query("SELECT job_id, to_status FROM job_events WHERE job_id = ANY($1::uuid[]) ORDER BY id", [results.map(({ job }) => job.id)]);
      for (const { job } of results) {
        expect(events.rows.filter((row) => row.job_id === job.id).map((row) => row.to_status)).toEqual(["QUEUED", "PROCESSING", "QUEUED"]);
      }
    } finally {
      await other.dispose();
    }
  });

  it("sends a handed-off job back to the queue when a claim took its slot while the enqueue ran", async () => {
    const other = await startIdlePool(1);
    try {
      await untilIdle(other);
      // The offer of the pool's one slot is taken by an enqueue that waits for another transaction's key…
      const { enqueued, rollBack } = await whileKeyHeld(other, "slow-key", () => other.jobs.enqueue({ type: "held", owner: "alice", idempotencyKey: "slow-key" }, "alice"));
      // …while a job enqueued through a path that hands nothing off wakes the pool, which claims it.
      const client = await other.database.pool.connect();
      let claimed;
      try {
        claimed = await other.enqueue({ type: "held", owner: "alice" }, { client });
      } finally {
        client.release();
      }
      await eventually(() => started.includes(claimed.job.id));
      await rollBack();
      const { job, created } = await enqueued;
      expect(created).toBe(true);
      expect(job.status).toBe("PROCESSING");
      // No free slot: never started, back in the queue, and run once the slot frees.
      await eventually(async () => (await other.jobs.find(job.id))?.status === "QUEUED");
      expect(started).not.toContain(job.id);
      releaseAll();
      await eventually(async () => {
        releaseAll();
        return (await other.jobs.find(job.id))?.status === "COMPLETED";
      });
      const events = await other.database.pool.query("SELECT to_status FROM job_events WHERE job_id = $1 ORDER BY id", [job.id]);
      expect(events.rows.map((row) => row.to_status)).toEqual(["QUEUED", "PROCESSING", "QUEUED", "PROCESSING", "COMPLETED"]);
    } finally {
      releaseAll();
      await other.dispose();
    }
  });

  /**
   * An idle pool of one slot offers it to an enqueue without keys, which then waits on a lock on
   * audit_events (claims never take one) while another job, after it in claim order, falls due and
   * the pool is woken to claim it. `whileHeld` runs meanwhile; then the enqueue goes on.
   */
  async function enqueueHeldWhileAnotherFallsDue(reserveMs: number, whileHeld: (other: TestConveyor, later: string) => Promise<void>) {
    const other = await startTestConveyor({
      handlers: [held],
      environment: { WORKER_ENABLED: "true", WORKER_CONCURRENCY: "1", REDIS_URL: "", WORKER_POLL_INTERVAL_MS: "60000", WORKER_HANDOFF_RESERVE_MS: String(reserveMs) },
    });
    const blocker = await other.database.pool.connect();
    let enqueued: Promise<unknown> | undefined;
    try {
      const { job: later } = await other.jobs.enqueue({ type: "held", owner: "alice", runAt: new Date(Date.now() + 3_600_000), priority: "LOW" }, "alice");
      await untilIdle(other);
      await blocker.query("BEGIN");
      await blocker.query("LOCK TABLE audit_events IN SHARE ROW EXCLUSIVE MODE");
      const enqueuing = other.jobs.enqueue({ type: "held", owner: "alice" }, "alice");
      enqueued = enqueuing;
      const waiting = "SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND datname = current_database()";
      await eventually(async () => (await other.database.pool.query(waiting)).rowCount! > 0);
      await other.database.pool.query("UPDATE processing_jobs SET run_at = now() WHERE id = $1", [later.id]);
      await other.database.pool.query(WAKE_POOLS);
      await whileHeld(other, later.id);
      await blocker.query("COMMIT");
      const { job } = await enqueuing;
      expect(job.status).toBe("PROCESSING");
      await eventually(async () => {
        releaseAll();
        const [first, second] = await Promise.all([other.jobs.find(job.id), other.jobs.find(later.id)]);
        return first?.status === "COMPLETED" && second?.status === "COMPLETED";
      });
      const events = await other.database.pool.query("SELECT to_status FROM job_events WHERE job_id = $1 ORDER BY id", [job.id]);
      return { handedOff: job.id, later: later.id, statuses: events.rows.map((row) => row.to_status as string) };
    } finally {
      await blocker.query("ROLLBACK").catch(() => undefined);
      blocker.release();
      await enqueued?.catch(() => undefined);
      releaseAll();
      await other.dispose();
    }
  }

  it("keeps the slot offered to an enqueue without keys from the claims that run while it waits, so its job starts first", async () => {
    const { handedOff, later, statuses } = await enqueueHeldWhileAnotherFallsDue(60_000, async (other, laterId) => {
      // Time enough for the claim the wake-up would make, had it not left the slot free.
      await new Promise((resolve) => setTimeout(resolve, 1000));
      expect((await other.jobs.find(laterId))?.status).toBe("QUEUED");
    });
    expect(started.indexOf(handedOff)).toBeLessThan(started.indexOf(later));
    expect(statuses).toEqual(["QUEUED", "PROCESSING", "COMPLETED"]);
  });

  it("lets claims take the offered slot once WORKER_HANDOFF_RESERVE_MS has passed; the handed-off job then goes back to the queue", async () => {
    const { handedOff, later, statuses } = await enqueueHeldWhileAnotherFallsDue(50, async (other, laterId) => {
      await eventually(() => started.includes(laterId));
      expect((await other.jobs.find(laterId))?.status).toBe("PROCESSING");
    });
    expect(started.indexOf(later)).toBeLessThan(started.indexOf(handedOff));
    expect(statuses).toEqual(["QUEUED", "PROCESSING", "QUEUED", "PROCESSING", "COMPLETED"]);
  });

  it("offers nothing once the pool is stopping, and a stopped pool's instance still enqueues", async () => {
    const other = await startTestConveyor({ handlers: [quick], environment: { WORKER_ENABLED: "true", WORKER_CONCURRENCY: "2", REDIS_URL: "", WORKER_POLL_INTERVAL_MS: "60000" } });
    try {
      await untilIdle(other);
      await other.workerPool!.stop();
      const { job } = await other.jobs.enqueue({ type: "quick", owner: "alice" }, "alice");
      expect(job.status).toBe("QUEUED");
    } finally {
      await other.dispose();
    }
  });
});

describe("a job handed off is announced to other instances as a claimed one is", () => {
  it("another instance following every job hears QUEUED, then PROCESSING, then COMPLETED", async () => {
    const a = await startTestConveyor({ handlers: [quick], environment: { REDIS_URL: "", WORKER_ENABLED: "true", WORKER_CONCURRENCY: "2", WORKER_POLL_INTERVAL_MS: "60000" } });
    const b = await startSiblingConveyor(a, { handlers: [quick], environment: { REDIS_URL: "" } });
    try {
      const heard: JobChange[] = [];
      const unsubscribe = b.subscribe(undefined, (change) => heard.push(change));
      await unsubscribe.listening;
      await untilIdle(a);
      const { job } = await a.jobs.enqueue({ type: "quick", owner: "alice" }, "alice");
      expect(job.status).toBe("PROCESSING");
      await eventually(() => heard.some((change) => change.jobId === job.id && change.status === "COMPLETED"), 10_000);
      expect(heard.filter((change) => change.jobId === job.id).map((change) => [change.previousStatus, change.status, change.revision])).toEqual([
        [null, "QUEUED", 1],
        ["QUEUED", "PROCESSING", 2],
        ["PROCESSING", "COMPLETED", 3],
      ]);
      unsubscribe();
    } finally {
      await b.stop();
      await a.dispose();
    }
  });
});
