import { randomUUID } from "node:crypto";
import pg from "pg";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { ListenerRegistry } from "../../src/events/listener-registry.js";
import { createLogger } from "../../src/logger.js";
import { createTestDatabase } from "../support/database.js";

const topic = (jobId: string) => `job:changed:${jobId}`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const pidOf = async (client: pg.Client) => (await client.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;

type TestDatabase = Awaited<ReturnType<typeof openTestDatabase>>;

/** A database of its own with a pool, connections opened on demand, what the tests read and write of it, and one close for all. */
async function openTestDatabase() {
  const database = await createTestDatabase();
  const pool = new pg.Pool({ connectionString: database.url, max: 6 });
  // pool.end() and client.end() resolve before their sockets close, and the database's forced drop
  // in close() then terminates them: an error nobody awaits, not the test's.
  pool.on("error", () => {});
  const clients: pg.Client[] = [];
  return {
    url: database.url,
    pool,
    /** A connection of its own (a LISTEN connection, a worker holding a row), as `connectionString`'s user. */
    async client(connectionString = database.url): Promise<pg.Client> {
      const client = new pg.Client({ connectionString });
      client.on("error", () => {});
      await client.connect();
      clients.push(client);
      return client;
    },
    async insertJobs(...ids: string[]): Promise<void> {
      for (const id of ids) await pool.query(`INSERT INTO processing_jobs (id, type, owner, correlation_id) VALUES ($1, 'quick', 'o', 'c')`, [id]);
    },
    async rowsOf(pid: number): Promise<{ topic: string; instance_id: string }[]> {
      return (await pool.query(`SELECT topic, instance_id FROM event_listeners WHERE listener_pid = $1 ORDER BY topic`, [pid])).rows;
    },
    /** What a dead instance left under `pid`: registered an hour before any backend of the test started. */
    async leftBehind(pid: number, topicName: string): Promise<void> {
      await pool.query(`INSERT INTO event_listeners (topic, listener_pid, instance_id, registered_at) VALUES ($1, $2, 'dead-instance', now() - interval '1 hour')`, [topicName, pid]);
    },
    async close(): Promise<void> {
      for (const client of clients) await client.end().catch(() => undefined);
      await pool.end();
      await database.drop();
    },
  };
}

/** Waits until a statement starting with `prefix` waits for a lock (a row another transaction holds). */
async function waitingOnLock(pool: pg.Pool, prefix: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const { rows } = await pool.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND left(query, length($1)) = $1`,
      [prefix],
    );
    if (rows[0]!.n > 0) return;
    if (Date.now() > deadline) throw new Error(`no statement starting with ${JSON.stringify(prefix)} waited for a lock`);
    await sleep(10);
  }
}

it("does not call a topic listened to while the statement in flight deletes its registration (a page reload of a job), and registers it again", async () => {
  const db = await openTestDatabase();
  const [listenConnection, worker] = [await db.client(), await db.client()];
  const pid = await pidOf(listenConnection);
  const [reloaded, other] = [randomUUID(), randomUUID()];
  await db.insertJobs(reloaded, other);
  const registry = new ListenerRegistry(db.pool, "instance-a", createLogger("silent"));
  const registrations = async (id: string) =>
    (await db.pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM event_listeners WHERE topic = $1`, [topic(id)])).rows[0]!.n;
  try {
    registry.connected(pid);
    registry.add(topic(reloaded));
    await registry.whenListening(topic(reloaded));
    expect(await registrations(reloaded)).toBe(1);

    // A worker's write holds the other job's row: the statement registering it (which takes the
    // first job's removal along) waits for it.
    await worker.query("BEGIN");
    await worker.query("SELECT 1 FROM processing_jobs WHERE id = $1 FOR UPDATE", [other]);
    registry.remove(topic(reloaded));
    registry.add(topic(other));
    await sleep(100);
    // The user comes back to the first job while that statement is in flight.
    registry.add(topic(reloaded));
    let listening = false;
    const whenListening = registry.whenListening(topic(reloaded)).then(() => (listening = true));
    await sleep(50);
    expect(listening).toBe(false);
    await worker.query("ROLLBACK");
    await whenListening;
    // Once it says so, changes to the job reach this instance: the registration is there.
    expect(await registrations(reloaded)).toBe(1);
  } finally {
    await worker.query("ROLLBACK");
    await registry.close();
    await db.close();
  }
});

