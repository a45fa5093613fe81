import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JobChange } from "../../src/events/messages.js";
import type { JobHandler } from "../../src/handlers/registry.js";
import { eventually, startTestConveyor, type TestConveyor } from "../support/conveyor.js";
import { tokenFor } from "../support/graphql-client.js";
import { codeOf, enqueue, gql, ok, PARKED, statusOf } from "./helpers.js";

const handlers: JobHandler<any, any>[] = [
  { type: "parked", async run() {} },
  { type: "other", async run() {} },
  {
    // Runs until it is told to stop.
    type: "endless",
    async run(_payload, context) {
      await context.progress("working", 10);
      await new Promise((_resolve, reject) => context.signal.addEventListener("abort", () => reject(context.signal.reason), { once: true }));
    },
  },
];

const BULK = `mutation($action: BulkJobAction!, $filter: JobFilter!, $limit: Int) {
  bulkJobAction(action: $action, filter: $filter, limit: $limit) { action changed cancelRequested jobIds limitReached }
}`;

describe("bulkJobAction", () => {
  let conveyor: TestConveyor;
  let alice: string;
  let olga: string;

  beforeAll(async () => {
    conveyor = await startTestConveyor({ handlers, environment: { WORKER_ENABLED: "true", WORKER_CONCURRENCY: "2", JOB_ACTION_LOCK_TIMEOUT_MS: "2000" } });
    [alice, olga] = await Promise.all([tokenFor(conveyor, "alice"), tokenFor(conveyor, "olga", "operator")]);
  });
  afterAll(() => conveyor?.dispose());

  const parkedJobs = (token: string, type: string, count: number) =>
    Promise.all(Array.from({ length: count }, () => enqueue(conveyor, token, { type, runAt: PARKED })));

  it("cancels the waiting jobs the filter matches, publishes each change once committed, and leaves the rest", async () => {
    const matching = await parkedJobs(alice, "parked", 3);
    const others = await parkedJobs(alice, "other", 2);
    const published: JobChange[] = [];
    const unsubscribe = conveyor.subscribe(undefined, (change) => published.push(change));
    // Through Redis, a change published before the subscription is confirmed never reaches it.
    await unsubscribe.listening;
    try {
      const result = ok(await gql(conveyor, BULK, { action: "CANCEL", filter: { type: "parked", owner: "alice" } }, { token: olga })).bulkJobAction;
      expect(result).toMatchObject({ action: "CANCEL", changed: 3, cancelRequested: 0, limitReached: false });
      expect([...result.jobIds].sort()).toEqual([...matching].sort());
      for (const id of matching) expect(await statusOf(conveyor, id)).toBe("CANCELLED");
      for (const id of others) expect(await statusOf(conveyor, id)).toBe("QUEUED");
      await eventually(() => matching.every((id) => published.some((change) => change.jobId === id && change.status === "CANCELLED")));
    } finally {
      unsubscribe();
    }
    const audit = await conveyor.database.pool.query(`SELECT count(*)::int AS n FROM audit_events WHERE action = 'job.cancelled' AND actor = 'olga' AND entity_id = ANY($1)`, [matching]);
    expect(audit.rows[0].n).toBe(3);
  });

  it("retries at most `limit` jobs per call, oldest first, and says when more may match", async () => {
    const jobs = await parkedJobs(alice, "other", 3);
    ok(await gql(conveyor, BULK, { action: "CANCEL", filter: { type: "other" } }, { token: olga }));
    const first = ok(await gql(conveyor, BULK, { action: "RETRY", filter: { type: "other", status: ["CANCELLED"] }, limit: 2 }, { token: olga })).bulkJobAction;
    expect(first).toMatchObject({ action: "RETRY", changed: 2, limitReached: true });
    const rest = ok(await gql(conveyor, BULK, { action: "RETRY", filter: { type: "other", status: ["CANCELLED"] }, limit: 2 }, { token: olga })).bulkJobAction;
    // The two from the first test and the three made here: five cancelled, retried two at a time.
    expect(rest).toMatchObject({ changed: 2, limitReached: true });
    const last = ok(await gql(conveyor, BULK, { action: "RETRY", filter: { type: "other", status: ["CANCELLED"] } }, { token: olga })).bulkJobAction;
    expect(last).toMatchObject({ changed: 1, limitReached: false });
    for (const id of jobs) expect(await statusOf(conveyor, id)).toBe("QUEUED");
  });

  it("asks running jobs to stop, and they end CANCELLED", async () => {
    const id = await enqueue(conveyor, alice, { type: "endless" });
    await eventually(async () => (await statusOf(conveyor, id)) === "PROCESSING");
    const result = ok(await gql(conveyor, BULK, { action: "CANCEL", filter: { type: "endless", status: ["PROCESSING"] } }, { token: olga })).bulkJobAction;
    expect(result).toMatchObject({ changed: 0, cancelRequested: 1, jobIds: [id] });
    await eventually(async () => (await statusOf(conveyor, id)) === "CANCELLED");
  });

  it("asks a running job to stop even while its row is locked for a moment (its own progress being written)", async () => {
    const id = await enqueue(conveyor, alice, { type: "endless" });
    await eventually(async () => (await statusOf(conveyor, id)) === "PROCESSING");
    const writer = await conveyor.database.pool.connect();
    try {
      // What a progress or heartbeat batch holds while it writes the job.
      await writer.query("BEGIN");
      await writer.query("SELECT id FROM processing_jobs WHERE id = $1 FOR UPDATE", [id]);
      const asked = gql(conveyor, BULK, { action: "CANCEL", filter: { type: "endless", status: ["PROCESSING"] } }, { token: olga });
      await new Promise((resolve) => setTimeout(resolve, 200));
      await writer.query("COMMIT");
      expect(ok(await asked).bulkJobAction).toMatchObject({ changed: 0, cancelRequested: 1, jobIds: [id] });
    } finally {
      writer.release();
    }
    await eventually(async () => (await statusOf(conveyor, id)) === "CANCELLED");
  });

  /**
   * Runs `action` while another connection holds the rows of `ids` (`lock`), as a claim, a single
   * retry or a subscriber's registration would; `meanwhile` runs in that transaction, which commits
   * 200 ms later.
   */
  const whileHeld = async <T>(lock: "FOR UPDATE" | "FOR SHARE", ids: string[], action: () => Promise<T>, meanwhile?: string): Promise<T> => {
    const holder = await conveyor.database.pool.connect();
    try {
      await holder.query("BEGIN");
      await holder.query(`SELECT id FROM processing_jobs WHERE id = ANY($1::uuid[]) ${lock}`, [ids]);
      const result = action();
      await new Promise((resolve) => setTimeout(resolve, 200));
      if (meanwhile) await holder.query(meanwhile, [ids[ids.length - 1]]);
      await holder.query("COMMIT");
      return await result;
    } finally {
      await holder.query("ROLLBACK").catch(() => undefined);
      holder.release();
    }
  };
  // What a claim does to a job it takes.
  const START = `UPDATE processing_jobs SET status = 'PROCESSING', locked_by = 'elsewhere', lock_token = gen_random_uuid(), started_at = now(), heartbeat_at = now() WHERE id = $1`;
  const cancelOwnedBy = (owner: string, status?: string[]) =>
    gql(conveyor, BULK, { action: "CANCEL", filter: { owner, ...(status ? { status } : {}) } }, { token: olga });
  // Jobs started by hand here have no worker: they end CANCELLED, out of the other tests' way.
  const settle = (owner: string) => conveyor.database.pool.query(`UPDATE processing_jobs SET status = 'CANCELLED', locked_by = NULL, lock_token = NULL WHERE owner = $1`, [owner]);

  it("cancels and retries jobs whose rows another statement holds for a moment, and asks a job a claim started meanwhile to stop", async () => {
    const [held, claimed] = await parkedJobs(await tokenFor(conveyor, "carol"), "parked", 2);
    try {
      // A claim holds both; it gives `held` up and starts `claimed`. The first is cancelled; the
      // second is running by then, so it is asked to stop rather than marked CANCELLED under its worker.
      const cancel = await whileHeld("FOR UPDATE", [held!, claimed!], () => cancelOwnedBy("carol"), START);
      expect(ok(cancel).bulkJobAction).toMatchObject({ changed: 1, cancelRequested: 1, limitReached: false });
      expect(await statusOf(conveyor, held!)).toBe("CANCELLED");
      const running = await conveyor.database.pool.query(`SELECT status, cancel_requested_at IS NOT NULL AS asked FROM processing_jobs WHERE id = $1`, [claimed]);
      expect(running.rows[0]).toEqual({ status: "PROCESSING", asked: true });

      // A subscriber's registration holds the cancelled job FOR SHARE while an operator retries it.
      const retry = await whileHeld("FOR SHARE", [held!], () => gql(conveyor, BULK, { action: "RETRY", filter: { owner: "carol", status: ["CANCELLED"] } }, { token: olga }));
      expect(ok(retry).bulkJobAction).toMatchObject({ changed: 1, jobIds: [held] });
      expect(await statusOf(conveyor, held!)).toBe("QUEUED");
    } finally {
      await settle("carol");
    }
  });

  it("asks a queued job a claim started meanwhile to stop also when the filter names QUEUED, and says more may match when a chosen job drops out", async () => {
    const [claimed, other] = await parkedJobs(await tokenFor(conveyor, "erin"), "parked", 2);
    try {
      const cancel = await whileHeld("FOR UPDATE", [claimed!], () => cancelOwnedBy("erin", ["QUEUED"]), START);
      expect(ok(cancel).bulkJobAction).toMatchObject({ changed: 1, cancelRequested: 1, jobIds: [other, claimed] });
      await settle("erin");
      // Three cancelled; someone retries the oldest by hand while a bulk retry of two waits for it:
      // one is retried, and the third still matches, so the answer says to call again.
      const [oldest, , third] = [claimed!, other!, ...(await parkedJobs(await tokenFor(conveyor, "erin"), "parked", 1))];
      await settle("erin");
      const retry = await whileHeld(
        "FOR UPDATE",
        [oldest],
        () => gql(conveyor, BULK, { action: "RETRY", filter: { owner: "erin" }, limit: 2 }, { token: olga }),
        `UPDATE processing_jobs SET status = 'QUEUED', completed_at = NULL WHERE id = $1`,
      );
      expect(ok(retry).bulkJobAction).toMatchObject({ changed: 1, limitReached: true });
      expect(await statusOf(conveyor, third!)).toBe("CANCELLED");
    } finally {
      await settle("erin");
    }
  });

  it("does not ask a running job to stop a second time when someone else asked it while the bulk cancel waited for its row", async () => {
    const [running] = await parkedJobs(await tokenFor(conveyor, "zed"), "parked", 1);
    try {
      await conveyor.database.pool.query(START, [running]);
      const cancel = await whileHeld("FOR UPDATE", [running!], () => cancelOwnedBy("zed"), `UPDATE processing_jobs SET cancel_requested_at = now() WHERE id = $1`);
      expect(ok(cancel).bulkJobAction).toMatchObject({ changed: 0, cancelRequested: 0, jobIds: [] });
      const audits = await conveyor.database.pool.query(`SELECT count(*)::int AS n FROM audit_events WHERE entity_id = $1 AND action = 'job.cancel-requested'`, [running]);
      expect(audits.rows[0].n).toBe(0);
    } finally {
      await settle("zed");
    }
  });

  // An operator's session left open on a job's row (FOR UPDATE) until `work` is done.
  const whileLeftOpen = async (id: string, work: () => Promise<void>) => {
    const holder = await conveyor.database.pool.connect();
    try {
      await holder.query("BEGIN");
      await holder.query(`SELECT id FROM processing_jobs WHERE id = $1 FOR UPDATE`, [id]);
      await work();
    } finally {
      await holder.query("ROLLBACK").catch(() => undefined);
      holder.release();
    }
  };

  it("gives up on a row held for longer than JOB_ACTION_LOCK_TIMEOUT_MS with CONFLICT, changing nothing, and goes through once it is free", async () => {
    const [held, free] = await parkedJobs(await tokenFor(conveyor, "hugo"), "parked", 2);
    try {
      await whileLeftOpen(held!, async () => {
        const refused = await cancelOwnedBy("hugo");
        expect(codeOf(refused)).toBe("CONFLICT");
        expect(refused.errors?.[0]?.extensions).toMatchObject({ reason: "HELD", retryable: true });
        expect(refused.errors?.[0]?.message).toMatch(/lock another session holds/);
        // The statement that waited locked both jobs in id order; it let both go unchanged.
        expect([await statusOf(conveyor, held!), await statusOf(conveyor, free!)]).toEqual(["QUEUED", "QUEUED"]);
      });
      expect(ok(await cancelOwnedBy("hugo")).bulkJobAction).toMatchObject({ changed: 2 });
    } finally {
      await settle("hugo");
    }
  });

  it("says in the CONFLICT what the call changed before a later step gave up on a held row", async () => {
    const [waiting, running] = await parkedJobs(await tokenFor(conveyor, "ivan"), "parked", 2);
    await conveyor.database.pool.query(START, [running]);
    try {
      // The waiting job is cancelled (committed, published); asking the running one to stop times out.
      await whileLeftOpen(running!, async () => {
        const refused = await cancelOwnedBy("ivan");
        expect(codeOf(refused)).toBe("CONFLICT");
        expect(refused.errors?.[0]?.extensions).toMatchObject({ changed: [waiting], cancelRequested: [] });
      });
      expect(await statusOf(conveyor, waiting!)).toBe("CANCELLED");
    } finally {
      await settle("ivan");
    }
  });

  it("answers retryJob and cancelJob of a job held past the limit with CONFLICT, changing nothing", async () => {
    const [job] = await parkedJobs(await tokenFor(conveyor, "jane"), "parked", 1);
    const cancel = () => gql(conveyor, `mutation($id: ID!) { cancelJob(id: $id) { outcome } }`, { id: job }, { token: olga });
    const retry = () => gql(conveyor, `mutation($id: ID!) { retryJob(id: $id) { status } }`, { id: job }, { token: olga });
    try {
      await whileLeftOpen(job!, async () => {
        const refused = await cancel();
        expect(codeOf(refused)).toBe("CONFLICT");
        expect(refused.errors?.[0]?.extensions).toMatchObject({ reason: "HELD", retryable: true });
      });
      expect(await statusOf(conveyor, job!)).toBe("QUEUED");
      expect(ok(await cancel()).cancelJob).toEqual({ outcome: "CANCELLED" });
      await whileLeftOpen(job!, async () => expect((await retry()).errors?.[0]?.extensions).toMatchObject({ code: "CONFLICT", reason: "HELD" }));
      expect(await statusOf(conveyor, job!)).toBe("CANCELLED");
      expect(ok(await retry()).retryJob).toEqual({ status: "QUEUED" });
      // A job in the wrong state is a CONFLICT too, but not one worth trying again.
      expect((await retry()).errors?.[0]?.extensions).toEqual({ code: "CONFLICT" });
    } finally {
      await settle("jane");
    }
  });

  it("is for operators only, and refuses a limit outside 1 to 1000", async () => {
    const waiting = await parkedJobs(alice, "parked", 1);
    const asUser = await gql(conveyor, BULK, { action: "CANCEL", filter: { owner: "alice" } }, { token: alice });
    expect(codeOf(asUser)).toBe("FORBIDDEN");
    const anonymous = await gql(conveyor, BULK, { action: "CANCEL", filter: {} });
    expect(codeOf(anonymous)).toBe("UNAUTHENTICATED");
    for (const limit of [0, 1001]) expect(codeOf(await gql(conveyor, BULK, { action: "CANCEL", filter: {}, limit }, { token: olga }))).toBe("BAD_USER_INPUT");
    const badId = await gql(conveyor, BULK, { action: "CANCEL", filter: { assessmentId: "nope" } }, { token: olga });
    expect(codeOf(badId)).toBe("BAD_USER_INPUT");
    expect(await statusOf(conveyor, waiting[0]!)).toBe("QUEUED");
  });
});

