// Issue 9, subscriptions and events: cleanup on unsubscribe (item 18) and a Redis outage (item 20).
// Items 19 and 21 are unit tests: test/unit/shared-subscriptions.test.ts, test/unit/per-event-memo.test.ts.
import type { ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import type { Client } from "graphql-ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JobHandler } from "../../src/handlers/registry.js";
import { eventually, startTestConveyor, type TestConveyor } from "../support/conveyor.js";
import { collect, tokenFor, wsClient } from "../support/graphql-client.js";
import { freePort, REDIS_SERVER, startRedis, stopRedis } from "../support/services.js";
import { enqueue, errorCodes, gql, ok, statusOf } from "./helpers.js";

const progressOf = (event: { data?: unknown }) => (event.data as { jobProgress: { status: string; stage: string | null } }).jobProgress;

/** Subscribes, waits for the first event, then unsubscribes (graphql-ws sends Complete). */
function subscribeOnce(client: Client, query: string, variables: Record<string, unknown>): Promise<void> {
  return new Promise((resolve, reject) => {
    let first = true;
    const unsubscribe = client.subscribe(
      { query, variables },
      {
        next: () => {
          if (!first) return;
          first = false;
          unsubscribe();
          resolve();
        },
        error: (error) => reject(new Error(`subscription failed: ${JSON.stringify(error)}`)),
        complete: () => {
          if (first) reject(new Error("subscription completed before its first event"));
        },
      },
    );
  });
}

// gc() without restarting vitest with --expose-gc: the flag can be set at run time, and a fresh
// context then gets the function. Null if this Node refuses, in which case the bound is looser.
const collectGarbage = (() => {
  try {
    setFlagsFromString("--expose-gc");
    return runInNewContext("gc") as () => void;
  } catch {
    return null;
  }
})();

function heapUsed(): number {
  collectGarbage?.();
  return process.memoryUsage().heapUsed;
}

describe("item 18: unsubscribing from a job that never changes again", () => {
  let conveyor: TestConveyor;
  beforeAll(async () => {
    conveyor = await startTestConveyor({ handlers: [{ type: "later", run: async () => ({}) }] });
  });
  afterAll(() => conveyor?.dispose());

  it("item 18: 2,000 subscribe/unsubscribe cycles on a job scheduled for next hour leave no listener behind and the heap flat", async () => {
    const alice = await tokenFor(conveyor, "alice");
    const runAt = new Date(Date.now() + 3600_000).toISOString();
    const jobId = await enqueue(conveyor, alice, { type: "later", runAt });
    const topic = `job:changed:${jobId}`;
    const events = conveyor.services.events;
    const before = { topic: events.listenerCount(topic), total: events.listenerCount() };

    const SOCKETS = 8;
    const PARALLEL = 10;
    const clients = Array.from({ length: SOCKETS }, () => wsClient(conveyor, alice));
    // Half the slots send the same document (shared subscriptions: a leader and followers), half
    // a document of their own (each its own execution), so that both paths are exercised.
    const documentFor = (socket: number, slot: number) =>
      slot % 2 === 0
        ? `subscription($id: ID!) { jobProgress(jobId: $id) { status } }`
        : `subscription($id: ID!) { p${socket}_${slot}: jobProgress(jobId: $id) { status } }`;
    const cycles = async (total: number) => {
      const perSlot = total / (SOCKETS * PARALLEL);
      await Promise.all(
        clients.flatMap((client, socket) =>
          Array.from({ length: PARALLEL }, async (_, slot) => {
            for (let cycle = 0; cycle < perSlot; cycle++) await subscribeOnce(client, documentFor(socket, slot), { id: jobId });
          }),
        ),
      );
    };
    try {
      // Warm-up, so that the heap is measured after the code paths have been compiled and cached.
      await cycles(160);
      const settled = () => events.listenerCount(topic) === before.topic && events.listenerCount() === before.total;
      await eventually(settled, 5000).catch(() => undefined);
      const heapBefore = heapUsed();
      await cycles(2000);
      // Complete messages are handled asynchronously: give them a moment, not an event.
      await eventually(settled, 5000).catch(() => undefined);
      expect({ topic: events.listenerCount(topic), total: events.listenerCount() }).toEqual(before);
      const heapGrowth = heapUsed() - heapBefore;
      // 2,000 leaked subscriptions (context, execution, streams) come to tens of MB; with a
      // collection forced the heap is back within a few MB, without one it moves by more.
      expect(heapGrowth / 2 ** 20).toBeLessThan(collectGarbage ? 8 : 64);
      // The job itself is untouched and still answers subscriptions.
      expect(await statusOf(conveyor, jobId)).toBe("QUEUED");
    } finally {
      await Promise.all(clients.map((client) => client.dispose()));
    }
  });

  it("item 18: a subscription on a job deleted meanwhile is cleaned up at once on unsubscribe and on socket close", async () => {
    const olga = await tokenFor(conveyor, "olga", "operator");
    const runAt = new Date(Date.now() + 3600_000).toISOString();
    const jobId = await enqueue(conveyor, olga, { type: "later", runAt });
    const topic = `job:changed:${jobId}`;
    const events = conveyor.services.events;
    const client = wsClient(conveyor, olga);
    const query = `subscription($id: ID!) { jobProgress(jobId: $id) { status } }`;
    const streams = [collect(client, query, { id: jobId }), collect(client, `subscription($id: ID!) { other: jobProgress(jobId: $id) { status } }`, { id: jobId })];
    await eventually(() => streams.every((stream) => stream.events.length >= 1));
    expect(events.listenerCount(topic)).toBe(2);
    // Deleted behind the API's back: no event will ever come for it again.
    await conveyor.database.pool.query("DELETE FROM processing_jobs WHERE id = $1", [jobId]);
    streams[0]!.stop();
    await eventually(() => events.listenerCount(topic) === 1, 5000).catch(() => undefined);
    expect(events.listenerCount(topic)).toBe(1);
    await client.dispose();
    await eventually(() => events.listenerCount(topic) === 0, 5000).catch(() => undefined);
    expect(events.listenerCount(topic)).toBe(0);
  });
});


const stepping: JobHandler<{ steps?: number }, { done: true }> = {
  type: "stepping",
  async run(payload, context) {
    for (let step = 1; step <= (payload.steps ?? 4); step++) {
      await context.progress(`step ${step}`, step * 20);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return { done: true };
  },
};

describe.skipIf(!existsSync(REDIS_SERVER))(`item 20: a Redis outage during a run (needs ${REDIS_SERVER}; skipped when missing)`, () => {
  let conveyor: TestConveyor | undefined;
  let redis: ChildProcess | undefined;
  const unhandled: unknown[] = [];
  const onUnhandled = (reason: unknown) => unhandled.push(reason);
  beforeAll(() => {
    process.on("unhandledRejection", onUnhandled);
    // The event bus logs the outage on its own logger when it is given none; quiet like the rest.
    process.env.LOG_LEVEL ??= process.env.TEST_LOG_LEVEL ?? "silent";
  });
  afterAll(async () => {
    await conveyor?.dispose();
    if (redis) await stopRedis(redis);
    process.off("unhandledRejection", onUnhandled);
  });

  it("item 20: with Redis killed mid-run jobs still complete, nothing is left unhandled, failures are counted, and subscribers get events again once Redis is back", async () => {
    const port = await freePort();
    redis = await startRedis(port);
    conveyor = await startTestConveyor({
      handlers: [stepping],
      environment: { WORKER_ENABLED: "true", WORKER_CONCURRENCY: "4", REDIS_URL: `redis://127.0.0.1:${port}` },
    });
    const alice = await tokenFor(conveyor, "alice");
    const olga = await tokenFor(conveyor, "olga", "operator");
    const client = wsClient(conveyor, olga);
    try {
      // A subscriber that lives through the outage, on a job that waits.
      const parked = await enqueue(conveyor, alice, { type: "stepping", runAt: new Date(Date.now() + 3600_000).toISOString() });
      const survivor = collect(client, `subscription($id: ID!) { jobProgress(jobId: $id) { status stage } }`, { id: parked });
      const updates = collect(client, `subscription { jobUpdates(filter: { type: "stepping" }) { jobId status } }`);
      await eventually(() => survivor.events.length >= 1);
      // Events flow through Redis before the outage.
      await eventually(async () => {
        const probe = await enqueue(conveyor!, alice, { type: "stepping", payload: { steps: 1 } });
        return eventually(() => updates.events.some((event) => (event.data as any).jobUpdates.jobId === probe), 1000).then(() => true, () => false);
      }, 15_000, 10);

      const running = await Promise.all(Array.from({ length: 4 }, () => enqueue(conveyor!, alice, { type: "stepping" })));
      await eventually(async () => (await Promise.all(running.map((id) => statusOf(conveyor!, id)))).some((status) => status === "PROCESSING"), 10_000, 5);
      await stopRedis(redis);
      // More work while Redis is down: enqueued, run and completed, every publish failing.
      const during = await Promise.all(Array.from({ length: 4 }, () => enqueue(conveyor!, alice, { type: "stepping" })));
      for (const id of [...running, ...during]) await eventually(async () => (await statusOf(conveyor!, id)) === "COMPLETED", 20_000);
      // ioredis gives a queued publish up after its retries (a few hundred ms): by now each has
      // come back rejected, and was handled.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      expect(unhandled.map(String)).toEqual([]);
      expect(conveyor.events.publishFailures).toBeGreaterThan(0);

      redis = await startRedis(port);
      // ioredis reconnects and resubscribes on its own. The operator's stream of every job's
      // changes missed the outage's: it ends saying so, and a new one sees new jobs again.
      const interrupted = await Promise.race([updates.done, new Promise<never>((_, reject) => setTimeout(() => reject(new Error("jobUpdates went on with a gap")), 20_000))]);
      expect(errorCodes(interrupted.error)).toEqual(["EVENTS_INTERRUPTED"]);
      const resumed = collect(client, `subscription { jobUpdates(filter: { type: "stepping" }) { jobId status } }`);
      await eventually(async () => {
        const probe = await enqueue(conveyor!, alice, { type: "stepping", payload: { steps: 1 } });
        return eventually(() => resumed.events.some((event) => (event.data as any).jobUpdates.jobId === probe && (event.data as any).jobUpdates.status === "COMPLETED"), 1000).then(() => true, () => false);
      }, 20_000, 10);
      resumed.stop();
      // The subscription opened before the outage gets events again and completes.
      ok(await gql(conveyor, `mutation($id: ID!) { cancelJob(id: $id) { outcome } }`, { id: parked }, { token: alice }));
      const { events, error } = await survivor.done;
      expect(error).toBeUndefined();
      expect(progressOf(events.at(-1)!).status).toBe("CANCELLED");
      // And a new one sees a whole run.
      const fresh = await enqueue(conveyor, alice, { type: "stepping", runAt: new Date(Date.now() + 1000).toISOString() });
      const followed = await collect(client, `subscription($id: ID!) { jobProgress(jobId: $id) { status stage } }`, { id: fresh }).done;
      expect(followed.error).toBeUndefined();
      expect(followed.events.map((event) => progressOf(event).status)).toEqual(["QUEUED", "PROCESSING", "PROCESSING", "PROCESSING", "PROCESSING", "PROCESSING", "COMPLETED"]);
      updates.stop();
      expect(unhandled.map(String)).toEqual([]);
    } finally {
      await client.dispose();
    }
  });
});