it("sweeps the rows of a gone LISTEN connection whose pid another backend now has, and takes such a row over when its own connection gets the pid", async () => {
  const db = await openTestDatabase();
  // `reused` is any other backend: it stands for one that got the pid of an instance that died.
  const [listenConnection, reused] = [await db.client(), await db.client()];
  const [ownPid, reusedPid] = [await pidOf(listenConnection), await pidOf(reused)];
  const job = randomUUID();
  await db.insertJobs(job);
  await db.leftBehind(reusedPid, "jobs:changed");
  await db.leftBehind(ownPid, topic(job));
  const registry = new ListenerRegistry(db.pool, "instance-a", createLogger("silent"));
  try {
    registry.add(topic(job));
    registry.connected(ownPid); // sweeps, then registers
    await registry.whenListening(topic(job));
    const deadline = Date.now() + 5_000;
    while ((await db.rowsOf(reusedPid)).length > 0 && Date.now() < deadline) await sleep(25);
    expect(await db.rowsOf(reusedPid)).toEqual([]);
    expect(await db.rowsOf(ownPid)).toEqual([{ topic: topic(job), instance_id: "instance-a" }]);
  } finally {
    await registry.close();
    await db.close();
  }
});

it("keeps a registration that another instance's sweep meets while the registering statement holds it (found by a review)", async () => {
  const db = await openTestDatabase();
  const [listenA, listenB, blocker] = [await db.client(), await db.client(), await db.client()];
  const [pidA, pidB] = [await pidOf(listenA), await pidOf(listenB)];
  const [job1, job2] = [randomUUID(), randomUUID()];
  await db.insertJobs(job1, job2);
  const a = new ListenerRegistry(db.pool, "instance-a", createLogger("silent"));
  const b = new ListenerRegistry(db.pool, "instance-b", createLogger("silent"));
  try {
    a.connected(pidA);
    await a.whenListening("nothing"); // settles at once: nothing to wait for
    // A gone instance's row under the pid A's LISTEN connection has now: A's registration takes it over.
    await db.leftBehind(pidA, topic(job1));
    // Holds A's registering statement after it has updated job1's row: job2's row conflicts with this uncommitted one.
    await blocker.query("BEGIN");
    await blocker.query(`INSERT INTO event_listeners (topic, listener_pid, instance_id) VALUES ($1, $2, 'x')`, [topic(job2), pidA]);
    a.add(topic(job1));
    a.add(topic(job2));
    const listening = Promise.all([a.whenListening(topic(job1)), a.whenListening(topic(job2))]);
    await waitingOnLock(db.pool, "WITH removed AS");
    b.connected(pidB);
    // A sweep of B's, as its timer runs it, meets job1's row while A's statement holds it.
    const sweeping = b.sweep();
    await waitingOnLock(db.pool, "WITH gone AS");
    await blocker.query("ROLLBACK");
    await Promise.all([listening, sweeping]);
    expect(await db.rowsOf(pidA)).toEqual([topic(job1), topic(job2)].sort().map((name) => ({ topic: name, instance_id: "instance-a" })));
  } finally {
    await blocker.query("ROLLBACK");
    await a.close();
    await b.close();
    await db.close();
  }
});

