import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JobHandler } from "../../src/handlers/registry.js";
import { eventually, startTestConveyor, type TestConveyor } from "../support/conveyor.js";
import { tokenFor } from "../support/graphql-client.js";
import { codeOf, completeAssessment, createAssessment, enqueue, gql, ok, PARKED, statusOf } from "./helpers.js";

const handlers: JobHandler<any, any>[] = [
  { type: "quick", run: async (payload) => ({ echo: payload }) },
  { type: "other", run: async () => ({ done: true }) },
];

const JOBS = `query($first: Int, $after: String, $last: Int, $before: String, $filter: JobFilter) {
  jobs(first: $first, after: $after, last: $last, before: $before, filter: $filter) {
    edges { cursor node { id owner type status createdAt } }
    pageInfo { hasNextPage hasPreviousPage startCursor endCursor }
  }
}`;

type Node = { id: string; owner: string; type: string; status: string; createdAt: string };

describe("queries", () => {
  let conveyor: TestConveyor;
  let alice: string;
  let bob: string;
  let olga: string;
  // Pager's jobs, oldest first; all parked so that nothing about them changes.
  const pagerJobs: string[] = [];
  let pager: string;
  // Alice's fixture: finished and parked jobs of two types, and an assessment with its job.
  let aliceCompleted: string;
  let aliceParked: string;
  let aliceOther: string;
  let assessmentId: string;
  let assessmentJob: string;
  let bobJob: string;

  const list = async (token: string, variables: Record<string, unknown>) => {
    const data = ok(await gql(conveyor, JOBS, variables, { token }));
    return data.jobs as { edges: { cursor: string; node: Node }[]; pageInfo: { hasNextPage: boolean; hasPreviousPage: boolean; startCursor: string | null; endCursor: string | null } };
  };
  const ids = (connection: { edges: { node: Node }[] }) => connection.edges.map((edge) => edge.node.id);
  // Newest first as the table has it (creation time, then id for jobs created in the same millisecond).
  let newestFirst: string[] = [];

  beforeAll(async () => {
    conveyor = await startTestConveyor({ handlers, environment: { WORKER_ENABLED: "true", WORKER_CONCURRENCY: "2" } });
    [alice, bob, olga, pager] = await Promise.all([
      tokenFor(conveyor, "alice"),
      tokenFor(conveyor, "bob"),
      tokenFor(conveyor, "olga", "operator"),
      tokenFor(conveyor, "pager"),
    ]);
    // One at a time, so that creation order is the order of created_at.
    for (let index = 0; index < 7; index++) pagerJobs.push(await enqueue(conveyor, pager, { type: "quick", payload: { index }, runAt: PARKED }));
    aliceCompleted = await enqueue(conveyor, alice, { type: "quick", payload: { n: 1 } });
    // HIGH is for operators through the API; this one is alice's, enqueued by the engine.
    aliceParked = (await conveyor.jobs.enqueue({ type: "quick", owner: "alice", runAt: new Date(PARKED), priority: "HIGH" }, "alice")).job.id;
    aliceOther = await enqueue(conveyor, alice, { type: "other" });
    assessmentId = await createAssessment(conveyor, alice);
    assessmentJob = await completeAssessment(conveyor, alice, assessmentId);
    bobJob = await enqueue(conveyor, bob, { type: "quick", runAt: PARKED });
    for (const id of [aliceCompleted, aliceOther, assessmentJob]) await eventually(async () => (await statusOf(conveyor, id)) === "COMPLETED");
    const { rows } = await conveyor.database.pool.query<{ id: string }>(`SELECT id FROM processing_jobs WHERE owner = 'pager' ORDER BY created_at DESC, id DESC`);
    newestFirst = rows.map((row) => row.id);
    expect(new Set(newestFirst)).toEqual(new Set(pagerJobs));
  });
  afterAll(() => conveyor?.dispose());

  describe("job(id)", () => {
    it("returns the owner's job with its result, timeline and assessment", async () => {
      const data = ok(
        await gql(
          conveyor,
          `query($id: ID!) { job(id: $id) { id type owner status progress priority retryCount maxAttempts correlationId schemaVersion payload result
             startedAt completedAt processingTimeMs lockedBy error { category } queuePosition events { fromStatus toStatus attempt } assessment { id status } } }`,
          { id: assessmentJob },
          { token: alice },
        ),
      );
      expect(data.job).toMatchObject({
        id: assessmentJob,
        type: "assessment",
        owner: "alice",
        status: "COMPLETED",
        progress: 100,
        priority: "NORMAL",
        retryCount: 0,
        correlationId: `assessment:${assessmentId}`,
        schemaVersion: "v1",
        payload: { assessmentId },
        result: { assessmentId, kind: "skills-check", band: "advanced" },
        lockedBy: null,
        error: null,
        queuePosition: null,
        assessment: { id: assessmentId, status: "COMPLETED" },
      });
      expect(Date.parse(data.job.completedAt)).toBeGreaterThanOrEqual(Date.parse(data.job.startedAt));
      expect(data.job.processingTimeMs).toBeGreaterThanOrEqual(0);
      // The timeline, oldest first: created, claimed, then completed (stage reports in between).
      const transitions = data.job.events.map((event: { fromStatus: string | null; toStatus: string }) => `${event.fromStatus ?? "∅"}→${event.toStatus}`);
      expect(transitions[0]).toBe("∅→QUEUED");
      expect(transitions).toContain("QUEUED→PROCESSING");
      expect(transitions.at(-1)).toBe("PROCESSING→COMPLETED");
    });

    it("gives a waiting job a queue position", async () => {
      const data = ok(await gql(conveyor, `query($id: ID!) { job(id: $id) { status priority runAt queuePosition } }`, { id: aliceParked }, { token: alice }));
      expect(data.job).toMatchObject({ status: "QUEUED", priority: "HIGH", runAt: PARKED });
      expect(data.job.queuePosition).toBeGreaterThanOrEqual(1);
    });

    it("answers NOT_FOUND, BAD_USER_INPUT for a malformed id, FORBIDDEN for somebody else's job", async () => {
      const query = `query($id: ID!) { job(id: $id) { id } }`;
      const missing = await gql(conveyor, query, { id: "00000000-0000-4000-8000-000000000000" }, { token: alice });
      expect(codeOf(missing)).toBe("NOT_FOUND");
      expect(missing.data?.job ?? null).toBeNull();
      const malformed = await gql(conveyor, query, { id: "not-a-uuid" }, { token: alice });
      expect(codeOf(malformed)).toBe("BAD_USER_INPUT");
      const foreign = await gql(conveyor, query, { id: bobJob }, { token: alice });
      expect(codeOf(foreign)).toBe("FORBIDDEN");
      expect(foreign.data?.job ?? null).toBeNull();
      expect(ok(await gql(conveyor, query, { id: bobJob }, { token: olga })).job.id).toBe(bobJob);
    });
  });

  describe("jobs", () => {
    it("lists newest first, paging forward with first/after through every job exactly once", async () => {
      const expected = newestFirst;
      const seen: string[] = [];
      let after: string | null = null;
      const pages: boolean[] = [];
      for (;;) {
        const page = await list(pager, { first: 3, after });
        seen.push(...ids(page));
        pages.push(page.pageInfo.hasNextPage);
        expect(page.pageInfo.hasPreviousPage).toBe(after !== null);
        expect(page.pageInfo.startCursor).toBe(page.edges[0]?.cursor ?? null);
        expect(page.pageInfo.endCursor).toBe(page.edges.at(-1)?.cursor ?? null);
        if (!page.pageInfo.hasNextPage) break;
        after = page.pageInfo.endCursor;
      }
      expect(seen).toEqual(expected);
      expect(pages).toEqual([true, true, false]);
      // The order is by creation time, newest first, as stored.
      const created = (await list(pager, { first: 100 })).edges.map((edge) => Date.parse(edge.node.createdAt));
      expect(created).toEqual([...created].sort((a, b) => b - a));
    });

    it("pages backward with last/before, keeping the newest-first order within each page", async () => {
      const expected = newestFirst;
      const last = await list(pager, { last: 3 });
      expect(ids(last)).toEqual(expected.slice(4));
      expect(last.pageInfo).toMatchObject({ hasPreviousPage: true, hasNextPage: false });
      const middle = await list(pager, { last: 3, before: last.pageInfo.startCursor });
      expect(ids(middle)).toEqual(expected.slice(1, 4));
      expect(middle.pageInfo).toMatchObject({ hasPreviousPage: true, hasNextPage: true });
      const first = await list(pager, { last: 3, before: middle.pageInfo.startCursor });
      expect(ids(first)).toEqual(expected.slice(0, 1));
      expect(first.pageInfo.hasPreviousPage).toBe(false);
    });

    it("refuses malformed paging arguments with BAD_USER_INPUT", async () => {
      for (const variables of [
        { first: -1 },
        { after: "garbage" },
        { after: Buffer.from("GPC:S:not-a-uuid").toString("base64") },
        { before: Buffer.from("GPC:N:5").toString("base64"), last: 2 },
        { first: 2, before: (await list(pager, { first: 1 })).pageInfo.endCursor },
      ]) {
        const response = await gql(conveyor, JOBS, variables, { token: pager });
        expect(codeOf(response), JSON.stringify(variables)).toBe("BAD_USER_INPUT");
      }
    });

    it("refuses a cursor naming another user's job exactly as one naming no job, and pages from an operator's", async () => {
      const cursorOf = (id: string) => Buffer.from(`GPC:S:${id}`).toString("base64");
      const foreign = await gql(conveyor, JOBS, { first: 100, after: cursorOf(bobJob) }, { token: alice });
      const missing = await gql(conveyor, JOBS, { first: 100, after: cursorOf("00000000-0000-7000-8000-000000000000") }, { token: alice });
      expect(codeOf(foreign)).toBe("BAD_USER_INPUT");
      expect(foreign.errors).toEqual(missing.errors);
      expect(codeOf(await gql(conveyor, JOBS, { last: 2, before: cursorOf(bobJob) }, { token: alice }))).toBe("BAD_USER_INPUT");
      // Its own job's id pages as a cursor from this connection does; an operator's reaches anyone's.
      expect(ids(await list(alice, { first: 100, after: cursorOf(aliceCompleted) }))).not.toContain(aliceCompleted);
      expect(ids(await list(olga, { first: 100, after: cursorOf(bobJob) }))).not.toContain(bobJob);
    });

    it("shows users only their own jobs and operators everybody's", async () => {
      const mine = await list(alice, { first: 100 });
      expect(new Set(mine.edges.map((edge) => edge.node.owner))).toEqual(new Set(["alice"]));
      expect(ids(mine)).toEqual(expect.arrayContaining([aliceCompleted, aliceParked, aliceOther, assessmentJob]));
      expect(ids(mine)).not.toContain(bobJob);
      const everyone = await list(olga, { first: 100 });
      expect(new Set(everyone.edges.map((edge) => edge.node.owner))).toEqual(new Set(["alice", "bob", "pager"]));
    });

    it("filters by status, type and assessment", async () => {
      const queued = await list(alice, { first: 100, filter: { status: ["QUEUED"] } });
      expect(ids(queued)).toEqual([aliceParked]);
      const finished = await list(alice, { first: 100, filter: { status: ["COMPLETED", "FAILED"] } });
      expect(new Set(ids(finished))).toEqual(new Set([aliceCompleted, aliceOther, assessmentJob]));
      const other = await list(alice, { first: 100, filter: { type: "other" } });
      expect(ids(other)).toEqual([aliceOther]);
      const quickQueued = await list(alice, { first: 100, filter: { type: "quick", status: ["QUEUED"] } });
      expect(ids(quickQueued)).toEqual([aliceParked]);
      const linked = await list(alice, { first: 100, filter: { assessmentId } });
      expect(ids(linked)).toEqual([assessmentJob]);
      expect(codeOf(await gql(conveyor, JOBS, { filter: { assessmentId: "nope" } }, { token: alice }))).toBe("BAD_USER_INPUT");
      expect(codeOf(await gql(conveyor, JOBS, { filter: { status: ["DONE"] } }, { token: alice }))).toBe("BAD_USER_INPUT");
    });

    it("filters by owner for operators; a user may name only themselves", async () => {
      const bobs = await list(olga, { first: 100, filter: { owner: "bob" } });
      expect(ids(bobs)).toEqual([bobJob]);
      const pagers = await list(olga, { first: 100, filter: { owner: "pager", status: ["QUEUED"] } });
      expect(ids(pagers)).toEqual(newestFirst);
      const self = await list(alice, { first: 100, filter: { owner: "alice", type: "other" } });
      expect(ids(self)).toEqual([aliceOther]);
      const spying = await gql(conveyor, JOBS, { first: 100, filter: { owner: "bob" } }, { token: alice });
      expect(codeOf(spying)).toBe("FORBIDDEN");
      expect(spying.data?.jobs ?? null).toBeNull();
    });

    it("filters by creation time: createdAfter inclusive, createdBefore exclusive", async () => {
      const all = (await list(pager, { first: 100 })).edges.map((edge) => edge.node);
      // Newest first: all[3] is the fourth newest, the middle of seven.
      const pivot = all[3]!;
      const after = await list(pager, { first: 100, filter: { createdAfter: pivot.createdAt } });
      expect(ids(after)).toEqual(all.filter((node) => node.createdAt >= pivot.createdAt).map((node) => node.id));
      expect(ids(after)).toContain(pivot.id);
      const before = await list(pager, { first: 100, filter: { createdBefore: pivot.createdAt } });
      expect(ids(before)).toEqual(all.filter((node) => node.createdAt < pivot.createdAt).map((node) => node.id));
      expect(ids(before)).not.toContain(pivot.id);
      const window = await list(pager, { first: 100, filter: { createdAfter: all[5]!.createdAt, createdBefore: all[1]!.createdAt } });
      expect(ids(window)).toEqual(all.slice(2, 6).filter((node) => node.createdAt >= all[5]!.createdAt && node.createdAt < all[1]!.createdAt).map((node) => node.id));
      expect(ids(window).length).toBeGreaterThan(0);
      expect(codeOf(await gql(conveyor, JOBS, { filter: { createdAfter: "last tuesday" } }, { token: pager }))).toBe("BAD_USER_INPUT");
    });

    it("requires a token", async () => {
      expect(codeOf(await gql(conveyor, JOBS, { first: 1 }))).toBe("UNAUTHENTICATED");
    });
  });

  describe("assessment(id)", () => {
    it("returns the owner's assessment with its jobs; operators may read it; others may not", async () => {
      const query = `query($id: ID!) { assessment(id: $id) { id owner kind status answers completedAt createdAt updatedAt jobs(first: 5) { edges { node { id status } } } } }`;
      const data = ok(await gql(conveyor, query, { id: assessmentId }, { token: alice }));
      expect(data.assessment).toMatchObject({
        id: assessmentId,
        owner: "alice",
        kind: "skills-check",
        status: "COMPLETED",
        answers: { q1: "HAVING", q2: "SKIP LOCKED", q3: "201", q4: 4 },
        jobs: { edges: [{ node: { id: assessmentJob, status: "COMPLETED" } }] },
      });
      expect(Date.parse(data.assessment.completedAt)).toBeGreaterThanOrEqual(Date.parse(data.assessment.createdAt));
      expect(ok(await gql(conveyor, query, { id: assessmentId }, { token: olga })).assessment.id).toBe(assessmentId);
      const foreign = await gql(conveyor, query, { id: assessmentId }, { token: bob });
      expect(codeOf(foreign)).toBe("FORBIDDEN");
      expect(JSON.stringify(foreign)).not.toContain("SKIP LOCKED");
      expect(codeOf(await gql(conveyor, query, { id: "00000000-0000-4000-8000-000000000000" }, { token: alice }))).toBe("NOT_FOUND");
      expect(codeOf(await gql(conveyor, query, { id: "42" }, { token: alice }))).toBe("BAD_USER_INPUT");
      expect(codeOf(await gql(conveyor, query, { id: assessmentId }))).toBe("UNAUTHENTICATED");
    });

    it("refuses a malformed cursor on its jobs connection", async () => {
      const response = await gql(conveyor, `query($id: ID!, $after: String) { assessment(id: $id) { jobs(after: $after) { edges { node { id } } } } }`, { id: assessmentId, after: Buffer.from("GPC:S:x").toString("base64") }, { token: alice });
      expect(codeOf(response)).toBe("BAD_USER_INPUT");
    });

    it("refuses a cursor on its jobs connection that names a job of another assessment, or another user's", async () => {
      const query = `query($id: ID!, $after: String) { assessment(id: $id) { jobs(first: 10, after: $after) { edges { node { id } } } } }`;
      const after = (id: string) => Buffer.from(`GPC:S:${id}`).toString("base64");
      expect(codeOf(await gql(conveyor, query, { id: assessmentId, after: after(bobJob) }, { token: alice }))).toBe("BAD_USER_INPUT");
      expect(codeOf(await gql(conveyor, query, { id: assessmentId, after: after(aliceCompleted) }, { token: alice }))).toBe("BAD_USER_INPUT");
      expect(ok(await gql(conveyor, query, { id: assessmentId, after: after(assessmentJob) }, { token: alice })).assessment.jobs.edges).toEqual([]);
    });

    it("lists the kinds of assessment", async () => {
      expect(ok(await gql(conveyor, `{ assessmentKinds }`)).assessmentKinds).toEqual(expect.arrayContaining(["skills-check", "wellbeing-check"]));
    });
  });

  describe("queueStats and queueHealth", () => {
    it("gives operators figures that match the table", async () => {
      const { rows } = await conveyor.database.pool.query<{ status: string; n: number }>(`SELECT status, count(*)::int AS n FROM processing_jobs GROUP BY status`);
      const count = (status: string) => rows.find((row) => row.status === status)?.n ?? 0;
      const data = ok(
        await gql(
          conveyor,
          `{ queueStats { windowSeconds counts { queued processing completed failed } successRate throughput { lastHour lastDay lastWeek } byType { type status count } stalled averageProcessingMs } }`,
          {},
          { token: olga },
        ),
      );
      expect(data.queueStats).toMatchObject({
        windowSeconds: 3600,
        counts: { queued: count("QUEUED"), completed: count("COMPLETED"), failed: 0 },
        successRate: 1,
        stalled: 0,
      });
      expect(data.queueStats.throughput.lastHour).toBe(count("COMPLETED"));
      expect(data.queueStats.byType).toEqual(expect.arrayContaining([{ type: "other", status: "COMPLETED", count: 1 }, { type: "assessment", status: "COMPLETED", count: 1 }]));
      expect(data.queueStats.averageProcessingMs).toBeGreaterThanOrEqual(0);
      expect(ok(await gql(conveyor, `{ queueStats(windowSeconds: 60) { windowSeconds } }`, {}, { token: olga })).queueStats.windowSeconds).toBe(60);
      expect(ok(await gql(conveyor, `{ queueStats(windowSeconds: 604800) { windowSeconds } }`, {}, { token: olga })).queueStats.windowSeconds).toBe(604800);
    });

    it("refuses an out-of-range window with BAD_USER_INPUT, and users with FORBIDDEN", async () => {
      for (const window of [0, -5, 604801]) {
        const response = await gql(conveyor, `query($w: Int) { queueStats(windowSeconds: $w) { windowSeconds } }`, { w: window }, { token: olga });
        expect(codeOf(response), String(window)).toBe("BAD_USER_INPUT");
      }
      expect(codeOf(await gql(conveyor, `{ queueStats { windowSeconds } }`, {}, { token: alice }))).toBe("FORBIDDEN");
      expect(codeOf(await gql(conveyor, `{ queueStats { windowSeconds } }`))).toBe("UNAUTHENTICATED");
    });

    it("reports health with its reasons and stats to operators only", async () => {
      const data = ok(await gql(conveyor, `{ queueHealth { status reasons checkedAt stats { counts { queued } successRate } } }`, {}, { token: olga }));
      expect(data.queueHealth).toMatchObject({ status: "HEALTHY", reasons: [], stats: { counts: { queued: pagerJobs.length + 2 }, successRate: 1 } });
      expect(Math.abs(Date.parse(data.queueHealth.checkedAt) - Date.now())).toBeLessThan(60_000);
      expect(codeOf(await gql(conveyor, `{ queueHealth { status } }`, {}, { token: alice }))).toBe("FORBIDDEN");
    });
  });

  describe("me", () => {
    it("names the caller and their role, or null without a token", async () => {
      expect(ok(await gql(conveyor, `{ me { id role } }`, {}, { token: alice })).me).toEqual({ id: "alice", role: "USER" });
      expect(ok(await gql(conveyor, `{ me { id role } }`, {}, { token: olga })).me).toEqual({ id: "olga", role: "OPERATOR" });
      expect(ok(await gql(conveyor, `{ me { id role } }`)).me).toBeNull();
    });
  });
});

describe("queueHealth when thresholds are crossed", () => {
  let conveyor: TestConveyor;
  beforeAll(async () => {
    conveyor = await startTestConveyor({ handlers, environment: { HEALTH_DEGRADED_QUEUED: "3" } });
  });
  afterAll(() => conveyor?.dispose());

  it("turns DEGRADED with a reason once more jobs wait than allowed", async () => {
    const olga = await tokenFor(conveyor, "olga", "operator");
    const query = `{ queueHealth { status reasons stats { counts { queued } } } }`;
    expect(ok(await gql(conveyor, query, {}, { token: olga })).queueHealth).toMatchObject({ status: "HEALTHY", reasons: [] });
    for (let index = 0; index < 4; index++) await enqueue(conveyor, olga, { type: "quick" });
    expect(ok(await gql(conveyor, query, {}, { token: olga })).queueHealth).toEqual({ status: "DEGRADED", reasons: ["4 jobs waiting (more than 3)"], stats: { counts: { queued: 4 } } });
  });
});
