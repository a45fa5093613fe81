// The public API (src/index.ts) in process: defineHandler's zod validation, enqueue inside the
// caller's transaction, announce, subscribe.
import pg from "pg";
import { z } from "zod";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { defineHandler, InvalidJobInputError, type JobChange } from "../../src/index.js";
import { eventually, startTestConveyor, type TestConveyor } from "../support/conveyor.js";

const greetings: { name: string; times: number }[] = [];
const greet = defineHandler({
  type: "greet",
  payload: z.object({ name: z.string().min(1), times: z.number().int().positive().default(1) }),
  async run(payload) {
    greetings.push(payload);
    return { greeted: payload.name };
  },
});

describe("library API", () => {
  let conveyor: TestConveyor;
  let db: pg.Pool;
  beforeAll(async () => {
    conveyor = await startTestConveyor({ handlers: [greet], environment: { WORKER_ENABLED: "true" } });
    db = new pg.Pool({ connectionString: conveyor.databaseUrl, max: 2 });
  });
  afterAll(async () => {
    await db?.end();
    await conveyor?.dispose();
  });

  it("refuses an invalid payload at enqueue with the zod issues as problems", async () => {
    const error = await conveyor.enqueue({ type: "greet", payload: { name: "", times: 1.5 } }).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(InvalidJobInputError);
    const problems = (error as InvalidJobInputError).problems;
    expect(problems).toHaveLength(2);
    expect(problems[0]).toMatch(/^payload\.name: /);
    expect(problems[1]).toMatch(/^payload\.times: /);
  });

  it("runs a job committed in the caller's transaction with the parsed payload, and tells subscribers", async () => {
    const client = await db.connect();
    const changes: JobChange[] = [];
    let unsubscribe = () => {};
    try {
      await client.query("BEGIN");
      // Due a moment after the commit: a job run at once could complete before the announcement, which
      // subscribers then drop as older than what they were shown (on a loaded machine it did).
      const { job, created } = await conveyor.enqueue(greet.job({ name: "Ada" }, { owner: "alice", runAt: new Date(Date.now() + 500) }), { client });
      expect(created).toBe(true);
      const subscription = conveyor.subscribe(job.id, (change) => changes.push(change));
      unsubscribe = subscription;
      await subscription.listening;
      // Not visible outside the transaction yet, and not announced.
      expect(await conveyor.jobs.find(job.id)).toBeNull();
      await client.query("COMMIT");
      conveyor.announce(job);
      // Events may travel through Redis or NOTIFY, so only their arrival is certain, not their order.
      await eventually(() => ["QUEUED", "COMPLETED"].every((status) => changes.some((change) => change.status === status)));
      expect(changes.find((change) => change.status === "QUEUED")).toMatchObject({ jobId: job.id, owner: "alice", previousStatus: null });
      expect(greetings).toContainEqual({ name: "Ada", times: 1 });
      expect((await conveyor.jobs.find(job.id))?.result).toEqual({ greeted: "Ada" });
    } finally {
      unsubscribe();
      client.release();
    }
  });

  it("creates nothing when the caller's transaction rolls back", async () => {
    const client = await db.connect();
    try {
      await client.query("BEGIN");
      const results = await conveyor.enqueueMany([greet.job({ name: "Bob" }), greet.job({ name: "Cy" })], { client });
      await client.query("ROLLBACK");
      for (const { job } of results) expect(await conveyor.jobs.find(job.id)).toBeNull();
    } finally {
      client.release();
    }
  });

  it("subscribes to every job when no id is given, until unsubscribed", async () => {
    const seen: string[] = [];
    const unsubscribe = conveyor.subscribe(undefined, (change) => seen.push(`${change.jobId}:${change.status}`));
    await unsubscribe.listening;
    const { job } = await conveyor.enqueue(greet.job({ name: "Dee" }));
    await eventually(() => seen.includes(`${job.id}:COMPLETED`));
    unsubscribe();
    const count = seen.length;
    await conveyor.enqueue(greet.job({ name: "Eve" }));
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(seen.length).toBe(count);
    expect(conveyor.events.listenerCount("jobs:changed")).toBe(0);
  });
});

describe("library API without the HTTP server", () => {
  it("runs the engine alone: no port taken, jobs run, stop is clean", async () => {
    const engine = await startTestConveyor({ handlers: [greet], environment: { WORKER_ENABLED: "true" }, start: false });
    try {
      await engine.start({ http: false });
      expect(engine.url).toBeNull();
      expect(engine.server.listening).toBe(false);
      const { job } = await engine.enqueue(greet.job({ name: "engine only" }));
      await eventually(async () => (await engine.jobs.find(job.id))?.status === "COMPLETED");
      expect((await engine.jobs.find(job.id))!.result).toEqual({ greeted: "engine only" });
    } finally {
      await engine.dispose();
    }
  });
});
