// Issue 11, "What it must show": two real server processes (`node --import tsx src/main.ts`, as
// `npm start` runs) sharing one database on the machine's PostgreSQL, once with events over
// PostgreSQL LISTEN/NOTIFY (REDIS_URL unset) and once over Redis. Jobs enqueued through A's API are
// run by both processes, each exactly once (counted from the JobEvents: one PROCESSING claim and
// one COMPLETED per job, and from each process's own claim/completion counters on /metrics); a
// graphql-ws subscriber on A sees the progress of jobs that B runs; queueHealth answers the same
// from both.
//
// Needs DATABASE_URL (the embedded database of a test run is locked to one process):
//   DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres npx vitest run test/multi-instance/two-processes.test.ts
// The Redis pass uses REDIS_URL if set, else redis://127.0.0.1:6379 if something answers there,
// else a private redis-server, else it is skipped with a warning.
import type { ChildProcess } from "node:child_process";
import { createConnection } from "node:net";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import type { Conveyor } from "../../src/app.js";
import { createTestDatabase } from "../support/database.js";
import { eventually } from "../support/conveyor.js";
import { collect, wsClient } from "../support/graphql-client.js";
import { killGroup, post, startConveyorProcess, tokenAs, type ConveyorProcess } from "../faults/process.js";
import { freePort, redisServerAvailable, startRedis, stopRedis } from "./instances.js";

const external = Boolean(process.env.DATABASE_URL);
if (!external) {
  console.warn(
    "two-processes.test.ts SKIPPED: it needs DATABASE_URL (two server processes must share one PostgreSQL; the embedded " +
      "database of a test run is locked to one process). Run: DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres npx vitest run test/multi-instance/two-processes.test.ts",
  );
}

const JOBS = 200;
/** Each job sleeps this long: long enough that a claimed job is seen PROCESSING by the sampler below. */
const SLEEP_MS = 150;
/** Jobs become due this long after the enqueue starts, so A's subscriber is listening before any runs. */
const DUE_AFTER_MS = 6000;

const ENQUEUE = `mutation($input: EnqueueJobInput!) { enqueueJob(input: $input) { created job { id status } } }`;
const PROGRESS = `subscription($id: ID!) { jobProgress(jobId: $id) { status stage progress } }`;
const HEALTH = `{ queueHealth { status reasons stats { counts { queued processing completed failed retrying cancelled validationFailed } successRate stalled } } }`;

type Transport = { name: "postgres" | "redis"; redisUrl?: string };
type Progress = { jobProgress: { status: string; stage: string | null; progress: number } };

const children: ConveyorProcess[] = [];
const databases: { drop(): Promise<void> }[] = [];
let privateRedis: ChildProcess | undefined;

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host: "127.0.0.1" }, () => (socket.end(), resolve(true)));
    socket.once("error", () => resolve(false));
    socket.setTimeout(1000, () => (socket.destroy(), resolve(false)));
  });
}

async function redisUrl(): Promise<string | undefined> {
  if (process.env.REDIS_URL) return process.env.REDIS_URL;
  if (await answers(6379)) return "redis://127.0.0.1:6379";
  if (!redisServerAvailable) return undefined;
  const port = await freePort();
  privateRedis = await startRedis(port);
  return `redis://127.0.0.1:${port}`;
}

async function stopChild(child: ConveyorProcess): Promise<void> {
  if (child.child.exitCode !== null || child.child.signalCode !== null) return;
  child.child.kill("SIGTERM");
  const stopped = await Promise.race([child.exited.then(() => true), new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 20_000))]);
  if (!stopped) killGroup(child.child);
}

/** This process's own counter `name{type="test-sleep"}` from its /metrics. */
async function counter(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split("\n").find((candidate) => candidate.startsWith(`${name}{`) && candidate.includes(`type="test-sleep"`));
  return line ? Number(line.slice(line.lastIndexOf(" ") + 1)) : 0;
}

/** The "Conveyor is listening" log line, parsed. */
function listeningLine(child: ConveyorProcess): { url: string; events: string; redis: boolean } {
  const line = child.output().split("\n").find((candidate) => candidate.includes("Conveyor is listening"))!;
  return JSON.parse(line);
}

