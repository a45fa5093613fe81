// Redis away for one instance only, or from the start: what was lost is caught up everywhere once
// Redis is back (a job's state published again; streams of every job's changes ended with
// EVENTS_INTERRUPTED), on every instance, not only on the one that lost it.
import { connect, createServer, type AddressInfo, type Server, type Socket } from "node:net";
import { Redis } from "ioredis";
import { afterEach, describe, expect, it } from "vitest";
import type { Conveyor } from "../../src/app.js";
import { createEventBus, type JobChange } from "../../src/events/event-bus.js";
import { createLogger } from "../../src/logger.js";
import type { JobHandler } from "../../src/handlers/registry.js";
import { eventually, startTestConveyor, type TestConveyor } from "../support/conveyor.js";
import { collect, tokenFor, wsClient } from "../support/graphql-client.js";
import { errorCodes } from "../graphql/helpers.js";
import { freePort, redisServerAvailable, REDIS_SERVER, startRedis, startSiblingConveyor, stopRedis } from "../multi-instance/instances.js";

const parked: JobHandler<unknown, null> = { type: "parked", run: async () => null };
const later = () => new Date(Date.now() + 3_600_000);
const PROGRESS = `subscription($id: ID!) { jobProgress(jobId: $id) { status } }`;

/**
 * A TCP proxy to a local port, whose connections can all be cut (new ones closed at once) until it
 * is restored. It keeps its port while cut, so that no other test's server takes it meanwhile.
 */
