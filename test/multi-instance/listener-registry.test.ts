import { randomUUID } from "node:crypto";
import pg from "pg";
import { expect, it } from "vitest";
import { ListenerRegistry } from "../../src/events/listener-registry.js";
import { createLogger } from "../../src/logger.js";
import { createTestDatabase } from "../support/database.js";

const topic = (jobId: string) => `job:changed:${jobId}`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

it("does not call a topic listened to while the statement in flight deletes its registration (a page reload of a job), and registers it again", async () => {
  const database = await createTestDatabase();
  const pool = new pg.Pool({ connectionString: database.url, max: 4 });
  const listenConnection = new pg.Client({ connectionString: database.url });
  const worker = new pg.Client({ connectionString: database.url });
  // pool.end() and client.end() resolve before their sockets close, and the database's forced drop
  // below then terminates them: an error nobody awaits, not the test's.
  pool.on("error", () => {});
  for (const client of [listenConnection, worker]) client.on("error", () => {});
  await listenConnection.connect();
  await worker.connect();
  const pid = (await listenConnection.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;
  const [reloaded, other] = [randomUUID(), randomUUID()];
  for (const id of [reloaded, other]) await pool.query(`INSERT INTO processing_jobs (id, type, owner, correlation_id) VALUES ($1, 'quick', 'o', 'c')`, [id]);
  const registry = new ListenerRegistry(pool, "instance-a", createLogger("silent"));
  const registrations = async (id: string) =>
    (await pool.query<{ n: number }>(`SELECT count(*)::int AS n FROM event_listeners WHERE topic = $1`, [topic(id)])).rows[0]!.n;
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
    await worker.end();
    await listenConnection.end();
    await pool.end();
    await database.drop();
  }
});

it("sweeps the rows of a gone LISTEN connection whose pid another backend now has, and takes such a row over when its own connection gets the pid", async () => {
  const database = await createTestDatabase();
  const pool = new pg.Pool({ connectionString: database.url, max: 4 });
  const listenConnection = new pg.Client({ connectionString: database.url });
  // Any other backend: it stands for one that got the pid of an instance that died.
  const reused = new pg.Client({ connectionString: database.url });
  pool.on("error", () => {});
  for (const client of [listenConnection, reused]) client.on("error", () => {});
  await listenConnection.connect();
  await reused.connect();
  const pidOf = async (client: pg.Client) => (await client.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]!.pid;
  const [ownPid, reusedPid] = [await pidOf(listenConnection), await pidOf(reused)];
  // What a dead instance left: registered an hour before these backends started.
  const leftBehind = (pid: number, topicName: string) =>
    pool.query(`INSERT INTO event_listeners (topic, listener_pid, instance_id, registered_at) VALUES ($1, $2, 'dead-instance', now() - interval '1 hour')`, [topicName, pid]);
  const rowsOf = async (pid: number) =>
    (await pool.query<{ topic: string; instance_id: string }>(`SELECT topic, instance_id FROM event_listeners WHERE listener_pid = $1 ORDER BY topic`, [pid])).rows;
  const job = randomUUID();
  await pool.query(`INSERT INTO processing_jobs (id, type, owner, correlation_id) VALUES ($1, 'quick', 'o', 'c')`, [job]);
  await leftBehind(reusedPid, "jobs:changed");
  await leftBehind(ownPid, topic(job));
  const registry = new ListenerRegistry(pool, "instance-a", createLogger("silent"));
  try {
    registry.add(topic(job));
    registry.connected(ownPid); // sweeps, then registers
    await registry.whenListening(topic(job));
    const deadline = Date.now() + 5_000;
    while ((await rowsOf(reusedPid)).length > 0 && Date.now() < deadline) await sleep(25);
    expect(await rowsOf(reusedPid)).toEqual([]);
    expect(await rowsOf(ownPid)).toEqual([{ topic: topic(job), instance_id: "instance-a" }]);
  } finally {
    await registry.close();
    await reused.end();
    await listenConnection.end();
    await pool.end();
    await database.drop();
  }
});
