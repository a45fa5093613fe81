// A LISTEN connection cut and replaced: the instance re-reads the jobs it follows once its topics
// are registered again, so a change committed in between reaches its subscribers all the same;
// streams of every job's changes, which are not caught up, end and say so.
import pg from "pg";
import { expect, it } from "vitest";
import type { JobChange } from "../../src/events/messages.js";
import { eventually, startTestConveyor } from "../support/conveyor.js";
import { collect, tokenFor, wsClient } from "../support/graphql-client.js";
import { errorCodes } from "../graphql/helpers.js";
import { startSiblingConveyor } from "./instances.js";

it("delivers a change committed after the LISTEN connection came back but before its topics were registered again", async () => {
  let openGate!: () => void;
  const gate = new Promise<void>((resolve) => (openGate = resolve));
  const handlers = [
    { type: "gated", run: async () => gate.then(() => ({ ok: true })) },
    { type: "parked", run: async () => null },
  ];
  const a = await startTestConveyor({ handlers, environment: { REDIS_URL: "", WORKER_ENABLED: "true", WORKER_CONCURRENCY: "2" } });
  const b = await startSiblingConveyor(a, { handlers, environment: { REDIS_URL: "" } });
  const admin = new pg.Client({ connectionString: a.databaseUrl });
  await admin.connect();
  const locker = new pg.Client({ connectionString: a.databaseUrl });
  await locker.connect();
  try {
    // A parked job whose id sorts before the running one's (UUIDv7): B's registration locks it first.
    const parked = (await a.enqueue({ type: "parked", runAt: new Date(Date.now() + 3_600_000) })).job.id;
    const running = (await a.enqueue({ type: "gated" })).job.id;
    const seen: Record<string, JobChange["status"][]> = { [parked]: [], [running]: [] };
    const unsubscribes = [parked, running].map((jobId) => b.subscribe(jobId, (change) => seen[jobId]!.push(change.status)));
    await Promise.all(unsubscribes.map((unsubscribe) => unsubscribe.listening));
    await eventually(async () => (await b.jobs.find(running))?.status === "PROCESSING");
    const { rows } = await admin.query<{ pid: number }>("SELECT DISTINCT listener_pid AS pid FROM event_listeners WHERE topic = $1", [`job:changed:${running}`]);
    expect(rows).toHaveLength(1);

    // The registration under the new connection waits on the parked job's row while the running
    // job completes: a re-read of the jobs at reconnection would come before that change and miss
    // it, and the change is announced to no connection of B's.
    await locker.query("BEGIN");
    await locker.query("SELECT id FROM processing_jobs WHERE id = $1 FOR UPDATE", [parked]);
    await admin.query("SELECT pg_terminate_backend($1)", [rows[0]!.pid]);
    // The listener reconnects after 100 ms.
    await new Promise((resolve) => setTimeout(resolve, 600));
    openGate();
    await eventually(async () => (await a.jobs.find(running))?.status === "COMPLETED");
    await new Promise((resolve) => setTimeout(resolve, 300));
    await locker.query("COMMIT");
    await eventually(() => seen[running]!.includes("COMPLETED"), 5000);
    for (const unsubscribe of unsubscribes) unsubscribe();
  } finally {
    openGate();
    await locker.end();
    await admin.end();
    await b.stop();
    await a.dispose();
  }
}, 60_000);

it("ends an operator's jobUpdates and jobUpdateBatches with EVENTS_INTERRUPTED once the LISTEN connection is back: changes of every job are not caught up", async () => {
  const handlers = [{ type: "parked", run: async () => null }];
  const a = await startTestConveyor({ handlers, environment: { REDIS_URL: "" } });
  const b = await startSiblingConveyor(a, { handlers, environment: { REDIS_URL: "" } });
  const admin = new pg.Client({ connectionString: a.databaseUrl });
  await admin.connect();
  const operators = wsClient(b, await tokenFor(b, "olga", "operator"));
  try {
    const updates = collect(operators, `subscription { jobUpdates { jobId status } }`);
    const batches = collect(operators, `subscription { jobUpdateBatches(batchMs: 50) { changes { jobId status } } }`);
    await eventually(() => b.events.listenerCount("jobs:changed") === 2);
    await b.events.whenListening("jobs:changed");
    await a.enqueue({ type: "parked", runAt: new Date(Date.now() + 3_600_000) });
    await eventually(() => updates.events.length > 0 && batches.events.length > 0);
    const { rows } = await admin.query<{ pid: number }>("SELECT DISTINCT listener_pid AS pid FROM event_listeners WHERE topic = 'jobs:changed'");
    expect(rows).toHaveLength(1);
    await admin.query("SELECT pg_terminate_backend($1)", [rows[0]!.pid]);
    const ended = await Promise.race([
      Promise.all([updates.done, batches.done]),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error("the operators' streams went on after the reconnection")), 10_000)),
    ]);
    for (const { error } of ended) expect(errorCodes(error)).toEqual(["EVENTS_INTERRUPTED"]);
  } finally {
    await operators.dispose();
    await admin.end();
    await b.stop();
    await a.dispose();
  }
}, 60_000);