async function cuttableProxy(target: number, options: { cut?: boolean } = {}): Promise<{ port: number; cut(): void; restore(): void; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let cut = options.cut ?? false;
  const server: Server = createServer((client) => {
    if (cut) {
      client.destroy();
      return;
    }
    const upstream = connect(target, "127.0.0.1");
    sockets.add(client).add(upstream);
    const end = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("error", end).on("close", end).pipe(upstream);
    upstream.on("error", end).on("close", end).pipe(client);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const cutAll = () => {
    cut = true;
    for (const socket of sockets) socket.destroy();
    sockets.clear();
  };
  return {
    port: (server.address() as AddressInfo).port,
    cut: cutAll,
    restore: () => void (cut = false),
    close: async () => {
      cutAll();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

describe.skipIf(!redisServerAvailable)(`Redis away for one instance, or from the start (needs ${REDIS_SERVER})`, () => {
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  /** A Redis server of the test's own, and a client to command it. */
  async function ownRedis(): Promise<{ port: number; admin: Redis }> {
    const port = await freePort();
    const redis = await startRedis(port);
    cleanups.push(() => stopRedis(redis));
    const admin = new Redis(port, "127.0.0.1", { maxRetriesPerRequest: 1 });
    cleanups.push(() => admin.disconnect());
    return { port, admin };
  }

  /** Alice's jobProgress subscription to a new job of hers, due in an hour, once it got the job's first state. */
  async function watchNewJob(conveyor: TestConveyor): Promise<{ id: string; statuses: () => string[] }> {
    const client = wsClient(conveyor, await tokenFor(conveyor, "alice"));
    cleanups.push(() => client.dispose());
    const id = (await conveyor.jobs.enqueue({ type: "parked", owner: "alice", runAt: later() }, "alice")).job.id;
    const stream = collect(client, PROGRESS, { id });
    const statuses = () => stream.events.map((event) => (event.data as { jobProgress: { status: string } }).jobProgress.status);
    await eventually(() => statuses().length > 0, 5000);
    return { id, statuses };
  }

  it("a jobProgress subscription opened before Redis was ever reached gets the job's state at once, and a change made meanwhile once Redis is up", async () => {
    const { port } = await ownRedis();
    // Redis unreachable from the start: the instance's only way to it is cut.
    const proxy = await cuttableProxy(port, { cut: true });
    cleanups.push(() => proxy.close());
    const conveyor = await startTestConveyor({ handlers: [parked], environment: { REDIS_URL: `redis://127.0.0.1:${proxy.port}` } });
    cleanups.push(() => conveyor.dispose());
    const { id, statuses } = await watchNewJob(conveyor);
    expect(statuses()).toEqual(["QUEUED"]);
    await conveyor.jobs.cancel(id, "alice");
    proxy.restore();
    await eventually(() => statuses().includes("CANCELLED"), 15_000);
  }, 60_000);

  it("a subscriber's catch-up after its connection returns does not go through Redis: it reaches it while publishes still fail", async () => {
    const { port, admin } = await ownRedis();
    const conveyor = await startTestConveyor({ handlers: [parked], environment: { REDIS_URL: `redis://127.0.0.1:${port}` } });
    cleanups.push(() => conveyor.dispose());
    const { id, statuses } = await watchNewJob(conveyor);
    await conveyor.events.whenListening(`job:changed:${id}`);

    // Redis refuses every PUBLISH from now on (its one user loses the command): the cancel's event is lost.
    await admin.call("ACL", "SETUSER", "default", "-publish");
    cleanups.unshift(() => admin.call("ACL", "SETUSER", "default", "+publish").catch(() => undefined));
    await conveyor.jobs.cancel(id, "alice");
    await eventually(() => conveyor.events.publishFailures > 0, 10_000);
    expect(statuses()).toEqual(["QUEUED"]);
    // The subscribing connection is dropped and comes back; publishes still fail.
    await admin.call("CLIENT", "KILL", "TYPE", "pubsub");
    await eventually(() => statuses().includes("CANCELLED"), 15_000);
  }, 60_000);

  it("a catch-up whose read of the followed jobs fails (the database away too) reads again until it works", async () => {
    const { port, admin } = await ownRedis();
    const jobId = "0193a4f0-0000-7000-8000-000000000001";
    const state: JobChange = {
      jobId, type: "parked", owner: "alice", status: "CANCELLED", previousStatus: "QUEUED", stage: null, progress: 0,
      bytesDone: null, bytesTotal: null, retryCount: 0, errorCode: null, revision: 2, at: new Date().toISOString(),
    };
    let reads = 0;
    const bus = createEventBus(`redis://127.0.0.1:${port}`, {
      logger: createLogger("silent"),
      currentState: async () => {
        reads += 1;
        if (reads < 3) throw new Error("database unavailable");
        return [state];
      },
    });
    cleanups.push(() => bus.close());
    const received: JobChange[] = [];
    bus.listen<JobChange>(`job:changed:${jobId}`, (change) => received.push(change));
    await bus.whenListening(`job:changed:${jobId}`);
    await admin.call("CLIENT", "KILL", "TYPE", "pubsub");
    await eventually(() => received.length > 0, 15_000);
    expect(reads).toBe(3);
    expect(received).toEqual([state]);
  }, 30_000);

  it("changes an instance could not publish reach the other instance's subscribers once it is back: jobProgress catches up, jobUpdates ends with EVENTS_INTERRUPTED", async () => {
    const { port } = await ownRedis();
    const proxy = await cuttableProxy(port);
    cleanups.push(() => proxy.close());
    const a: TestConveyor = await startTestConveyor({ handlers: [parked], environment: { REDIS_URL: `redis://127.0.0.1:${port}` } });
    cleanups.push(() => a.dispose());
    // B reaches Redis through the proxy: it alone loses Redis.
    const b: Conveyor = await startSiblingConveyor(a, { handlers: [parked], environment: { REDIS_URL: `redis://127.0.0.1:${proxy.port}` } });
    cleanups.push(() => b.stop());
    const [operators, users] = [wsClient(a, await tokenFor(a, "olga", "operator")), wsClient(a, await tokenFor(a, "alice"))];
    cleanups.push(() => operators.dispose(), () => users.dispose());

    const watched = (await a.jobs.enqueue({ type: "parked", owner: "alice", runAt: later() }, "alice")).job.id;
    const progress = collect(users, PROGRESS, { id: watched });
    const updates = collect(operators, `subscription { jobUpdates { jobId status } }`);
    await eventually(() => progress.events.length > 0 && a.events.listenerCount("jobs:changed") === 1);
    await a.events.whenListening("jobs:changed");
    const warmUp = (await b.jobs.enqueue({ type: "parked", owner: "alice", runAt: later() }, "alice")).job.id;
    await eventually(() => updates.events.some((event) => (event.data as { jobUpdates: { jobId: string } }).jobUpdates.jobId === warmUp), 10_000);

    proxy.cut();
    // B cancels the watched job while it cannot reach Redis: the change is lost on its way to A.
    await b.jobs.cancel(watched, "alice");
    await eventually(() => b.events.publishFailures > 0, 20_000);
    proxy.restore();

    const ended = await Promise.race([updates.done, new Promise<never>((_, reject) => setTimeout(() => reject(new Error("A's jobUpdates went on with a gap")), 20_000))]);
    expect(errorCodes(ended.error)).toEqual(["EVENTS_INTERRUPTED"]);
    await eventually(() => progress.events.some((event) => (event.data as { jobProgress: { status: string } }).jobProgress.status === "CANCELLED"), 10_000);
  }, 90_000);
});
