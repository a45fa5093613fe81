import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { enqueueJobs } from "../../src/jobs/queue.js";
import { createTestDatabase as createDatabaseForTest } from "../support/database.js";
import { eventually } from "../support/conveyor.js";

const script = fileURLToPath(new URL("../support/worker-process.ts", import.meta.url));

describe("worker pools in separate processes", () => {
  let database: Awaited<ReturnType<typeof createDatabaseForTest>>;
  let pool: pg.Pool;
  const children = new Set<ChildProcess>();

  async function startWorker(environment: Record<string, string>): Promise<{ child: ChildProcess; workerId: string }> {
    const child = spawn(process.execPath, ["--import", "tsx", script], {
      env: { ...process.env, DATABASE_URL: database.url, ...environment },
      stdio: ["ignore", "pipe", "inherit"],
    });
    children.add(child);
    child.once("exit", () => children.delete(child));
    const workerId = await new Promise<string>((resolve, reject) => {
      let output = "";
      child.stdout!.on("data", (chunk: Buffer) => {
        output += chunk.toString();
        const match = /ready (\S+)/.exec(output);
        if (match) resolve(match[1]!);
      });
      child.once("exit", (code) => reject(new Error(`worker exited early with ${code}`)));
    });
    return { child, workerId };
  }

  const enqueue = async (count: number) => {
    for (let i = 0; i < count; i += 500) {
      await enqueueJobs(pool, Array.from({ length: Math.min(500, count - i) }, () => ({ type: "multi", owner: "load" })), { actor: "test" });
    }
  };
  const statusCounts = async () =>
    Object.fromEntries((await pool.query("SELECT status, count(*)::int AS n FROM processing_jobs GROUP BY status")).rows.map((row) => [row.status, row.n]));

  beforeAll(async () => {
    database = await createDatabaseForTest();
    pool = new pg.Pool({ connectionString: database.url, max: 5 });
    // pool.end() resolves before its connections' backends have gone, and the database's drop
    // (WITH FORCE) then terminates them: an error event on a connection being closed, which
    // without a listener ended the test run once (57P01 in CI on e726af5).
    pool.on("error", () => {});
    await pool.query("CREATE TABLE test_runs (job_id uuid NOT NULL, worker text NOT NULL, finished_at timestamptz NOT NULL DEFAULT clock_timestamp())");
  });
  beforeEach(async () => {
    await pool.query("TRUNCATE processing_jobs, job_events CASCADE; TRUNCATE test_runs");
  });
  afterEach(async () => {
    for (const child of children) child.kill("SIGKILL");
    await Promise.all([...children].map((child) => once(child, "exit")));
  });
  afterAll(async () => {
    await pool?.end();
    await database?.drop();
  });

  it("runs 2,000 jobs on 4 pools of 8 slots, each handler finishing exactly once", async () => {
    await enqueue(2000);
    const workers = await Promise.all([1, 2, 3, 4].map(() => startWorker({ CONCURRENCY: "8", MODE: "record" })));
    await eventually(async () => (await statusCounts()).COMPLETED === 2000, 60_000, 100);

    const runs = await pool.query("SELECT count(*)::int AS runs, count(DISTINCT job_id)::int AS jobs, count(DISTINCT worker)::int AS workers FROM test_runs");
    expect(runs.rows[0]).toMatchObject({ runs: 2000, jobs: 2000 });
    expect(runs.rows[0].workers).toBeGreaterThan(1);
    // One claim per job: no job was ever owned by two pools.
    const claims = await pool.query("SELECT max(n)::int AS most FROM (SELECT count(*) AS n FROM job_events WHERE to_status = 'PROCESSING' GROUP BY job_id) c");
    expect(claims.rows[0].most).toBe(1);
    const owners = await pool.query("SELECT count(*)::int AS n FROM processing_jobs j JOIN test_runs r ON r.job_id = j.id WHERE j.result->>'worker' <> r.worker");
    expect(owners.rows[0].n).toBe(0);
    expect(workers.map((worker) => worker.workerId)).toHaveLength(4);
  });

  it("recovers the jobs of a pool killed with SIGKILL and completes them in another", async () => {
    await enqueue(4);
    const doomed = await startWorker({ CONCURRENCY: "4", MODE: "slow" });
    await eventually(async () => (await pool.query("SELECT count(*)::int AS n FROM processing_jobs WHERE stage = 'slow'")).rows[0].n === 4);
    doomed.child.kill("SIGKILL");
    await once(doomed.child, "exit");

    const survivor = await startWorker({ CONCURRENCY: "4", MODE: "record", STALLED_THRESHOLD_MS: "1000", STALLED_CHECK_INTERVAL_MS: "200" });
    await eventually(async () => (await statusCounts()).COMPLETED === 4, 30_000, 100);

    const runs = await pool.query("SELECT DISTINCT worker FROM test_runs");
    expect(runs.rows.map((row) => row.worker)).toEqual([survivor.workerId]);
    const trails = await pool.query(
      "SELECT job_id, array_agg(to_status::text ORDER BY id) AS trail, bool_or(message = 'recovered: heartbeat stopped') AS recovered FROM job_events GROUP BY job_id",
    );
    expect(trails.rows).toHaveLength(4);
    for (const row of trails.rows) {
      expect(row.recovered).toBe(true);
      expect(row.trail).toEqual(["QUEUED", "PROCESSING", "PROCESSING", "RETRYING", "PROCESSING", "COMPLETED"]);
    }
  });

  it("hands running jobs back on SIGTERM after the grace period, and exits cleanly", async () => {
    await enqueue(3);
    const leaving = await startWorker({ CONCURRENCY: "3", MODE: "slow", GRACE_MS: "300" });
    await eventually(async () => (await pool.query("SELECT count(*)::int AS n FROM processing_jobs WHERE stage = 'slow'")).rows[0].n === 3);
    leaving.child.kill("SIGTERM");
    const [code] = await once(leaving.child, "exit");
    expect(code).toBe(0);
    const released = await pool.query("SELECT count(*)::int AS n FROM job_events WHERE message = 'released on shutdown'");
    expect(released.rows[0].n).toBe(3);
    expect((await statusCounts()).QUEUED).toBe(3);

    await startWorker({ CONCURRENCY: "3", MODE: "record" });
    await eventually(async () => (await statusCounts()).COMPLETED === 3, 30_000, 100);
    const retries = await pool.query("SELECT max(retry_count)::int AS most FROM processing_jobs");
    expect(retries.rows[0].most).toBe(0);
  });
});
