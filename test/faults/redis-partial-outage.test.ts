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
 * `holdAfter(word)`: on each connection, what the client sends after a chunk containing `word` is
 * held back (never forwarded), and counted in `held()`.
 */
async function cuttableProxy(
  target: number,
  options: { cut?: boolean } = {},
): Promise<{ port: number; cut(): void; restore(): void; holdAfter(word: string | null): void; held(): number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  let cut = options.cut ?? false;
  let holdAfter: string | null = null;
  let held = 0;
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
    let holding = false;
    client.on("error", end).on("close", end).on("data", (chunk: Buffer) => {
      if (holding) {
        held += chunk.length;
        return;
      }
      upstream.write(chunk);
      if (holdAfter !== null && chunk.toString("latin1").toLowerCase().includes(holdAfter)) holding = true;
    });
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
    holdAfter: (word) => void (holdAfter = word),
    held: () => held,
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
  async function ownRedis(): Promise<{ port: number; admin: Redis; server: Awaited<ReturnType<typeof startRedis>> }> {
    const port = await freePort();
    const server = await startRedis(port);
    cleanups.push(() => stopRedis(server));
    const admin = new Redis(port, "127.0.0.1", { maxRetriesPerRequest: 1 });
    cleanups.push(() => admin.disconnect());
    return { port, admin, server };
  }

  /** Cancels the job while Redis refuses every PUBLISH (its one user loses the command): the cancel's event is lost. */
  async function cancelUnpublished(conveyor: TestConveyor, admin: Redis, id: string): Promise<void> {
    await admin.call("ACL", "SETUSER", "default", "-publish");
    await conveyor.jobs.cancel(id, "alice");
    await eventually(() => conveyor.events.publishFailures > 0, 10_000);
  }

  /** The bus of an instance (createEventBus), on this Redis, followed jobs read with `currentState`. */
  function busOn(port: number, currentState: (jobIds: string[]) => Promise<JobChange[]> = async () => []) {
    const bus = createEventBus(`redis://127.0.0.1:${port}`, { logger: createLogger("silent"), currentState });
    cleanups.push(() => Promise.race([bus.close(), new Promise((resolve) => setTimeout(resolve, 2000))]));
    return bus;
  }

  /** A change of a job that the tests below follow on a bare bus. */
  function changeOf(jobId: string, fields: Partial<JobChange>): JobChange {
    return {
      jobId, type: "parked", owner: "alice", status: "QUEUED", previousStatus: null, stage: null, progress: 0,
      bytesDone: null, bytesTotal: null, retryCount: 0, errorCode: null, revision: 1, at: new Date().toISOString(), ...fields,
    };
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

    await cancelUnpublished(conveyor, admin, id);
    expect(statuses()).toEqual(["QUEUED"]);
    // The subscribing connection is dropped and comes back; publishes still fail.
    await admin.call("CLIENT", "KILL", "TYPE", "pubsub");
    await eventually(() => statuses().includes("CANCELLED"), 15_000);
  }, 60_000);

  it("a catch-up whose read of the followed jobs fails (the database away too) reads again until it works", async () => {
    const { port, admin } = await ownRedis();
    const jobId = "0193a4f0-0000-7000-8000-000000000001";
    const state = changeOf(jobId, { status: "CANCELLED", previousStatus: "QUEUED", revision: 2 });
    let reads = 0;
    const bus = busOn(port, async () => {
      reads += 1;
      if (reads < 3) throw new Error("database unavailable");
      return [state];
    });
    const received: JobChange[] = [];
    bus.listen<JobChange>(`job:changed:${jobId}`, (change) => received.push(change));
    await bus.whenListening(`job:changed:${jobId}`);
    await admin.call("CLIENT", "KILL", "TYPE", "pubsub");
    await eventually(() => received.length > 0, 15_000);
    expect(reads).toBe(3);
    expect(received).toEqual([state]);
  }, 30_000);

  it("a followed id that is not a job's (not even a UUID) keeps nobody else from catching up", async () => {
    const { port, admin } = await ownRedis();
    const conveyor = await startTestConveyor({ handlers: [parked], environment: { REDIS_URL: `redis://127.0.0.1:${port}` } });
    cleanups.push(() => conveyor.dispose());
    const { id, statuses } = await watchNewJob(conveyor);
    await conveyor.events.whenListening(`job:changed:${id}`);
    // Someone embedding Conveyor follows a job by an id that is not a UUID (a typo, a foreign key).
    cleanups.push(conveyor.subscribe("not-a-uuid", () => {}));

    await cancelUnpublished(conveyor, admin, id);
    await admin.call("ACL", "SETUSER", "default", "+publish");
    await admin.call("CLIENT", "KILL", "TYPE", "pubsub");
    await eventually(() => statuses().includes("CANCELLED"), 15_000);
  }, 60_000);

  it("of two catch-ups, only the newer's read is delivered: an older read answering later shows no older state", async () => {
    const { port, admin } = await ownRedis();
    const jobId = "0193a4f0-0000-7000-8000-000000000002";
    const at = (ms: number) => new Date(Date.UTC(2026, 0, 1) + ms).toISOString();
    const progress = (percent: number, ms: number) => changeOf(jobId, { status: "PROCESSING", previousStatus: "QUEUED", progress: percent, revision: 3, at: at(ms) });
    let reads = 0;
    let answerFirstRead!: () => void;
    const firstReadAnswers = new Promise<void>((resolve) => (answerFirstRead = resolve));
    const bus = busOn(port, async () => {
      reads += 1;
      if (reads > 1) return [progress(60, 2000)];
      await firstReadAnswers;
      return [progress(40, 1000)];
    });
    const received: number[] = [];
    bus.listen<JobChange>(`job:changed:${jobId}`, (change) => received.push(change.progress));
    await bus.whenListening(`job:changed:${jobId}`);
    await admin.call("CLIENT", "KILL", "TYPE", "pubsub");
    await eventually(() => reads === 1, 10_000);
    await admin.call("CLIENT", "KILL", "TYPE", "pubsub");
    await eventually(() => reads === 2 && received.length > 0, 10_000);
    answerFirstRead();
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(received).toEqual([60]);
  }, 30_000);

  it("one catch-up per return: the connection lost again while the catch-up's PING waits gives one, not two", async () => {
    const { port } = await ownRedis();
    const proxy = await cuttableProxy(port);
    cleanups.push(() => proxy.close());
    const bus = busOn(proxy.port);
    let interruptions = 0;
    bus.onInterrupted(() => (interruptions += 1));
    const topic = "job:changed:0193a4f0-0000-7000-8000-000000000003";
    bus.listen(topic, () => {});
    await bus.whenListening(topic);
    // The subscribing connection comes back and subscribes again; what it sends after that (the
    // catch-up's PING) never reaches Redis.
    proxy.holdAfter("subscribe");
    proxy.cut();
    proxy.restore();
    await eventually(() => proxy.held() > 0, 10_000);
    expect(interruptions).toBe(0); // the PING waits
    proxy.holdAfter(null);
    proxy.cut();
    proxy.restore();
    await eventually(() => interruptions > 0, 10_000);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    expect(interruptions).toBe(1);
  }, 30_000);

  it("an instance whose publishes failed tells the others once its publishing connection is back, even when it publishes nothing more", async () => {
    const { port, admin } = await ownRedis();
    const jobId = "0193a4f0-0000-7000-8000-000000000005";
    const cancelled = changeOf(jobId, { status: "CANCELLED", previousStatus: "QUEUED", revision: 2 });
    const failing = busOn(port);
    const other = busOn(port, async () => [cancelled]);
    const received: JobChange[] = [];
    other.listen<JobChange>(`job:changed:${jobId}`, (change) => received.push(change));
    await other.whenListening(`job:changed:${jobId}`);

    await admin.call("ACL", "SETUSER", "default", "-publish");
    failing.publishJobChange(cancelled);
    await eventually(() => failing.publishFailures > 0, 10_000);
    await admin.call("ACL", "SETUSER", "default", "+publish");
    // Only the failing bus's publishing connection is dropped (the one whose last command was a PUBLISH); it comes back.
    const publishing = String(await admin.call("CLIENT", "LIST", "TYPE", "normal")).split("\n").filter((line) => / cmd=publish /.test(line));
    expect(publishing).toHaveLength(1);
    await admin.call("CLIENT", "KILL", "ID", /id=(\d+)/.exec(publishing[0]!)![1]!);
    await eventually(() => received.length > 0, 15_000);
    expect(received).toEqual([cancelled]);
  }, 30_000);

  it("a subscriber's first read waits at most a few seconds for Redis to confirm: a server that accepts connections and says nothing holds nobody", async () => {
    const { port, server } = await ownRedis();
    server.kill("SIGSTOP"); // the kernel still accepts connections; nothing answers
    cleanups.push(() => server.kill("SIGCONT"));
    const bus = busOn(port);
    const topic = "job:changed:0193a4f0-0000-7000-8000-000000000004";
    bus.listen(topic, () => {});
    const outcome = await Promise.race([bus.whenListening(topic).then(() => "settled"), new Promise((resolve) => setTimeout(() => resolve("waiting"), 20_000))]);
    expect(outcome).toBe("settled");
  }, 40_000);

  it("a Redis that stalls for a while (no connection lost) delays a subscriber's first read by at most 3 s, reads its job again once confirmed, and interrupts nobody", async () => {
    const { port, server } = await ownRedis();
    const followed = "0193a4f0-0000-7000-8000-000000000006";
    const state = changeOf(followed, { status: "PROCESSING", previousStatus: "QUEUED", revision: 2 });
    const bus = busOn(port, async () => [state]);
    let interruptions = 0;
    bus.onInterrupted(() => (interruptions += 1));
    // A stream that was listening long before: its topic is confirmed.
    bus.listen("job:changed:0193a4f0-0000-7000-8000-000000000007", () => {});
    await bus.whenListening("job:changed:0193a4f0-0000-7000-8000-000000000007");

    server.kill("SIGSTOP");
    cleanups.push(() => server.kill("SIGCONT"));
    const received: JobChange[] = [];
    bus.listen<JobChange>(`job:changed:${followed}`, (change) => received.push(change));
    // Settles although Redis, stopped, cannot confirm anything.
    await bus.whenListening(`job:changed:${followed}`);
    expect(received).toEqual([]);
    server.kill("SIGCONT");
    await eventually(() => received.length > 0, 10_000);
    await new Promise((resolve) => setTimeout(resolve, 500));
    expect(received).toEqual([state]);
    expect(interruptions).toBe(0);
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
