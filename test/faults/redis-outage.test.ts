// Issue 11, item 7: Redis down while a followed job finishes. The rest of the outage story (jobs
// keep running, failures counted, nothing unhandled) is test/graphql/guarantees-subscriptions.test.ts
// item 20; this adds the catch-up: once Redis is back, each subscriber gets its job's current state.
import type { ChildProcess } from "node:child_process";
import { afterAll, describe, expect, it } from "vitest";
import type { JobHandler } from "../../src/handlers/registry.js";
import { eventually, startTestConveyor, type TestConveyor } from "../support/conveyor.js";
import { collect, tokenFor, wsClient } from "../support/graphql-client.js";
import { errorCodes } from "../graphql/helpers.js";
import { freePort, redisServerAvailable, REDIS_SERVER, startRedis, stopRedis } from "../multi-instance/instances.js";

const slow: JobHandler<{ ms: number }, { done: true }> = {
  type: "slow",
  async run(payload, context) {
    await context.progress("working", 10);
    await new Promise((resolve) => setTimeout(resolve, payload.ms));
    return { done: true };
  },
};

describe.skipIf(!redisServerAvailable)(`item 7: a job that finishes while Redis is down (needs ${REDIS_SERVER})`, () => {
  let conveyor: TestConveyor | undefined;
  let redis: ChildProcess | undefined;
  afterAll(async () => {
    await conveyor?.dispose();
    if (redis) await stopRedis(redis);
  });

  it("its jobProgress subscriber gets the final state once Redis is back, and the stream ends", async () => {
    const port = await freePort();
    redis = await startRedis(port);
    conveyor = await startTestConveyor({ handlers: [slow], environment: { WORKER_ENABLED: "true", REDIS_URL: `redis://127.0.0.1:${port}` } });
    const alice = await tokenFor(conveyor, "alice");
    const client = wsClient(conveyor, alice);
    try {
      const id = (await conveyor.jobs.enqueue({ type: "slow", owner: "alice", payload: { ms: 2500 } }, "alice")).job.id;
      const stream = collect(client, `subscription($id: ID!) { jobProgress(jobId: $id) { status stage } }`, { id });
      const statuses = () => stream.events.map((event) => (event.data as { jobProgress: { status: string } }).jobProgress.status);
      await eventually(() => statuses().includes("PROCESSING"), 15_000);

      await stopRedis(redis);
      await eventually(async () => (await conveyor!.jobs.find(id))?.status === "COMPLETED", 20_000);
      await new Promise((resolve) => setTimeout(resolve, 500));
      // The completion was published while Redis was down: lost.
      expect(statuses()).not.toContain("COMPLETED");

      redis = await startRedis(port);
      const { error } = await Promise.race([stream.done, new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`no catch-up: ${statuses().join(",")}`)), 15_000))]);
      expect(error).toBeUndefined();
      expect(statuses().at(-1)).toBe("COMPLETED");
    } finally {
      await client.dispose();
    }
  }, 90_000);

  it("a jobProgress subscription made while Redis is down gets the job's state at once; operators' change streams end with EVENTS_INTERRUPTED once it is back", async () => {
    await conveyor?.dispose();
    if (redis) await stopRedis(redis);
    const port = await freePort();
    redis = await startRedis(port);
    conveyor = await startTestConveyor({ handlers: [slow], environment: { WORKER_ENABLED: "true", REDIS_URL: `redis://127.0.0.1:${port}` } });
    const [alice, olga] = await Promise.all([tokenFor(conveyor, "alice"), tokenFor(conveyor, "olga", "operator")]);
    const [users, operators] = [wsClient(conveyor, alice), wsClient(conveyor, olga)];
    try {
      const updates = collect(operators, `subscription { jobUpdates { jobId status } }`);
      const batches = collect(operators, `subscription { jobUpdateBatches(batchMs: 50) { changes { jobId status } } }`);
      await conveyor.jobs.enqueue({ type: "slow", owner: "alice", payload: { ms: 1 } }, "alice");
      await eventually(() => updates.events.length > 0 && batches.events.length > 0, 15_000);

      await stopRedis(redis);
      const parked = (await conveyor.jobs.enqueue({ type: "slow", owner: "alice", payload: { ms: 1 }, runAt: new Date(Date.now() + 3_600_000) }, "alice")).job.id;
      const progress = collect(users, `subscription($id: ID!) { jobProgress(jobId: $id) { status } }`, { id: parked });
      // Before: it waited for Redis to confirm the subscription, for the whole outage.
      await eventually(() => progress.events.length > 0, 3000);
      expect(progress.events[0]!.data).toEqual({ jobProgress: { status: "QUEUED" } });
      expect(updates.events.length).toBeGreaterThan(0);

      redis = await startRedis(port);
      const ended = await Promise.race([
        Promise.all([updates.done, batches.done]),
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error("the operators' streams went on after the outage")), 15_000)),
      ]);
      for (const { error } of ended) expect(errorCodes(error)).toEqual(["EVENTS_INTERRUPTED"]);
      progress.stop();
    } finally {
      await Promise.all([users.dispose(), operators.dispose()]);
    }
  }, 90_000);
});