describe.skipIf(!external)("issue 11: two server processes on one PostgreSQL", () => {
  afterAll(async () => {
    await Promise.all(children.map(stopChild));
    for (const database of databases) await database.drop();
    if (privateRedis) await stopRedis(privateRedis);
  }, 60_000);

  async function pass(transport: Transport): Promise<void> {
    const database = await createTestDatabase();
    databases.push(database);
    const environment = {
      DATABASE_URL: database.url,
      PORT: "0",
      WORKER_ENABLED: "true",
      // An empty REDIS_URL means none: events then go through PostgreSQL LISTEN/NOTIFY.
      REDIS_URL: transport.redisUrl ?? "",
    };
    const a = startConveyorProcess({ environment });
    const b = startConveyorProcess({ environment });
    children.push(a, b);
    const [urlA, urlB] = await Promise.all([a.listening, b.listening]);
    expect([listeningLine(a).events, listeningLine(b).events]).toEqual([transport.name, transport.name]);
    const workerOf = new Map([
      [a.child.pid!, "A"],
      [b.child.pid!, "B"],
    ]);
    const alice = await tokenAs("alice");
    const olga = await tokenAs("olga", "operator");
    const db = new pg.Pool({ connectionString: database.url, max: 2 });
    const socket = wsClient({ url: urlA } as Conveyor, alice);
    try {
      // 1. JOBS test-sleep jobs through A's API (a user may enqueue them), all due at one moment a
      //    few seconds ahead, so that A's subscriber follows every one of them from QUEUED.
      const dueAt = new Date(Date.now() + DUE_AFTER_MS).toISOString();
      const ids: string[] = new Array(JOBS);
      let next = 0;
      await Promise.all(
        Array.from({ length: 10 }, async () => {
          while (next < JOBS) {
            const index = next++;
            const data = await post(urlA, alice, ENQUEUE, { input: { type: "test-sleep", payload: { ms: SLEEP_MS }, runAt: dueAt } });
            expect(data.enqueueJob.created).toBe(true);
            ids[index] = data.enqueueJob.job.id;
          }
        }),
      );
      const streams = ids.map((id) => collect<Progress>(socket, PROGRESS, { id }));
      // Every subscription has its first event (the job's state when it subscribed).
      await eventually(() => streams.every((stream) => stream.events.length > 0), 30_000, 20);
      const subscribedBeforeDue = Date.now() < Date.parse(dueAt);

      // 2. Which process runs each job: the worker id (`host:pid:random`) in locked_by while it runs,
      //    sampled, and each job's result, which names the process that ran it.
      const runner = new Map<string, Set<string>>();
      let sampling = true;
      const sampler = (async () => {
        while (sampling) {
          const { rows } = await db.query<{ id: string; locked_by: string }>(`SELECT id, locked_by FROM processing_jobs WHERE status = 'PROCESSING' AND locked_by IS NOT NULL`);
          for (const row of rows) {
            const pid = Number(row.locked_by.split(":").at(-2));
            const who = workerOf.get(pid) ?? row.locked_by;
            runner.set(row.id, (runner.get(row.id) ?? new Set()).add(who));
          }
          await new Promise((resolve) => setTimeout(resolve, 15));
        }
      })();
      await eventually(async () => {
        const { rows } = await db.query<{ done: number }>(`SELECT count(*)::int AS done FROM processing_jobs WHERE status = 'COMPLETED'`);
        return rows[0]!.done === JOBS;
      }, 90_000, 50);
      sampling = false;
      await sampler;
      const ended = await Promise.all(streams.map((stream) => stream.done));

      // 3. Exactly once: one PROCESSING claim and one COMPLETED per job, nothing else after QUEUED.
      const { rows: perJob } = await db.query<{ id: string; processing: number; completed: number; other: number; retry_count: number }>(
        `SELECT j.id, j.retry_count,
                count(e.*) FILTER (WHERE e.to_status = 'PROCESSING')::int AS processing,
                count(e.*) FILTER (WHERE e.to_status = 'COMPLETED')::int AS completed,
                count(e.*) FILTER (WHERE e.to_status NOT IN ('QUEUED', 'PROCESSING', 'COMPLETED'))::int AS other
         FROM processing_jobs j LEFT JOIN job_events e ON e.job_id = j.id GROUP BY j.id`,
      );
      expect(perJob.length).toBe(JOBS);
      expect(perJob.filter((row) => row.processing !== 1 || row.completed !== 1 || row.other !== 0 || row.retry_count !== 0), `${transport.name}: jobs not claimed and completed exactly once`).toEqual([]);

      // Both processes ran some, by their own counters.
      const metrics = {
        A: { claims: await counter(urlA, "conveyor_job_claims_total"), completions: await counter(urlA, "conveyor_job_completions_total") },
        B: { claims: await counter(urlB, "conveyor_job_claims_total"), completions: await counter(urlB, "conveyor_job_completions_total") },
      };
      expect(metrics.A.claims + metrics.B.claims).toBe(JOBS);
      expect(metrics.A.completions + metrics.B.completions).toBe(JOBS);
      expect(metrics.A.completions).toBeGreaterThan(0);
      expect(metrics.B.completions).toBeGreaterThan(0);
      // Sampled while they ran (a loaded machine may sample few): never in two processes, and
      // only in the process whose result it is.
      const sampled = ids.map((id) => [...(runner.get(id) ?? [])]);
      expect(sampled.filter((who) => who.length > 1), "a job seen running in two processes").toEqual([]);
      const { rows: results } = await db.query<{ id: string; pid: string }>(`SELECT id, result->>'pid' AS pid FROM processing_jobs`);
      const ranIn = new Map(results.map((row) => [row.id, workerOf.get(Number(row.pid)) ?? `pid ${row.pid}`]));
      expect(ids.filter((id, index) => sampled[index]!.length === 1 && sampled[index]![0] !== ranIn.get(id)), "a job sampled in one process, its result from another").toEqual([]);
      const runners = ids.map((id) => [ranIn.get(id)!]);
      const byA = runners.filter((who) => who[0] === "A").length;
      const byB = runners.filter((who) => who[0] === "B").length;
      // Each process's own counters agree with the results.
      expect([byA, byB]).toEqual([metrics.A.completions, metrics.B.completions]);

      // 4. A's subscriber followed jobs that B ran: QUEUED (subscribed before it was due), then the
      //    PROCESSING B claimed, then COMPLETED, through the other process's events.
      const seen = ended.map(({ events, error }) => ({ error, states: events.map((event) => event.data?.jobProgress) }));
      expect(seen.filter((stream) => stream.error !== undefined)).toEqual([]);
      expect(seen.filter((stream) => stream.states.at(-1)?.status !== "COMPLETED").length, "streams that did not end with COMPLETED").toBe(0);
      const followedFromQueued = (index: number) => seen[index]!.states[0]?.status === "QUEUED";
      const live = (index: number) => {
        const statuses = seen[index]!.states.map((state) => state!.status);
        return statuses[0] === "QUEUED" && statuses.includes("PROCESSING") && statuses.at(-1) === "COMPLETED";
      };
      const fromB = ids.map((_, index) => index).filter((index) => runners[index]![0] === "B" && followedFromQueued(index));
      expect(fromB.length, "jobs run by B that A's subscriber followed from QUEUED").toBeGreaterThan(0);
      expect(fromB.filter((index) => !live(index)), "jobs run by B whose PROCESSING or COMPLETED did not reach A's subscriber").toEqual([]);
      if (subscribedBeforeDue) expect(ids.filter((_, index) => !live(index)).length, "streams without QUEUED → PROCESSING → COMPLETED").toBe(0);

      // 5. One queue, one answer, whichever process is asked (each caches it for HEALTH_CACHE_MS).
      const health = await eventually(async () => {
        const [fromA, fromB] = await Promise.all([post(urlA, olga, HEALTH), post(urlB, olga, HEALTH)]);
        return JSON.stringify(fromA) === JSON.stringify(fromB) && fromA.queueHealth.stats.counts.completed === JOBS ? fromA.queueHealth : false;
      }, 15_000, 250);
      expect(health.stats.counts).toMatchObject({ completed: JOBS, queued: 0, processing: 0, failed: 0, retrying: 0 });

      console.info(
        `two-processes (${transport.name}): ${JOBS} jobs enqueued through A; claimed/completed by A ${metrics.A.claims}/${metrics.A.completions}, ` +
          `by B ${metrics.B.claims}/${metrics.B.completions} (results: A ${byA}, B ${byB}; sampled while running: ${sampled.filter((who) => who.length > 0).length}); ` +
          `1 PROCESSING and 1 COMPLETED event per job; A's subscriber followed ${fromB.length} jobs run by B from QUEUED to COMPLETED; ` +
          `queueHealth ${health.status} from both`,
      );
    } finally {
      await socket.dispose();
      await db.end();
      await Promise.all([stopChild(a), stopChild(b)]);
    }
    // Stopped by SIGTERM: both drained and exited 0.
    expect((await a.exited).code).toBe(0);
    expect((await b.exited).code).toBe(0);
  }

  it("without Redis: events between the processes go through PostgreSQL LISTEN/NOTIFY", async () => {
    await pass({ name: "postgres" });
  }, 180_000);

  it("with REDIS_URL: events between the processes go through Redis", async (context) => {
    const url = await redisUrl();
    if (!url) {
      console.warn("two-processes.test.ts: no REDIS_URL, nothing on 127.0.0.1:6379 and no redis-server: the Redis pass is skipped");
      context.skip();
    }
    await pass({ name: "redis", redisUrl: url });
  }, 180_000);
});