describe("queueThroughput", () => {
  let conveyor: TestConveyor;

  beforeAll(async () => {
    conveyor = await startTestConveyor({ handlers, environment: { WORKER_ENABLED: "true" } });
  });
  afterAll(() => conveyor?.dispose());

  it("counts finished jobs per bucket, every bucket present, for operators only", async () => {
    const [alice, olga] = await Promise.all([tokenFor(conveyor, "alice"), tokenFor(conveyor, "olga", "operator")]);
    const done = await Promise.all([enqueue(conveyor, alice, { type: "other" }), enqueue(conveyor, alice, { type: "other" })]);
    await eventually(async () => (await Promise.all(done.map((id) => statusOf(conveyor, id)))).every((status) => status === "COMPLETED"));
    const QUERY = `query($range: ThroughputRange!) { queueThroughput(range: $range) { range bucketSeconds buckets { start completed failed successRate } } }`;
    const hour = ok(await gql(conveyor, QUERY, { range: "HOUR" }, { token: olga })).queueThroughput;
    expect(hour).toMatchObject({ range: "HOUR", bucketSeconds: 300 });
    expect(hour.buckets).toHaveLength(12);
    expect(hour.buckets.at(-1)).toMatchObject({ completed: 2, failed: 0, successRate: 1 });
    expect(hour.buckets.slice(0, -1).every((bucket: { completed: number; successRate: number | null }) => bucket.completed === 0 && bucket.successRate === null)).toBe(true);
    const week = ok(await gql(conveyor, QUERY, { range: "WEEK" }, { token: olga })).queueThroughput;
    expect(week.buckets).toHaveLength(28);
    expect(codeOf(await gql(conveyor, QUERY, { range: "DAY" }, { token: alice }))).toBe("FORBIDDEN");
  });
});
