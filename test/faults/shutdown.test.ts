// Issue 11, item 7: SIGINT to the process group of `npm start` with jobs running.
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { createConnection } from "node:net";
import path from "node:path";
import { createClient } from "graphql-ws";
import pg from "pg";
import { afterAll, describe, expect, it } from "vitest";
import WebSocket from "ws";
import { startEmbeddedPostgres } from "../../src/db/embedded-postgres.js";
import { createLogger } from "../../src/logger.js";
import { eventually } from "../support/conveyor.js";
import { freePort } from "../multi-instance/instances.js";
import { killGroup, post, startConveyorProcess, tokenAs, type ConveyorProcess } from "./process.js";

const ENQUEUE = `mutation($input: EnqueueJobInput!) { enqueueJob(input: $input) { job { id } } }`;
const EXIT_BOUND_MS = 30_000;

describe("item 7: SIGINT to the process group of a running Conveyor", () => {
  const root = mkdtempSync(path.join(tmpdir(), "conveyor-shutdown-"));
  // Not the private-folder case (test/faults/private-folder.test.ts covers it).
  chmodSync(root, 0o755);
  const directory = path.join(root, "postgres");
  let conveyor: ConveyorProcess | undefined;
  afterAll(() => {
    if (conveyor) killGroup(conveyor.child);
    rmSync(root, { recursive: true, force: true });
  });

  it("ends WebSockets with 1001 and SSE streams with complete, drains the pool, stops the database last, exits 0; no job is left PROCESSING", async () => {
    const [port, databasePort] = await Promise.all([freePort(), freePort()]);
    conveyor = startConveyorProcess({
      environment: {
        PORT: String(port),
        EMBEDDED_POSTGRES_DIR: directory,
        EMBEDDED_POSTGRES_PORT: String(databasePort),
        WORKER_CONCURRENCY: "4",
        WORKER_PREFETCH: "2",
        WORKER_SHUTDOWN_GRACE_MS: "3000",
      },
    });
    const url = await conveyor.listening;
    const alice = await tokenAs("alice");
    const ids: string[] = [];
    for (let index = 0; index < 8; index++) ids.push((await post(url, alice, ENQUEUE, { input: { type: "test-sleep", payload: { ms: 120_000 } } })).enqueueJob.job.id);
    const databaseUrl = `postgresql://postgres:conveyor@127.0.0.1:${databasePort}/conveyor`;
    const running = async () => {
      const client = new pg.Client({ connectionString: databaseUrl });
      await client.connect();
      try {
        const { rows } = await client.query<{ n: number }>(`SELECT count(*)::int AS n FROM processing_jobs WHERE status = 'PROCESSING'`);
        return rows[0]!.n;
      } finally {
        await client.end();
      }
    };
    await eventually(async () => (await running()) >= 4, 20_000, 100);

    // A WebSocket subscriber and an SSE subscriber, both following a running job.
    const closeCodes: number[] = [];
    const ws = createClient({
      url: `${url.replace(/^http/, "ws")}/graphql`,
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${alice}` },
      retryAttempts: 0,
      on: { closed: (event) => closeCodes.push((event as { code: number }).code) },
    });
    const wsEvents: unknown[] = [];
    const wsDone = new Promise<unknown>((resolve) =>
      ws.subscribe({ query: `subscription($id: ID!) { jobProgress(jobId: $id) { status } }`, variables: { id: ids[0] } }, { next: (event) => wsEvents.push(event), error: resolve, complete: () => resolve(undefined) }),
    );
    const sse = await fetch(`${url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "text/event-stream", authorization: `Bearer ${alice}` },
      body: JSON.stringify({ query: `subscription($id: ID!) { jobProgress(jobId: $id) { status } }`, variables: { id: ids[1] } }),
    });
    const sseText = sse.text();
    await eventually(() => wsEvents.length >= 1, 10_000);

    const signalledAt = Date.now();
    process.kill(-conveyor.child.pid!, "SIGINT");
    const exit = await Promise.race([conveyor.exited, new Promise<null>((resolve) => setTimeout(() => resolve(null), EXIT_BOUND_MS))]);
    const tookMs = Date.now() - signalledAt;
    console.info(`shutdown: exit ${JSON.stringify(exit)} ${tookMs} ms after SIGINT to the process group`);
    expect(exit, conveyor.output()).toEqual({ code: 0, signal: null });
    expect(tookMs).toBeLessThan(EXIT_BOUND_MS);

    await wsDone;
    await ws.dispose();
    expect(closeCodes).toContain(1001);
    // The SSE body ends normally (no reset) with graphql-sse's complete event.
    const text = await sseText;
    expect(text).toMatch(/event: complete/);

    // The log shows the drain before the database stopped: the pool's hand-back happened while
    // PostgreSQL still answered, which the reopened database confirms.
    const database = await startEmbeddedPostgres({ directory, port: databasePort, database: "conveyor", logger: createLogger("silent") });
    try {
      const client = new pg.Client({ connectionString: database.url });
      await client.connect();
      const { rows } = await client.query<{ status: string; n: number }>(`SELECT status, count(*)::int AS n FROM processing_jobs GROUP BY status`);
      await client.end();
      expect(rows).toEqual([{ status: "QUEUED", n: ids.length }]);
    } finally {
      await database.stop();
    }
  }, 150_000);

  it("a Conveyor killed outright (SIGKILL) does not leave its embedded PostgreSQL running", async () => {
    const [port, databasePort] = await Promise.all([freePort(), freePort()]);
    const killed = startConveyorProcess({
      environment: { PORT: String(port), EMBEDDED_POSTGRES_DIR: path.join(root, "killed"), EMBEDDED_POSTGRES_PORT: String(databasePort) },
    });
    await killed.listening;
    const answers = () =>
      new Promise<boolean>((resolve) => {
        const socket = createConnection({ port: databasePort, host: "127.0.0.1" }, () => (socket.end(), resolve(true)));
        socket.once("error", () => resolve(false));
      });
    expect(await answers()).toBe(true);
    killGroup(killed.child);
    await killed.exited;
    const killedAt = Date.now();
    await eventually(async () => !(await answers()), 15_000, 100);
    console.info(`shutdown: embedded PostgreSQL gone ${Date.now() - killedAt} ms after its Conveyor was SIGKILLed`);
  }, 120_000);
});
