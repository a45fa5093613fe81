import { SignJWT } from "jose";
import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JobHandler } from "../../src/handlers/registry.js";
import { PermanentJobError } from "../../src/jobs/job-errors.js";
import { eventually, startTestConveyor, type TestConveyor } from "../support/conveyor.js";
import { collect, tokenFor, wsClient } from "../support/graphql-client.js";
import { codeOf, createAssessment, enqueue, errorCodes, gql, ok, PARKED, statusOf } from "./helpers.js";

const handlers: JobHandler<any, any>[] = [
  { type: "quick", run: async (payload) => ({ echo: payload }) },
  {
    type: "broken",
    run: async () => {
      throw new PermanentJobError("cannot parse row 3 of customer-jane.doe@example.com.csv", { category: "FILE_ERROR", details: { row: 3 } });
    },
  },
];

/** A token signed with the given secret and claims; `exp` in seconds since the epoch. */
function sign(secret: string, claims: Record<string, unknown>, options: { sub?: string | null; exp?: number } = {}) {
  let jwt = new SignJWT(claims).setProtectedHeader({ alg: "HS256" }).setIssuedAt();
  if (options.sub !== null) jwt = jwt.setSubject(options.sub ?? "mallory");
  jwt = jwt.setExpirationTime(options.exp ?? Math.floor(Date.now() / 1000) + 600);
  return jwt.sign(new TextEncoder().encode(secret));
}

/** Opens a raw graphql-transport-ws socket, sends connection_init, and reports how it ends. */
async function connectRaw(conveyor: TestConveyor, payload: Record<string, unknown>): Promise<{ acknowledged: boolean; closeCode: number | null }> {
  const socket = new WebSocket(`${conveyor.url!.replace(/^http/, "ws")}/graphql`, "graphql-transport-ws");
  await new Promise((resolve, reject) => (socket.once("open", resolve), socket.once("error", reject)));
  socket.send(JSON.stringify({ type: "connection_init", payload }));
  return new Promise((resolve) => {
    socket.once("message", (data) => {
      if (JSON.parse(String(data)).type === "connection_ack") {
        socket.close();
        resolve({ acknowledged: true, closeCode: null });
      }
    });
    socket.once("close", (code) => resolve({ acknowledged: false, closeCode: code }));
  });
}

