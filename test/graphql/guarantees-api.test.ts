// Issue 9, items 1, 4, 5 and 7: ownership through enqueueJob, queue jumping, N+1 and cost, limits
// for every document. Each test names its item.
import { getIntrospectionQuery } from "graphql";
import { complexityFromQuery } from "@pothos/plugin-complexity";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { JobHandler } from "../../src/handlers/registry.js";
import { schema } from "../../src/graphql/schema/index.js";
import { eventually, startTestConveyor, type TestConveyor } from "../support/conveyor.js";
import { tokenFor } from "../support/graphql-client.js";
import { codeOf, createAssessment, gql, ok, PARKED } from "./helpers.js";

const ENQUEUE = `mutation($input: EnqueueJobInput!) { enqueueJob(input: $input) { created job { id owner priority runAt } } }`;

const handlers: JobHandler[] = [{ type: "quick", run: async () => ({ done: true }) }];

/** `__schema { types { fields { type { ofType { ofType … } } } } }`, `levels` fields deep. */
function deepIntrospection(levels: number): string {
  let selection = "name";
  for (let level = 0; level < levels - 4; level++) selection = `ofType { ${selection} }`;
  return `{ __schema { types { fields { type { ${selection} } } } } }`;
}

describe("issue 9 guarantees at the API", () => {
  let conveyor: TestConveyor;
  let alice: string;
  let bob: string;
  let olga: string;
  const rows = async (sql: string, values: unknown[] = []) => (await conveyor.database.pool.query<{ n: number }>(sql, values)).rows[0]!.n;

  beforeAll(async () => {
    conveyor = await startTestConveyor({ handlers, environment: { WORKER_ENABLED: "true", WORKER_CONCURRENCY: "2", HEALTH_BROADCAST_INTERVAL_MS: "600000" } });
    [alice, bob, olga] = await Promise.all([tokenFor(conveyor, "alice"), tokenFor(conveyor, "bob"), tokenFor(conveyor, "olga", "operator")]);
  });
  afterAll(() => conveyor?.dispose());

  describe("item 1: assessment jobs only for the assessment's owner", () => {
    it("item 1: a user's enqueueJob of an assessment job is FORBIDDEN, for another user's assessment and for their own, and inserts nothing", async () => {
      const bobs = await createAssessment(conveyor, bob);
      const alices = await createAssessment(conveyor, alice);
      for (const assessmentId of [bobs, alices]) {
        const response = await gql(conveyor, ENQUEUE, { input: { type: "assessment", payload: { assessmentId }, runAt: PARKED } }, { token: alice });
        expect(codeOf(response), assessmentId).toBe("FORBIDDEN");
        expect(response.data).toBeNull();
        expect(await rows(`SELECT count(*)::int AS n FROM processing_jobs WHERE payload->>'assessmentId' = $1`, [assessmentId])).toBe(0);
      }
    });

    it("item 1: an operator's assessment job belongs to the assessment's owner and runs for them", async () => {
      const bobs = await createAssessment(conveyor, bob);
      const data = ok(await gql(conveyor, ENQUEUE, { input: { type: "assessment", payload: { assessmentId: bobs } } }, { token: olga }));
      expect(data.enqueueJob.job.owner).toBe("bob");
      const job = await eventually(async () => {
        const found = await conveyor.jobs.find(data.enqueueJob.job.id);
        return found?.status === "COMPLETED" || found?.status === "FAILED" ? found : undefined;
      });
      expect(job.status).toBe("COMPLETED");
      expect(job.result).toMatchObject({ assessmentId: bobs });
    });

    it("item 1: the handler fails a job whose owner is not the assessment's owner, permanently and without a result", async () => {
      const alices = await createAssessment(conveyor, alice);
      const { job } = await conveyor.jobs.enqueue({ type: "assessment", owner: "mallory", payload: { assessmentId: alices } }, "mallory");
      const failed = await eventually(async () => {
        const found = await conveyor.jobs.find(job.id);
        return found && ["COMPLETED", "FAILED", "RETRYING", "VALIDATION_FAILED"].includes(found.status) ? found : undefined;
      });
      expect(failed.status).toBe("FAILED");
      expect(failed.retryCount).toBe(0);
      expect(failed.result).toBeNull();
      expect(failed.errorCode).toBe("PERMANENT_ERROR");
      expect(failed.errorMessage).toMatch(/owner does not match/);
      expect(failed.errorDetails).toMatchObject({ reason: "owner_mismatch" });
      // No personal data: neither owner is named.
      expect(JSON.stringify([failed.errorMessage, failed.errorDetails])).not.toMatch(/alice|mallory/);
    });

    it("item 1: assessments read together for scoring: a missing or malformed one fails its own job permanently, the others are scored", async () => {
      const alices = await createAssessment(conveyor, alice);
      // One statement, so one claim starts them together and their reads share one batch.
      const enqueued = await conveyor.jobs.enqueueMany(
        [alices, "00000000-0000-4000-8000-000000000000", "not-a-uuid'); DROP TABLE assessments; --", `{${alices.toUpperCase().replace(/-/g, "")}}`].map(
          (assessmentId) => ({ type: "assessment", owner: "alice", payload: { assessmentId } }),
        ),
        "alice",
      );
      const [scored, missing, malformed, otherForm] = enqueued.map((each) => each.job.id);
      const settled = (id: string) =>
        eventually(async () => {
          const found = await conveyor.jobs.find(id);
          return found && ["COMPLETED", "FAILED", "RETRYING"].includes(found.status) ? found : undefined;
        });
      expect((await settled(scored!)).result).toMatchObject({ assessmentId: alices });
      // The same id in another form PostgreSQL reads (braces, capitals, no hyphens) is found too.
      expect((await settled(otherForm!)).result).toMatchObject({ assessmentId: alices });
      for (const id of [missing!, malformed!]) {
        const failed = await settled(id);
        expect([failed.status, failed.retryCount, failed.errorCode]).toEqual(["FAILED", 0, "PERMANENT_ERROR"]);
        expect(failed.errorDetails).toMatchObject({ reason: "assessment_missing" });
      }
    });
  });

  describe("item 4: no queue jumping", () => {
    it("item 4: a user's priority HIGH is FORBIDDEN and inserts nothing", async () => {
      const before = await rows(`SELECT count(*)::int AS n FROM processing_jobs`);
      const response = await gql(conveyor, ENQUEUE, { input: { type: "quick", priority: "HIGH", runAt: PARKED } }, { token: alice });
      expect(codeOf(response)).toBe("FORBIDDEN");
      expect(await rows(`SELECT count(*)::int AS n FROM processing_jobs`)).toBe(before);
    });

    it("item 4: an operator's priority HIGH is accepted", async () => {
      const data = ok(await gql(conveyor, ENQUEUE, { input: { type: "quick", priority: "HIGH", runAt: PARKED } }, { token: olga }));
      expect(data.enqueueJob).toMatchObject({ created: true, job: { priority: "HIGH" } });
    });

    it("item 4: a runAt in the past is stored as the time of the request", async () => {
      const requested = Date.now();
      const data = ok(await gql(conveyor, ENQUEUE, { input: { type: "quick", runAt: "1970-01-01T00:00:00.000Z" } }, { token: alice }));
      expect(new Date(data.enqueueJob.job.runAt).getTime()).toBeGreaterThanOrEqual(requested);
      const stored = await conveyor.database.pool.query<{ run_at: Date }>(`SELECT run_at FROM processing_jobs WHERE id = $1`, [data.enqueueJob.job.id]);
      expect(stored.rows[0]!.run_at.getTime()).toBeGreaterThanOrEqual(requested);
    });
  });

  describe("item 5: a page's queue positions in one statement, and costs that follow page sizes", () => {
    const PAGE = `query($first: Int) { jobs(first: $first) { edges { node { id status queuePosition estimatedStartAt } } } }`;

    /** The statements the service's pool sends while `run` runs (Prisma goes through the same pool). */
    async function statementsDuring<T>(run: () => Promise<T>): Promise<{ result: T; statements: string[] }> {
      const pool = conveyor.database.pool;
      const statements: string[] = [];
      const query = pool.query;
      pool.query = ((...args: unknown[]) => {
        const text = args[0];
        statements.push(typeof text === "string" ? text : String((text as { text?: string })?.text ?? text));
        return (query as (...inner: unknown[]) => unknown).apply(pool, args);
      }) as typeof pool.query;
      try {
        return { result: await run(), statements };
      } finally {
        pool.query = query;
      }
    }

    it("item 5: jobs(first: 50) with queuePosition and estimatedStartAt sends a small constant number of statements", async () => {
      const owner = "paula";
      const token = await tokenFor(conveyor, owner);
      for (let index = 0; index < 50; index++) {
        await conveyor.jobs.enqueue({ type: "quick", owner, runAt: new Date(Date.parse(PARKED) + index * 1000) }, owner);
      }
      const small = await statementsDuring(() => gql(conveyor, PAGE, { first: 5 }, { token }));
      const large = await statementsDuring(() => gql(conveyor, PAGE, { first: 50 }, { token }));
      const edges = ok(large.result).jobs.edges as { node: { id: string; queuePosition: number } }[];
      expect(edges).toHaveLength(50);
      expect(large.statements.length, large.statements.join("\n---\n")).toBeLessThanOrEqual(4);
      expect(large.statements.length).toBe(small.statements.length);
      // The batch agrees with the one-job statement, and the page is in claim order (newest last).
      const positions = edges.map((edge) => edge.node.queuePosition);
      expect(new Set(positions).size).toBe(50);
      for (const edge of [edges[0]!, edges[49]!]) expect(edge.node.queuePosition).toBe(await conveyor.jobs.queuePosition(edge.node.id));
      expect(positions[0]).toBeGreaterThan(positions[49]!);
    });

    it("item 5: a page's cost grows with first, and with the events each job may load", () => {
      const cost = (query: string) => complexityFromQuery(query, { schema, ctx: {} }).complexity;
      const withEvents = (first: number) => `{ jobs(first: ${first}) { edges { node { id events { toStatus at } } } } }`;
      expect(cost(withEvents(100))).toBeGreaterThan(cost(withEvents(5)) * 10);
      expect(cost(`{ job(id: "x") { events(first: 500) { at } } }`)).toBeGreaterThan(cost(`{ job(id: "x") { events(first: 5) { at } } }`) * 50);
      expect(cost(`{ jobs(first: 100) { edges { node { id } } } }`)).toBeGreaterThan(cost(`{ jobs(first: 5) { edges { node { id } } } }`) * 10);
    });

    it("item 5: a request over the cost limit because of first alone is QUERY_TOO_COMPLEX; the same shape with a small first runs", async () => {
      const shape = (first: string) => `jobs(first: ${first}) { edges { node { id events { toStatus at } } } }`;
      const query = `query($first: Int) { ${shape("$first")} }`;
      // Small first, then large, then small again: yoga caches a document's validation, and a
      // verdict on one set of variables must not carry over to another.
      ok(await gql(conveyor, query, { first: 5 }, { token: alice }));
      const large = await gql(conveyor, query, { first: 100 }, { token: alice });
      expect(large.data).toBeUndefined();
      expect(codeOf(large)).toBe("QUERY_TOO_COMPLEX");
      expect(large.errors?.[0]?.message).toMatch(/cost/);
      ok(await gql(conveyor, query, { first: 5 }, { token: alice }));
      expect(codeOf(await gql(conveyor, `{ ${shape("100")} }`, {}, { token: alice }))).toBe("QUERY_TOO_COMPLEX");
      ok(await gql(conveyor, `{ ${shape("5")} }`, {}, { token: alice }));
    });

    it("item 5: events are paged: first bounds them, and more than the maximum is BAD_USER_INPUT", async () => {
      const id = ok(await gql(conveyor, ENQUEUE, { input: { type: "quick" } }, { token: alice })).enqueueJob.job.id;
      await eventually(async () => (await conveyor.jobs.find(id))?.status === "COMPLETED");
      const read = (first: number) => gql(conveyor, `query($id: ID!, $first: Int) { job(id: $id) { events(first: $first) { toStatus } } }`, { id, first }, { token: alice });
      const all = ok(await read(100)).job.events;
      expect(all.length).toBeGreaterThan(1);
      expect(ok(await read(1)).job.events).toEqual(all.slice(0, 1));
      expect(codeOf(await read(501))).toBe("BAD_USER_INPUT");
    });

    it("item 5: the README's tour queries fit the default cost limit", async () => {
      const id = ok(await gql(conveyor, ENQUEUE, { input: { type: "quick", runAt: PARKED } }, { token: alice })).enqueueJob.job.id;
      ok(await gql(conveyor, `query($id: ID!) { job(id: $id) { status startedAt completedAt processingTimeMs retryCount result events { toStatus stage at } error { category message(locale: FR) } } }`, { id }, { token: alice }));
      ok(await gql(conveyor, `{ jobs(first: 20, filter: { status: [FAILED] }) { edges { cursor node { id type status } } pageInfo { hasNextPage endCursor } } }`, {}, { token: alice }));
      ok(await gql(conveyor, `{ jobs(first: 100) { edges { node { queuePosition estimatedStartAt } } } }`, {}, { token: alice }));
      ok(await gql(conveyor, `{ queueHealth { status reasons stats { counts { queued processing failed } successRate throughput { lastHour } stalled failuresByCategory { category count } } } }`, {}, { token: olga }));
    });
  });

  describe("item 7: the limits hold for every document", () => {
    it("item 7: an __schema query 20 levels deep is refused without a token", async () => {
      const response = await gql(conveyor, deepIntrospection(20));
      expect(response.data).toBeUndefined();
      expect(codeOf(response)).toBe("QUERY_TOO_COMPLEX");
      expect(response.errors?.[0]?.message).toMatch(/depth/i);
    });

    it("item 7: GraphiQL's introspection query (graphql's getIntrospectionQuery) is answered with the default limits", async () => {
      const response = ok(await gql(conveyor, getIntrospectionQuery()));
      expect(response.__schema.types.some((type: { name: string }) => type.name === "Job")).toBe(true);
    });

    it("item 7: with GRAPHQL_INTROSPECTION=false introspection is refused, without a token and with one", async () => {
      const closed = await startTestConveyor({ environment: { GRAPHQL_INTROSPECTION: "false" } });
      try {
        const token = await tokenFor(closed, "alice");
        for (const options of [{}, { token }]) {
          const response = await gql(closed, getIntrospectionQuery(), {}, options);
          expect(response.data ?? undefined).toBeUndefined();
          expect(response.errors?.length).toBeGreaterThan(0);
        }
      } finally {
        await closed.dispose();
      }
    });
  });
});

describe("estimates shared between requests", () => {
  let conveyor: TestConveyor;
  let alice: string;
  beforeAll(async () => {
    // The default health cache, which the estimates' figures share.
    conveyor = await startTestConveyor({ handlers, environment: { HEALTH_CACHE_MS: "2000" } });
    alice = await tokenFor(conveyor, "alice");
  });
  afterAll(() => conveyor?.dispose());

  it("computes the queue figures behind estimatedStartAt once for many users' concurrent requests, not once each", async () => {
    const { id } = ok(await gql(conveyor, `mutation { enqueueJob(input: { type: "quick" }) { job { id } } }`, {}, { token: alice })).enqueueJob.job;
    const stats = vi.spyOn(conveyor.jobs, "stats");
    const query = `query($id: ID!) { job(id: $id) { queuePosition estimatedStartAt estimatedCompletionAt } }`;
    const answers = await Promise.all(Array.from({ length: 20 }, () => gql(conveyor, query, { id }, { token: alice })));
    for (const answer of answers) expect(ok(answer).job.queuePosition).toBe(1);
    expect(stats).toHaveBeenCalledTimes(1);
    stats.mockRestore();
  });
});
