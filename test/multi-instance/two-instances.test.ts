// Issue 11, item 6: several instances on one PostgreSQL behave as one service, with the events
// between them carried by PostgreSQL LISTEN/NOTIFY (no Redis) or by Redis.
import type { ChildProcess } from "node:child_process";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import type { Conveyor } from "../../src/app.js";
import { loadConfig } from "../../src/config.js";
import { EVENTS_CHANNEL, MAX_NOTIFY_BYTES } from "../../src/events/pg-event-target.js";
import { WAKE_POOLS } from "../../src/jobs/sql.js";
import type { JobHandler } from "../../src/handlers/registry.js";
import { eventually, startTestConveyor, type TestConveyor } from "../support/conveyor.js";
import { collect, tokenFor, wsClient } from "../support/graphql-client.js";
import { enqueue, gql, ok } from "../graphql/helpers.js";
import { freePort, redisServerAvailable, startRedis, startSiblingConveyor, stopRedis } from "./instances.js";

/** Which instance ran each job, every time a handler was called: exactly-once shows here. */
const calls = new Map<string, string[]>();

/** Released when B runs a job: A's jobs marked `untilBRuns` wait for it (at most 10 s). */
let bRuns = latch();

function latch(): { reached: Promise<void>; release: () => void } {
  let release!: () => void;
  const reached = new Promise<void>((resolve) => (release = resolve));
  return { reached, release };
}

function counted(instance: string): JobHandler<{ ms?: number; steps?: number; untilBRuns?: boolean }, { by: string }> {
  return {
    type: "counted",
    async run(payload, context) {
      calls.set(context.job.id, [...(calls.get(context.job.id) ?? []), instance]);
      if (instance === "B") bRuns.release();
      else if (payload.untilBRuns) await Promise.race([bRuns.reached, new Promise((resolve) => setTimeout(resolve, 10_000))]);
      const steps = payload.steps ?? 0;
      for (let step = 1; step <= steps; step++) {
        await context.progress(`step ${step}`, Math.round((step / steps) * 90));
        await new Promise((resolve) => setTimeout(resolve, 40));
      }
      await new Promise((resolve) => setTimeout(resolve, payload.ms ?? 5));
      return { by: instance };
    },
  };
}

const HEALTH = `{ queueHealth { status reasons stats { counts { queued processing completed failed retrying cancelled validationFailed } successRate stalled } } }`;

type Mode = { name: "postgres" | "redis"; redisUrl?: string };

// Without REDIS_URL a private redis-server stands in, so both transports are covered in every run.
const privateRedis: { child?: ChildProcess } = {};
async function modes(): Promise<Mode[]> {
  const list: Mode[] = [{ name: "postgres" }];
  if (process.env.REDIS_URL) list.push({ name: "redis", redisUrl: process.env.REDIS_URL });
  else if (redisServerAvailable) {
    const port = await freePort();
    privateRedis.child = await startRedis(port);
    list.push({ name: "redis", redisUrl: `redis://127.0.0.1:${port}` });
  } else console.warn("two-instances: no REDIS_URL and no redis-server; the Redis mode is skipped");
  return list;
}