describe("authentication and authorization", () => {
  let conveyor: TestConveyor;
  let secret: string;
  let alice: string;
  let bob: string;
  let olga: string;
  beforeAll(async () => {
    conveyor = await startTestConveyor({ handlers, environment: { WORKER_ENABLED: "true" } });
    secret = conveyor.config.auth.secret!;
    [alice, bob, olga] = await Promise.all([tokenFor(conveyor, "alice"), tokenFor(conveyor, "bob"), tokenFor(conveyor, "olga", "operator")]);
  });
  afterAll(() => conveyor?.dispose());

  describe("over HTTP", () => {
    it("answers UNAUTHENTICATED to every protected operation without a token, and runs none of them", async () => {
      const parked = await enqueue(conveyor, alice, { type: "quick", runAt: PARKED });
      const assessment = await createAssessment(conveyor, alice);
      const operations: [string, Record<string, unknown>][] = [
        [`query($id: ID!) { job(id: $id) { id } }`, { id: parked }],
        [`{ jobs { edges { node { id } } } }`, {}],
        [`query($id: ID!) { assessment(id: $id) { id } }`, { id: assessment }],
        [`{ queueHealth { status } }`, {}],
        [`{ queueStats { windowSeconds } }`, {}],
        [`mutation { createAssessment(kind: "skills-check") { id } }`, {}],
        [`mutation($id: ID!) { saveAssessmentAnswers(id: $id, answers: {}) { id } }`, { id: assessment }],
        [`mutation($id: ID!) { completeAssessment(id: $id) { alreadyCompleted } }`, { id: assessment }],
        [`mutation { enqueueJob(input: { type: "quick" }) { created } }`, {}],
        [`mutation($id: ID!) { cancelJob(id: $id) { outcome } }`, { id: parked }],
        [`mutation($id: ID!) { retryJob(id: $id) { id } }`, { id: parked }],
        [`mutation { cleanupJobs(olderThanSeconds: 0) { deleted } }`, {}],
        [`mutation { recoverStalledJobs { recovered } }`, {}],
      ];
      const jobsBefore = (await conveyor.database.pool.query(`SELECT count(*)::int AS n FROM processing_jobs`)).rows[0].n;
      for (const [query, variables] of operations) {
        const response = await gql(conveyor, query, variables);
        expect(codeOf(response), query).toBe("UNAUTHENTICATED");
        expect(response.data ? Object.values(response.data).every((value) => value === null) : true, query).toBe(true);
      }
      expect(await statusOf(conveyor, parked)).toBe("QUEUED");
      expect((await conveyor.services.assessments.find(assessment))?.status).toBe("IN_PROGRESS");
      expect((await conveyor.database.pool.query(`SELECT count(*)::int AS n FROM processing_jobs`)).rows[0].n).toBe(jobsBefore);
      // Public fields stay public.
      expect(ok(await gql(conveyor, `{ me { id } assessmentKinds }`)).me).toBeNull();
    });

    it("answers 401 UNAUTHENTICATED to a bad, expired, foreign or malformed token, even on public fields", async () => {
      const now = Math.floor(Date.now() / 1000);
      const tokens = {
        garbage: "not-a-token",
        expired: await sign(secret, { role: "user" }, { exp: now - 60 }),
        otherSecret: await sign("another-secret-that-is-long-enough-0123456789", { role: "operator" }),
        unknownRole: await sign(secret, { role: "admin" }),
        noSubject: await sign(secret, { role: "user" }, { sub: null }),
        tampered: `${alice.slice(0, -4)}AAAA`,
        unsigned: `${Buffer.from(JSON.stringify({ alg: "none", typ: "JWT" })).toString("base64url")}.${Buffer.from(JSON.stringify({ sub: "olga", role: "operator", exp: now + 600 })).toString("base64url")}.`,
      };
      for (const [name, token] of Object.entries(tokens)) {
        const response = await gql(conveyor, `{ me { id role } assessmentKinds }`, {}, { token });
        expect(response.status, name).toBe(401);
        expect(codeOf(response), name).toBe("UNAUTHENTICATED");
        expect(response.data, name).toBeUndefined();
      }
      const valid = await sign(secret, { role: "operator" }, { sub: "olivia" });
      expect(ok(await gql(conveyor, `{ me { id role } }`, {}, { token: valid })).me).toEqual({ id: "olivia", role: "OPERATOR" });
      // Without a role claim, a token is a user's.
      expect(ok(await gql(conveyor, `{ me { id role } }`, {}, { token: await sign(secret, {}, { sub: "uma" }) })).me).toEqual({ id: "uma", role: "USER" });
    });
  });

  describe("over WebSocket", () => {
    it("closes the connection with 4403 for a bad, expired or foreign token", async () => {
      const now = Math.floor(Date.now() / 1000);
      for (const authorization of [
        "Bearer not-a-token",
        `Bearer ${await sign(secret, { role: "user" }, { exp: now - 60 })}`,
        `Bearer ${await sign("another-secret-that-is-long-enough-0123456789", { role: "operator" })}`,
        `Bearer ${await sign(secret, { role: "root" })}`,
      ]) {
        expect(await connectRaw(conveyor, { authorization })).toEqual({ acknowledged: false, closeCode: 4403 });
      }
      expect(await connectRaw(conveyor, { authorization: `Bearer ${alice}` })).toEqual({ acknowledged: true, closeCode: null });
      // The raw token, without "Bearer", is accepted too.
      expect(await connectRaw(conveyor, { token: alice })).toEqual({ acknowledged: true, closeCode: null });
    });

    it("fails every subscription of a client whose token is refused", async () => {
      const client = wsClient(conveyor, "not-a-token");
      const { events, error } = await collect(client, `subscription { queueHealthChanged { status } }`).done;
      expect(events).toEqual([]);
      expect((error as { code?: number }).code).toBe(4403);
      await client.dispose();
    });
  });

  describe("one user's jobs and assessments, another user, an operator", () => {
    it("refuses another user's job on query, cancel, retry and subscribe; changes nothing", async () => {
      const parked = await enqueue(conveyor, alice, { type: "quick", runAt: PARKED });
      const failed = await enqueue(conveyor, alice, { type: "broken" });
      await eventually(async () => (await statusOf(conveyor, failed)) === "FAILED");

      const read = await gql(conveyor, `query($id: ID!) { job(id: $id) { id payload } }`, { id: parked }, { token: bob });
      expect(codeOf(read)).toBe("FORBIDDEN");
      expect(read.data?.job ?? null).toBeNull();
      const cancel = await gql(conveyor, `mutation($id: ID!) { cancelJob(id: $id) { outcome } }`, { id: parked }, { token: bob });
      expect(codeOf(cancel)).toBe("FORBIDDEN");
      expect(await statusOf(conveyor, parked)).toBe("QUEUED");
      const retry = await gql(conveyor, `mutation($id: ID!) { retryJob(id: $id) { id } }`, { id: failed }, { token: bob });
      expect(codeOf(retry)).toBe("FORBIDDEN");
      expect(await statusOf(conveyor, failed)).toBe("FAILED");
      const listed = await gql(conveyor, `{ jobs(first: 100) { edges { node { id } } } }`, {}, { token: bob });
      expect(listed.text).not.toContain(parked);
      expect(codeOf(await gql(conveyor, `{ jobs(filter: { owner: "alice" }) { edges { node { id } } } }`, {}, { token: bob }))).toBe("FORBIDDEN");

      const client = wsClient(conveyor, bob);
      try {
        for (const id of [parked, failed]) {
          const { events, error } = await collect(client, `subscription($id: ID!) { jobProgress(jobId: $id) { status } }`, { id }).done;
          expect(events).toEqual([]);
          expect(errorCodes(error)).toEqual(["FORBIDDEN"]);
        }
      } finally {
        await client.dispose();
      }
      const audits = await conveyor.database.pool.query(`SELECT actor, action FROM audit_events WHERE entity_id = ANY($1) AND actor = 'bob'`, [[parked, failed]]);
      expect(audits.rows).toEqual([]);
    });

    it("refuses another user's assessment on read, save and complete", async () => {
      const id = await createAssessment(conveyor, alice);
      for (const [query, variables] of [
        [`query($id: ID!) { assessment(id: $id) { answers } }`, { id }],
        [`mutation($id: ID!) { saveAssessmentAnswers(id: $id, answers: { q1: "WHERE" }) { id } }`, { id }],
        [`mutation($id: ID!) { completeAssessment(id: $id) { alreadyCompleted } }`, { id }],
      ] as const) {
        const response = await gql(conveyor, query, variables, { token: bob });
        expect(codeOf(response), query).toBe("FORBIDDEN");
        expect(response.text).not.toContain("SKIP LOCKED");
      }
      expect(await conveyor.services.assessments.find(id)).toMatchObject({ status: "IN_PROGRESS", answers: { q1: "HAVING" } });
    });

    it("lets operators see, list, cancel, retry and follow anybody's jobs, with the details users do not get", async () => {
      const failed = await enqueue(conveyor, alice, { type: "broken" });
      await eventually(async () => (await statusOf(conveyor, failed)) === "FAILED");
      const query = `query($id: ID!) { job(id: $id) { owner status error { category technicalMessage details } } }`;
      const asOwner = ok(await gql(conveyor, query, { id: failed }, { token: alice })).job;
      expect(asOwner).toEqual({ owner: "alice", status: "FAILED", error: { category: "FILE_ERROR", technicalMessage: null, details: null } });
      const asOperator = ok(await gql(conveyor, query, { id: failed }, { token: olga })).job;
      expect(asOperator.error.technicalMessage).toMatch(/cannot parse row 3/);
      // Personal data is redacted even for operators.
      expect(asOperator.error.technicalMessage).not.toContain("jane.doe@example.com");
      expect(asOperator.error.details).toMatchObject({ category: "FILE_ERROR" });

      const listed = ok(await gql(conveyor, `{ jobs(first: 100, filter: { owner: "alice", status: [FAILED] }) { edges { node { id } } } }`, {}, { token: olga }));
      expect(listed.jobs.edges.map((edge: { node: { id: string } }) => edge.node.id)).toContain(failed);

      const client = wsClient(conveyor, olga);
      try {
        const follow = collect(client, `subscription($id: ID!) { jobProgress(jobId: $id) { status } }`, { id: failed });
        await eventually(() => follow.events.length >= 1);
        expect(follow.events[0]!.data).toEqual({ jobProgress: { status: "FAILED" } });
        const retried = ok(await gql(conveyor, `mutation($id: ID!) { retryJob(id: $id) { status } }`, { id: failed }, { token: olga }));
        expect(["QUEUED", "PROCESSING", "FAILED"]).toContain(retried.retryJob.status);
        await eventually(async () => (await conveyor.database.pool.query(`SELECT 1 FROM audit_events WHERE entity_id = $1 AND action = 'job.retried' AND actor = 'olga'`, [failed])).rowCount === 1);
      } finally {
        await client.dispose();
      }
      const parked = await enqueue(conveyor, alice, { type: "quick", runAt: PARKED });
      expect(ok(await gql(conveyor, `mutation($id: ID!) { cancelJob(id: $id) { outcome } }`, { id: parked }, { token: olga })).cancelJob.outcome).toBe("CANCELLED");
      expect(await statusOf(conveyor, parked)).toBe("CANCELLED");
      expect(ok(await gql(conveyor, `query($id: ID!) { assessment(id: $id) { owner } }`, { id: await createAssessment(conveyor, alice) }, { token: olga })).assessment.owner).toBe("alice");
    });

    it("keeps operator-only fields from users", async () => {
      for (const query of [
        `{ queueHealth { status } }`,
        `{ queueStats { windowSeconds } }`,
        `mutation { cleanupJobs(olderThanSeconds: 0) { deleted } }`,
        `mutation { recoverStalledJobs { recovered } }`,
      ]) {
        const response = await gql(conveyor, query, {}, { token: alice });
        expect(codeOf(response), query).toBe("FORBIDDEN");
      }
      const client = wsClient(conveyor, alice);
      try {
        for (const query of [`subscription { jobUpdates { jobId } }`, `subscription { queueHealthChanged { status } }`]) {
          const { events, error } = await collect(client, query).done;
          expect(events, query).toEqual([]);
          expect(errorCodes(error), query).toEqual(["FORBIDDEN"]);
        }
      } finally {
        await client.dispose();
      }
    });
  });
});