it("keeps the rows of a live instance that connects as a role whose backends the sweeping instance cannot see the start of (found by a review)", async () => {
  const db = await openTestDatabase();
  const suffix = randomUUID().slice(0, 8);
  const roles = [`conveyor_a_${suffix}`, `conveyor_b_${suffix}`];
  // A password, for servers that ask for one (the embedded database does).
  const as = (role: string) => Object.assign(new URL(db.url), { username: role, password: "test-role" }).toString();
  for (const role of roles) {
    await db.pool.query(`CREATE ROLE ${role} LOGIN PASSWORD 'test-role'`);
    await db.pool.query(`GRANT USAGE ON SCHEMA public TO ${role}; GRANT ALL ON ALL TABLES IN SCHEMA public TO ${role}`);
  }
  const [poolA, poolB] = roles.map((role) => new pg.Pool({ connectionString: as(role), max: 2 }));
  for (const pool of [poolA!, poolB!]) pool.on("error", () => {});
  const [listenA, listenB] = [await db.client(as(roles[0]!)), await db.client(as(roles[1]!))];
  const a = new ListenerRegistry(poolA!, "instance-a", createLogger("silent"));
  const b = new ListenerRegistry(poolB!, "instance-b", createLogger("silent"));
  try {
    // The premise: to B's role, A's backend has no start time.
    const seen = await poolB!.query(`SELECT backend_start FROM pg_stat_get_activity($1)`, [await pidOf(listenA)]);
    expect(seen.rows).toEqual([{ backend_start: null }]);
    a.add("jobs:changed");
    a.connected(await pidOf(listenA));
    await a.whenListening("jobs:changed");
    b.connected(await pidOf(listenB));
    await b.sweep();
    const { rows } = await db.pool.query(`SELECT topic FROM event_listeners WHERE instance_id = 'instance-a'`);
    expect(rows).toEqual([{ topic: "jobs:changed" }]);
  } finally {
    await a.close();
    await b.close();
    for (const pool of [poolA!, poolB!]) await pool.end();
    await db.close();
    // Roles belong to the server, not to the database just dropped.
    const server = new pg.Client({ connectionString: Object.assign(new URL(db.url), { pathname: "/postgres" }).toString() });
    await server.connect();
    for (const role of roles) await server.query(`DROP ROLE IF EXISTS ${role}`);
    await server.end();
  }
});

describe("a pid that another instance's LISTEN connection has now (found by a review)", () => {
  // Instance A's LISTEN connection had pid P and is gone; instance B's new LISTEN connection got P.
  let db: TestDatabase;
  let a: ListenerRegistry;
  let b: ListenerRegistry;
  let job: string;

  beforeEach(async () => {
    db = await openTestDatabase();
    job = randomUUID();
    await db.insertJobs(job);
    a = new ListenerRegistry(db.pool, "instance-a", createLogger("silent"));
    b = new ListenerRegistry(db.pool, "instance-b", createLogger("silent"));
  });
  afterEach(async () => {
    await a.close();
    await b.close();
    await db.close();
  });

  it("is not forgotten by A's reconnection", async () => {
    const [shared, aNew] = [await db.client(), await db.client()];
    const [p, q] = [await pidOf(shared), await pidOf(aNew)];
    await a.connected(p);
    await b.connected(p);
    b.add(topic(job));
    await b.whenListening(topic(job));
    await a.connected(q); // deletes what A registered under P: nothing of B's
    expect(await db.rowsOf(p)).toEqual([{ topic: topic(job), instance_id: "instance-b" }]);
  });

  it("keeps B's rows from a registration of A under P that was still in flight", async () => {
    const [shared, aNew, worker] = [await db.client(), await db.client(), await db.client()];
    const [p, q] = [await pidOf(shared), await pidOf(aNew)];
    await a.connected(p);
    await b.connected(p);
    b.add(topic(job));
    await b.whenListening(topic(job));
    // A's registration under P waits for the job's row, which a worker holds.
    await worker.query("BEGIN");
    await worker.query("SELECT 1 FROM processing_jobs WHERE id = $1 FOR UPDATE", [job]);
    a.add(topic(job));
    await waitingOnLock(db.pool, "WITH removed AS");
    const reconnected = a.connected(q);
    await worker.query("COMMIT");
    await Promise.all([reconnected, a.whenListening(topic(job))]);
    await a.sweep();
    expect(await db.rowsOf(p)).toEqual([{ topic: topic(job), instance_id: "instance-b" }]);
    expect(await db.rowsOf(q)).toEqual([{ topic: topic(job), instance_id: "instance-a" }]);
  });
});