describe("item 6: two instances on one database", () => {
  const running: { a?: TestConveyor; b?: Conveyor } = {};
  afterAll(async () => {
    await running.b?.stop();
    await running.a?.dispose();
    if (privateRedis.child) await stopRedis(privateRedis.child);
  });

  it("share jobs (each run exactly once, by both), progress events and queue health; through PostgreSQL NOTIFY and through Redis", async () => {
    for (const mode of await modes()) {
      calls.clear();
      // An empty REDIS_URL means none: the instances then find each other through PostgreSQL.
      const environment = { WORKER_ENABLED: "true", WORKER_CONCURRENCY: "4", WORKER_PREFETCH: "0", REDIS_URL: mode.redisUrl ?? "" };
      const a = (running.a = await startTestConveyor({ handlers: [counted("A")], environment }));
      const b = (running.b = await startSiblingConveyor(a, { handlers: [counted("B")], environment }));
      expect([a.events.transport, b.events.transport]).toEqual([mode.name, mode.name]);
      const alice = await tokenFor(a, "alice");
      const olga = await tokenFor(a, "olga", "operator");

      // Every job enqueued through A; both pools take from the one queue. A's idle pool takes a job
      // from its enqueue while it has a slot free, and on a machine where A keeps up, B got 0 of 120
      // once: A's jobs wait until B has run one, so A's slots fill and B must take the rest.
      bRuns = latch();
      const ids: string[] = [];
      for (let index = 0; index < 120; index++) ids.push(await enqueue(a, alice, { type: "counted", payload: { ms: 20, untilBRuns: true } }));
      await eventually(async () => {
        const { rows } = await a.database.pool.query<{ done: number }>(`SELECT count(*)::int AS done FROM processing_jobs WHERE id = ANY($1) AND status = 'COMPLETED'`, [ids]);
        return rows[0]!.done === ids.length;
      }, 60_000, 50);
      const perJob = ids.map((id) => calls.get(id) ?? []);
      expect(perJob.filter((runs) => runs.length !== 1), `${mode.name}: jobs not run exactly once`).toEqual([]);
      const byA = perJob.filter((runs) => runs[0] === "A").length;
      const byB = perJob.filter((runs) => runs[0] === "B").length;
      console.info(`two-instances (${mode.name}): ${ids.length} jobs, ${byA} run by A, ${byB} by B, each exactly once`);
      expect(byA).toBeGreaterThan(0);
      expect(byB).toBeGreaterThan(0);

      // A stops working; a subscriber on A follows a job only B can run, enqueued through A.
      await a.workerPool!.stop();
      const client = wsClient(a, alice);
      try {
        // Due only once the subscriber holds its first event, so that it sees QUEUED whatever the
        // machine's speed (a run_at 800 ms ahead was not enough once): then made due, and B woken.
        const followed = await enqueue(a, alice, { type: "counted", payload: { steps: 4 }, runAt: new Date(Date.now() + 3600_000).toISOString() });
        const stream = collect(client, `subscription($id: ID!) { jobProgress(jobId: $id) { status stage progress } }`, { id: followed });
        await eventually(() => stream.events.length > 0);
        await a.database.pool.query("UPDATE processing_jobs SET run_at = now() WHERE id = $1", [followed]);
        await a.database.pool.query(WAKE_POOLS);
        const { events, error } = await stream.done;
        expect(error).toBeUndefined();
        const seen = events.map((event) => (event.data as { jobProgress: { status: string; stage: string | null } }).jobProgress);
        expect(calls.get(followed)).toEqual(["B"]);
        expect(seen[0]!.status).toBe("QUEUED");
        expect(seen.at(-1)!.status).toBe("COMPLETED");
        // Progress B reported reached A's subscriber.
        expect(seen.filter((state) => state.status === "PROCESSING" && state.stage?.startsWith("step")).length).toBeGreaterThanOrEqual(1);
      } finally {
        await client.dispose();
      }

      // One queue, one answer, whichever instance is asked.
      const [fromA, fromB] = await Promise.all([gql(a, HEALTH, {}, { token: olga }), gql(b, HEALTH, {}, { token: olga })]);
      expect(ok(fromA).queueHealth).toEqual(ok(fromB).queueHealth);
      expect(ok(fromA).queueHealth.stats.counts.completed).toBe(ids.length + 1);

      await b.stop();
      running.b = undefined;
      await a.dispose();
      running.a = undefined;
    }
  }, 180_000);

  it("EVENTS_TRANSPORT=memory: the instance hears none of the others' changes, while they hear its own from the database; redis without REDIS_URL is refused", async () => {
    const handlers = [{ type: "parked", run: async () => null }];
    const a = (running.a = await startTestConveyor({ handlers, environment: { REDIS_URL: "", EVENTS_TRANSPORT: "memory" } }));
    expect(a.events.transport).toBe("memory");
    const b = await startSiblingConveyor(a, { handlers, environment: { REDIS_URL: "" } });
    expect(b.events.transport).toBe("postgres");
    const c = await startSiblingConveyor(a, { handlers, environment: { REDIS_URL: "" } });
    const heardByA: string[] = [];
    const heardByC: string[] = [];
    const stopA = a.subscribe(undefined, (change) => heardByA.push(change.jobId));
    const stopC = c.subscribe(undefined, (change) => heardByC.push(change.jobId));
    await Promise.all([stopA.listening, stopC.listening]);
    const parked = { type: "parked", runAt: new Date(Date.now() + 3600_000) };
    // The statement that creates a job tells the instances following it, whoever made it.
    const fromA = await a.enqueue(parked);
    const fromB = await b.enqueue(parked);
    await eventually(() => heardByA.includes(fromA.job.id) && heardByC.includes(fromA.job.id) && heardByC.includes(fromB.job.id));
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(heardByA).not.toContain(fromB.job.id);
    stopA();
    stopC();
    await Promise.all([b.stop(), c.stop()]);
    await a.dispose();
    running.a = undefined;
    expect(() => loadConfig({ EVENTS_TRANSPORT: "redis" })).toThrow(/EVENTS_TRANSPORT: redis needs REDIS_URL/);
  });

  it("sends other instances only the job changes someone there follows, from the statement that made them", async () => {
    const handlers = [{ type: "quick", run: async () => null }];
    const a = (running.a = await startTestConveyor({ handlers, environment: { REDIS_URL: "", WORKER_ENABLED: "true", WORKER_CONCURRENCY: "10" } }));
    const b = await startSiblingConveyor(a, { handlers, environment: { REDIS_URL: "" } });
    expect([a.events.transport, b.events.transport]).toEqual(["postgres", "postgres"]);
    // Every notification on the events channel, as any instance's LISTEN connection gets it.
    const wire = new pg.Client({ connectionString: a.databaseUrl });
    await wire.connect();
    const sent: string[] = [];
    wire.on("notification", (message) => sent.push(message.payload ?? ""));
    await wire.query(`LISTEN ${EVENTS_CHANNEL}`);
    try {
      const unfollowed = await Promise.all(Array.from({ length: 100 }, () => a.enqueue({ type: "quick" })));
      await eventually(async () => (await Promise.all(unfollowed.map((each) => a.jobs.find(each.job.id)))).every((job) => job?.status === "COMPLETED"));
      await new Promise((resolve) => setTimeout(resolve, 200));
      // 300 changes (created, claimed, completed) that nobody on another instance follows: none sent.
      expect(sent).toEqual([]);

      const followed = await a.enqueue({ type: "quick", runAt: new Date(Date.now() + 1000) });
      const heard: string[] = [];
      const unsubscribe = b.subscribe(followed.job.id, (change) => heard.push(change.status));
      await unsubscribe.listening;
      await eventually(() => heard.at(-1) === "COMPLETED", 10_000);
      expect(heard).toEqual(["PROCESSING", "COMPLETED"]);
      // The wire's copy of a notification may come in after B's listener has passed it on.
      const sentEntries = () => sent.flatMap((payload) => (JSON.parse(payload) as { entries: [string[], { jobId: string }][] }).entries);
      await eventually(() => sentEntries().length >= 2, 5_000).catch(() => undefined);
      const entries = sentEntries();
      expect(entries.map(([topics, change]) => [topics, change.jobId])).toEqual([
        [[`job:changed:${followed.job.id}`], followed.job.id],
        [[`job:changed:${followed.job.id}`], followed.job.id],
      ]);
      unsubscribe();
      // Its topic is deregistered, if not at once (a removal waits a moment to share a statement).
      const registrations = async () => (await wire.query<{ n: number }>(`SELECT count(*)::int AS n FROM event_listeners WHERE topic = $1`, [`job:changed:${followed.job.id}`])).rows[0]!.n;
      await eventually(async () => (await registrations()) === 0);

      // Packing: under PostgreSQL's 8,000-byte limit per notification, a change too large for one left out.
      sent.length = 0;
      const changes = [{ jobId: "huge", owner: "x".repeat(9000) }, ...Array.from({ length: 100 }, (_, index) => ({ jobId: `small-${index}`, owner: "o".repeat(100) }))];
      await wire.query(`SELECT conveyor_announce(ARRAY['jobs:changed'], $1::json, false, 'elsewhere', $2, $3)`, [JSON.stringify(changes), EVENTS_CHANNEL, MAX_NOTIFY_BYTES]);
      await eventually(() => sent.flatMap((payload) => (JSON.parse(payload) as { entries: unknown[] }).entries).length === 100);
      expect(sent.length).toBeGreaterThan(1);
      for (const payload of sent) expect(Buffer.byteLength(payload)).toBeLessThan(8000);
      const packed = sent.map((payload) => JSON.parse(payload) as { from: string; entries: [string[], { jobId: string }][] });
      expect(packed.every((notification) => notification.from === "elsewhere")).toBe(true);
      expect(packed.flatMap((notification) => notification.entries.map(([, change]) => change.jobId))).toEqual(changes.slice(1).map((change) => change.jobId));
    } finally {
      await wire.end();
      await b.stop();
      await a.dispose();
      running.a = undefined;
    }
  });

  it("misses no change of a job followed from another instance while it runs: registration, then first read", async () => {
    const handlers = [{ type: "short", run: async (payload: { ms: number }) => new Promise((resolve) => setTimeout(() => resolve(null), payload.ms)) }];
    const a = (running.a = await startTestConveyor({ handlers, environment: { REDIS_URL: "", WORKER_ENABLED: "true", WORKER_CONCURRENCY: "20" } }));
    const b = await startSiblingConveyor(a, { handlers, environment: { REDIS_URL: "" } });
    try {
      // Each job is followed from B at a random moment of its life, as a jobProgress subscriber
      // does: listen, wait until registered, read the job, then take changes newer than that read.
      const follow = async (jobId: string): Promise<string> => {
        await new Promise((resolve) => setTimeout(resolve, Math.random() * 30));
        let finished!: (status: string) => void;
        const ended = new Promise<string>((resolve) => (finished = resolve));
        const unsubscribe = b.subscribe(jobId, (change) => {
          if (change.status === "COMPLETED") finished(change.status);
        });
        try {
          await unsubscribe.listening;
          const job = await b.jobs.find(jobId);
          if (job?.status === "COMPLETED") return job.status;
          return await Promise.race([ended, new Promise<string>((resolve) => setTimeout(() => resolve(`stuck at ${job?.status}`), 10_000))]);
        } finally {
          unsubscribe();
        }
      };
      const jobs = await Promise.all(Array.from({ length: 300 }, (_, index) => a.enqueue({ type: "short", payload: { ms: 5 + (index % 20) } })));
      const outcomes = await Promise.all(jobs.map(({ job }) => follow(job.id)));
      expect(outcomes.filter((outcome) => outcome !== "COMPLETED")).toEqual([]);
    } finally {
      await b.stop();
      await a.dispose();
      running.a = undefined;
    }
  }, 60_000);

  it("drops an event too large for a notification with a log line, and keeps publishing the rest", async () => {
    const a = (running.a = await startTestConveyor({ environment: { REDIS_URL: "" } }));
    expect(a.events.transport).toBe("postgres");
    const b = await startSiblingConveyor(a, { environment: { REDIS_URL: "" } });
    // What instance B hears of A's events (those not about jobs, which the database sends itself);
    // this instance's own listeners get every event at once.
    const received: { stage: string }[] = [];
    const unsubscribe = b.events.listen<{ stage: string }>("queue-health:changed", (change) => received.push(change));
    await b.events.whenListening("queue-health:changed");
    const before = a.events.publishFailures;
    a.events.pubsub.publish("queue-health:changed", { stage: "x".repeat(9000) } as never);
    a.events.pubsub.publish("queue-health:changed", { stage: "small" } as never);
    await eventually(() => received.length > 0);
    expect(received.map((change) => change.stage)).toEqual(["small"]);
    expect(a.events.publishFailures).toBeGreaterThan(before);
    unsubscribe();
    await b.stop();
    await a.dispose();
    running.a = undefined;
  });
});
