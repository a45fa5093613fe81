import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JobHandler } from "../../src/handlers/registry.js";
import { eventually, startTestConveyor, type TestConveyor } from "../support/conveyor.js";
import { collect, graphql, tokenFor, wsClient } from "../support/graphql-client.js";

const handlers: JobHandler<any, any>[] = [
  { type: "always-fails", run: async () => Promise.reject(new Error("upstream unavailable for jane@example.com")) },
  {
    type: "waits",
    async run(_payload, context) {
      await context.progress("waiting", 5);
      await new Promise((_resolve, reject) => context.signal.addEventListener("abort", () => reject(context.signal.reason), { once: true }));
    },
  },
  { type: "quick", run: async (payload) => ({ echo: payload }) },
];

describe("jobs over the API", () => {
  let conveyor: TestConveyor;
  let alice: string;
  let bob: string;
  let olga: string;
  const enqueue = async (token: string, input: Record<string, unknown>) => {
    const response = await graphql(conveyor, `mutation($input: EnqueueJobInput!) { enqueueJob(input: $input) { created job { id status owner } } }`, { input }, { token });
    return response;
  };

  beforeAll(async () => {
    conveyor = await startTestConveyor({
      handlers,
      environment: { WORKER_ENABLED: "true", WORKER_CONCURRENCY: "4", RETRY_INITIAL_DELAY_MS: "30", RETRY_MAX_DELAY_MS: "60", JOB_MAX_ATTEMPTS: "2", HEALTH_BROADCAST_INTERVAL_MS: "100" },
    });
    [alice, bob, olga] = await Promise.all([tokenFor(conveyor, "alice"), tokenFor(conveyor, "bob"), tokenFor(conveyor, "olga", "operator")]);
  });
  afterAll(() => conveyor?.dispose());

  it("enqueues idempotently and refuses unknown types with BAD_USER_INPUT", async () => {
    const first = await enqueue(alice, { type: "quick", payload: { n: 1 }, idempotencyKey: "k-1", priority: "LOW" });
    const second = await enqueue(alice, { type: "quick", payload: { n: 2 }, idempotencyKey: "k-1" });
    expect(first.data.enqueueJob.created).toBe(true);
    expect(second.data.enqueueJob).toMatchObject({ created: false, job: { id: first.data.enqueueJob.job.id } });
    const unknown = await enqueue(alice, { type: "does-not-exist" });
    expect(unknown.errors?.[0]?.extensions).toMatchObject({ code: "BAD_USER_INPUT" });
    expect(unknown.errors?.[0]?.message).toMatch(/Unknown job type/);
    const badAttempts = await enqueue(alice, { type: "quick", maxAttempts: 0 });
    expect(badAttempts.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
    const badDate = await enqueue(alice, { type: "quick", runAt: "yesterday" });
    expect(badDate.errors?.[0]?.message).toMatch(/DateTime/);
  });

  it("streams RETRYING then FAILED with a localized, categorized error", async () => {
    // Parked until the subscription has its first event, so that it sees the whole run.
    const jobId = (await enqueue(alice, { type: "always-fails", runAt: new Date(Date.now() + 3_600_000).toISOString() })).data.enqueueJob.job.id;
    const client = wsClient(conveyor, alice, { locale: "fr" });
    const stream = collect(client, `subscription($id: ID!) { jobProgress(jobId: $id) { status retryCount error { category message } } }`, { id: jobId });
    await eventually(() => stream.events.length >= 1);
    await conveyor.database.pool.query(`UPDATE processing_jobs SET run_at = now() WHERE id = $1`, [jobId]);
    const { events, error } = await stream.done;
    expect(error).toBeUndefined();
    const statuses = events.map((event) => (event.data as any).jobProgress.status);
    expect(statuses.filter((status) => status !== "PROCESSING")).toEqual(["QUEUED", "RETRYING", "FAILED"]);
    const failed = (events.at(-1)!.data as any).jobProgress;
    expect(failed).toMatchObject({ status: "FAILED", retryCount: 1, error: { category: "WORKER_ERROR" } });
    expect(failed.error.message).toMatch(/erreur inattendue/);
    const stored = await graphql(conveyor, `query($id: ID!) { job(id: $id) { error { technicalMessage } } }`, { id: jobId }, { token: olga });
    expect(stored.data.job.error.technicalMessage).not.toContain("jane@example.com");
    await client.dispose();
  });

  it("cancels a running job through the API", async () => {
    const jobId = (await enqueue(alice, { type: "waits" })).data.enqueueJob.job.id;
    await eventually(async () => (await conveyor.jobs.find(jobId))?.stage === "waiting");
    const cancelled = await graphql(conveyor, `mutation($id: ID!) { cancelJob(id: $id) { outcome job { id cancelRequestedAt } } }`, { id: jobId }, { token: alice });
    expect(cancelled.data.cancelJob.outcome).toBe("CANCEL_REQUESTED");
    expect(cancelled.data.cancelJob.job.cancelRequestedAt).not.toBeNull();
    await eventually(async () => (await conveyor.jobs.find(jobId))?.status === "CANCELLED");
    const again = await graphql(conveyor, `mutation($id: ID!) { cancelJob(id: $id) { outcome } }`, { id: jobId }, { token: alice });
    expect(again.errors?.[0]?.extensions?.code).toBe("CONFLICT");
    const retried = await graphql(conveyor, `mutation($id: ID!) { retryJob(id: $id) { status retryCount } }`, { id: jobId }, { token: alice });
    expect(retried.data.retryJob.status).toMatch(/QUEUED|PROCESSING/);
    await eventually(async () => (await conveyor.jobs.find(jobId))?.stage === "waiting");
    await graphql(conveyor, `mutation($id: ID!) { cancelJob(id: $id) { outcome } }`, { id: jobId }, { token: alice });
  });

  it("cancels a queued job at once and refuses to retry a job that has not failed", async () => {
    const jobId = (await enqueue(alice, { type: "quick", runAt: new Date(Date.now() + 3_600_000).toISOString() })).data.enqueueJob.job.id;
    const position = await graphql(conveyor, `query($id: ID!) { job(id: $id) { queuePosition status } }`, { id: jobId }, { token: alice });
    expect(position.data.job.queuePosition).toBeGreaterThanOrEqual(1);
    const retry = await graphql(conveyor, `mutation($id: ID!) { retryJob(id: $id) { id } }`, { id: jobId }, { token: alice });
    expect(retry.errors?.[0]?.extensions?.code).toBe("CONFLICT");
    const cancelled = await graphql(conveyor, `mutation($id: ID!) { cancelJob(id: $id) { outcome job { status queuePosition error { category } } } }`, { id: jobId }, { token: alice });
    expect(cancelled.data.cancelJob).toMatchObject({ outcome: "CANCELLED", job: { status: "CANCELLED", queuePosition: null, error: { category: "CANCELLED" } } });
  });

  it("keeps another user's job out of reach on query, mutation and subscribe", async () => {
    const jobId = (await enqueue(alice, { type: "quick", runAt: new Date(Date.now() + 3_600_000).toISOString() })).data.enqueueJob.job.id;
    const read = await graphql(conveyor, `query($id: ID!) { job(id: $id) { id } }`, { id: jobId }, { token: bob });
    expect(read.errors?.[0]?.extensions?.code).toBe("FORBIDDEN");
    expect(read.data?.job ?? null).toBeNull();
    for (const mutation of ["cancelJob(id: $id) { outcome }", "retryJob(id: $id) { id }"]) {
      const response = await graphql(conveyor, `mutation($id: ID!) { ${mutation} }`, { id: jobId }, { token: bob });
      expect(response.errors?.[0]?.extensions?.code).toBe("FORBIDDEN");
    }
    const client = wsClient(conveyor, bob);
    const { done } = collect(client, `subscription($id: ID!) { jobProgress(jobId: $id) { status } }`, { id: jobId });
    // Refused when it starts: an `error` message before any event.
    const { events, error } = await done;
    expect(events).toHaveLength(0);
    expect((error as { extensions?: { code?: string } }[])[0]?.extensions?.code).toBe("FORBIDDEN");
    // The same socket still serves what bob may see.
    const own = (await enqueue(bob, { type: "quick" })).data.enqueueJob.job.id;
    const mine = await collect(client, `subscription($id: ID!) { jobProgress(jobId: $id) { status } }`, { id: own }).done;
    expect((mine.events.at(-1)!.data as any).jobProgress.status).toBe("COMPLETED");
    await client.dispose();
    expect((await graphql(conveyor, `query($id: ID!) { job(id: $id) { id } }`, { id: jobId }, { token: olga })).data.job.id).toBe(jobId);
    const missing = await graphql(conveyor, `query { job(id: "00000000-0000-4000-8000-000000000000") { id } }`, {}, { token: alice });
    expect(missing.errors?.[0]?.extensions?.code).toBe("NOT_FOUND");
    const malformed = await graphql(conveyor, `query { job(id: "not-a-uuid") { id } }`, {}, { token: alice });
    expect(malformed.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");
  });

  it("lists jobs newest first as a Relay connection, users their own, operators anyone's", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await enqueue(bob, { type: "quick", payload: { i } })).data.enqueueJob.job.id);
    const query = `query($first: Int, $after: String, $filter: JobFilter) { jobs(first: $first, after: $after, filter: $filter) { edges { cursor node { id owner type } } pageInfo { hasNextPage endCursor } } }`;
    const page1 = await graphql(conveyor, query, { first: 3, filter: { type: "quick" } }, { token: bob });
    const page2 = await graphql(conveyor, query, { first: 3, after: page1.data.jobs.pageInfo.endCursor, filter: { type: "quick" } }, { token: bob });
    const listed = [...page1.data.jobs.edges, ...page2.data.jobs.edges].map((edge: any) => edge.node.id);
    expect(listed.slice(0, 5)).toEqual([...ids].reverse());
    expect(page1.data.jobs.pageInfo.hasNextPage).toBe(true);
    expect(new Set([...page1.data.jobs.edges, ...page2.data.jobs.edges].map((edge: any) => edge.node.owner))).toEqual(new Set(["bob"]));
    const spying = await graphql(conveyor, query, { first: 3, filter: { owner: "bob" } }, { token: alice });
    expect(spying.errors?.[0]?.extensions?.code).toBe("FORBIDDEN");
    // The quick jobs finish in their own time: on a loaded machine, after the pages above were read.
    const completedIds = await eventually(async () => {
      const asOperator = await graphql(conveyor, query, { first: 100, filter: { owner: "bob", status: ["COMPLETED"] } }, { token: olga });
      const found = asOperator.data.jobs.edges.map((edge: any) => edge.node.id);
      return ids.every((id) => found.includes(id)) ? found : undefined;
    });
    expect(completedIds.length).toBeGreaterThanOrEqual(5);
    const unauthenticated = await graphql(conveyor, query, { first: 1 });
    expect(unauthenticated.errors?.[0]?.extensions?.code).toBe("UNAUTHENTICATED");
  });

  it("shows queue health and stats to operators only, and streams health changes", async () => {
    // A queue of its own, so the state before the change is known rather than left by the tests above.
    const own = await startTestConveyor({ environment: { HEALTH_BROADCAST_INTERVAL_MS: "100" } });
    try {
      const [olgaHere, aliceHere] = await Promise.all([tokenFor(own, "olga", "operator"), tokenFor(own, "alice")]);
      // 9 of 10 finished jobs succeeded: exactly at the 90 % threshold, so HEALTHY.
      await own.database.pool.query(
        `INSERT INTO processing_jobs (id, type, owner, correlation_id, status, error_code, created_at, started_at, completed_at, processing_time_ms)
         SELECT gen_random_uuid(), 'quick', 'olga', 'c', CASE WHEN i = 1 THEN 'FAILED' ELSE 'COMPLETED' END::"JobStatus",
           CASE WHEN i = 1 THEN 'WORKER_ERROR' END, now() - interval '3 minutes', now() - interval '2 minutes', now() - interval '1 minute', 250
         FROM generate_series(1, 10) AS i`,
      );
      const health = await graphql(own, `{ queueHealth { status reasons checkedAt stats { counts { queued completed failed } successRate throughput { lastHour } failuresByCategory { category count } } } }`, {}, { token: olgaHere });
      expect(health.errors).toBeUndefined();
      expect(health.data.queueHealth).toMatchObject({
        status: "HEALTHY",
        reasons: [],
        stats: { counts: { queued: 0, completed: 9, failed: 1 }, successRate: 0.9, throughput: { lastHour: 9 }, failuresByCategory: [{ category: "WORKER_ERROR", count: 1 }] },
      });
      const forbidden = await graphql(own, `{ queueHealth { status } }`, {}, { token: aliceHere });
      expect(forbidden.errors?.[0]?.extensions?.code).toBe("FORBIDDEN");
      const window = await graphql(own, `{ queueStats(windowSeconds: 0) { successRate } }`, {}, { token: olgaHere });
      expect(window.errors?.[0]?.extensions?.code).toBe("BAD_USER_INPUT");

      const client = wsClient(own, olgaHere);
      const changes = collect(client, `subscription { queueHealthChanged { status previousStatus reasons } }`, {}, (event) => (event.data as any)?.queueHealthChanged.previousStatus !== null);
      await eventually(() => changes.events.length >= 1);
      expect((changes.events[0]!.data as any).queueHealthChanged).toEqual({ status: "HEALTHY", previousStatus: null, reasons: [] });
      // More than 100 waiting jobs degrades the queue.
      await own.database.pool.query(
        `INSERT INTO processing_jobs (id, type, owner, correlation_id, run_at) SELECT gen_random_uuid(), 'parked', 'olga', 'c', now() FROM generate_series(1, 150)`,
      );
      const { events, error } = await changes.done;
      expect(error).toBeUndefined();
      expect((events.at(-1)!.data as any).queueHealthChanged).toEqual({ status: "DEGRADED", previousStatus: "HEALTHY", reasons: ["150 jobs waiting (more than 100)"] });
      await client.dispose();
    } finally {
      await own.dispose();
    }

    const denied = await collect(wsClient(conveyor, alice), `subscription { jobUpdates { jobId } }`).done;
    expect(denied.events).toHaveLength(0);
    expect((denied.error as { extensions?: { code?: string } }[])[0]?.extensions?.code).toBe("FORBIDDEN");
  });

  it("streams every transition to operators on jobUpdates", async () => {
    const client = wsClient(conveyor, olga);
    const updates = collect(client, `subscription { jobUpdates(filter: { type: "quick" }) { jobId status } }`);
    const statusesOf = (id: string) => updates.events.map((event) => (event.data as any)?.jobUpdates).filter((update: any) => update?.jobId === id).map((update: any) => update.status);
    // jobUpdates sends nothing on subscribe: the subscription is live once a probe job's event arrives.
    const probes: string[] = [];
    await eventually(async () => {
      if (probes.some((probe) => statusesOf(probe).length > 0)) return true;
      probes.push((await enqueue(alice, { type: "quick" })).data.enqueueJob.job.id);
      return false;
    }, 20_000, 200);
    const jobId: string = (await enqueue(alice, { type: "quick" })).data.enqueueJob.job.id;
    await eventually(() => statusesOf(jobId).includes("COMPLETED"));
    updates.stop();
    // Each transition exactly once, in order, although the enqueuer publishes QUEUED and a worker
    // PROCESSING, and under load the claim can overtake the creation (test/unit/change-order.test.ts).
    expect(statusesOf(jobId)).toEqual(["QUEUED", "PROCESSING", "COMPLETED"]);
    await client.dispose();
  });

  it("sends operators job changes in batches: one message per interval, each job in its latest state", async () => {
    const client = wsClient(conveyor, olga);
    const query = `subscription($ms: Int) { jobUpdateBatches(filter: { type: "quick" }, batchMs: $ms) { coalesced at changes { jobId status } } }`;
    const refused = await collect(wsClient(conveyor, alice), query, { ms: 100 }).done;
    expect((refused.error as { extensions?: { code?: string } }[])[0]?.extensions?.code).toBe("FORBIDDEN");
    const tooFast = await collect(client, query, { ms: 5 }).done;
    expect((tooFast.error as { extensions?: { code?: string } }[])[0]?.extensions?.code).toBe("BAD_USER_INPUT");

    const batches = collect(client, query, { ms: 200 });
    const latest = new Map<string, string>();
    const seen = () => {
      for (const event of batches.events) for (const change of (event.data as any).jobUpdateBatches.changes) latest.set(change.jobId, change.status);
      return latest;
    };
    // Live once a probe's change arrives (nothing is sent on subscribe).
    await eventually(async () => {
      if (seen().size > 0) return true;
      await enqueue(alice, { type: "quick" });
      return false;
    }, 20_000, 250);
    const ids: string[] = [];
    for (let i = 0; i < 40; i++) ids.push((await enqueue(alice, { type: "quick" })).data.enqueueJob.job.id);
    await eventually(() => ids.every((id) => seen().get(id) === "COMPLETED"));
    batches.stop();
    // 120 transitions arrived in far fewer messages, and within one batch each job appears once.
    expect(batches.events.length).toBeLessThan(40);
    for (const event of batches.events) {
      const jobIds = (event.data as any).jobUpdateBatches.changes.map((change: { jobId: string }) => change.jobId);
      expect(new Set(jobIds).size).toBe(jobIds.length);
    }
    // At most one message per interval (the server's `at`, in whole milliseconds).
    const sentAt = batches.events.map((event) => Date.parse((event.data as any).jobUpdateBatches.at));
    for (let i = 1; i < sentAt.length; i++) expect(sentAt[i]! - sentAt[i - 1]!).toBeGreaterThanOrEqual(199);
    await client.dispose();
  });

  it("sends the first change after a quiet spell at once, not at the end of a long interval", async () => {
    const client = wsClient(conveyor, olga);
    const subscribedAt = Date.now();
    const batches = collect(client, `subscription { jobUpdateBatches(filter: { type: "quick" }, batchMs: 10000) { changes { jobId status } } }`);
    // Nothing is sent on subscribe: probe until a change arrives. A ticker would first send 10 s in.
    await eventually(async () => {
      if (batches.events.length > 0) return true;
      await enqueue(alice, { type: "quick" });
      return false;
    }, 20_000, 250);
    expect(Date.now() - subscribedAt).toBeLessThan(8_000);
    batches.stop();
    await client.dispose();
  });

  it("never shows a jobProgress subscriber a state older than the one it was last shown", async () => {
    const jobId: string = (await enqueue(alice, { type: "quick", runAt: "2999-01-01T00:00:00.000Z" })).data.enqueueJob.job.id;
    const client = wsClient(conveyor, alice);
    const progress = collect(client, `subscription($id: ID!) { jobProgress(jobId: $id) { status stage } }`, { id: jobId });
    await eventually(() => progress.events.length === 1);
    const base = { jobId, type: "quick", owner: "alice", stage: null, progress: 0, bytesDone: null, bytesTotal: null, retryCount: 0, errorCode: null };
    const later = new Date(Date.now() + 60_000);
    // A worker's claim published first, then the creation arriving late: at an earlier time, at the
    // same instant, and stamped later by a clock running ahead; its revision says it is older.
    conveyor.events.publishJobChange({ ...base, status: "PROCESSING", previousStatus: "QUEUED", revision: 2, at: later.toISOString() });
    for (const offset of [-1, 0, 5]) {
      conveyor.events.publishJobChange({ ...base, status: "QUEUED", previousStatus: null, revision: 1, at: new Date(later.getTime() + offset).toISOString() });
    }
    // Progress reports within one millisecond are all shown; one reported before them is not.
    conveyor.events.publishJobChange({ ...base, status: "PROCESSING", previousStatus: "PROCESSING", stage: "reading", progress: 10, revision: 2, at: later.toISOString() });
    conveyor.events.publishJobChange({ ...base, status: "PROCESSING", previousStatus: "PROCESSING", stage: "writing", progress: 20, revision: 2, at: later.toISOString() });
    conveyor.events.publishJobChange({ ...base, status: "PROCESSING", previousStatus: "PROCESSING", stage: "early", progress: 5, revision: 2, at: new Date(later.getTime() - 1).toISOString() });
    conveyor.events.publishJobChange({ ...base, status: "COMPLETED", previousStatus: "PROCESSING", progress: 100, revision: 3, at: later.toISOString() });
    const { events } = await progress.done;
    expect(events.map((event) => Object.values((event.data as any).jobProgress).filter(Boolean).join(":"))).toEqual([
      "QUEUED",
      "PROCESSING",
      "PROCESSING:reading",
      "PROCESSING:writing",
      "COMPLETED",
    ]);
    await client.dispose();
  });

  it("gives every subscriber to one job the whole story, however many share it and whenever they join", async () => {
    const jobId = (await enqueue(alice, { type: "waits" })).data.enqueueJob.job.id;
    const query = `subscription($id: ID!) { jobProgress(jobId: $id) { status stage } }`;
    const clients = [wsClient(conveyor, alice), wsClient(conveyor, alice), wsClient(conveyor, alice)];
    const early = [collect(clients[0]!, query, { id: jobId }), collect(clients[1]!, query, { id: jobId })];
    await eventually(async () => (await conveyor.jobs.find(jobId))?.stage === "waiting");
    await eventually(() => early.every((stream) => stream.events.some((event) => (event.data as any).jobProgress.stage === "waiting")));
    // A late joiner starts from the current state.
    const late = collect(clients[2]!, query, { id: jobId });
    await eventually(() => late.events.length >= 1);
    expect((late.events[0]!.data as any).jobProgress).toEqual({ status: "PROCESSING", stage: "waiting" });
    // One subscriber leaving does not end the others.
    early[0]!.stop();
    await graphql(conveyor, `mutation($id: ID!) { cancelJob(id: $id) { outcome } }`, { id: jobId }, { token: alice });
    for (const stream of [early[1]!, late]) {
      const { events, error } = await stream.done;
      expect(error).toBeUndefined();
      expect((events.at(-1)!.data as any).jobProgress.status).toBe("CANCELLED");
    }
    await Promise.all(clients.map((client) => client.dispose()));
  });

  it("ends a subscription whose stream fails with a masked error event, keeping the socket and its other subscriptions", async () => {
    const failing = (await enqueue(alice, { type: "quick", runAt: new Date(Date.now() + 3_600_000).toISOString() })).data.enqueueJob.job.id;
    const healthy = (await enqueue(alice, { type: "waits" })).data.enqueueJob.job.id;
    await eventually(async () => (await conveyor.jobs.find(healthy))?.stage === "waiting");
    const events = conveyor.services.events;
    const listen = events.listen.bind(events);
    (events as any).listen = (topic: string, listener: (payload: unknown) => void) => {
      if (topic === `job:changed:${failing}`) throw new Error("redis connection lost at 10.0.0.5");
      return listen(topic, listener);
    };
    const client = wsClient(conveyor, alice);
    try {
      const broken = collect(client, `subscription($id: ID!) { jobProgress(jobId: $id) { status } }`, { id: failing });
      const alive = collect(client, `subscription($id: ID!) { jobProgress(jobId: $id) { status stage } }`, { id: healthy });
      const { error } = await broken.done;
      const errors = error as { message: string; extensions?: { code?: string } }[];
      expect(errors[0]).toMatchObject({ message: "Unexpected error.", extensions: { code: "INTERNAL_SERVER_ERROR" } });
      expect(JSON.stringify(errors)).not.toContain("10.0.0.5");
      await eventually(() => alive.events.length >= 1);
      await graphql(conveyor, `mutation($id: ID!) { cancelJob(id: $id) { outcome } }`, { id: healthy }, { token: alice });
      const { events } = await alive.done;
      expect((events.at(-1)!.data as any).jobProgress.status).toBe("CANCELLED");
    } finally {
      (events as any).listen = listen;
      await client.dispose();
    }
  });

  it("streams a subscription over SSE", async () => {
    const jobId = (await enqueue(alice, { type: "quick" })).data.enqueueJob.job.id;
    const response = await fetch(`${conveyor.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "text/event-stream", authorization: `Bearer ${alice}` },
      body: JSON.stringify({ query: `subscription($id: ID!) { jobProgress(jobId: $id) { status } }`, variables: { id: jobId } }),
    });
    expect(response.headers.get("content-type")).toMatch(/text\/event-stream/);
    const text = await response.text();
    const data = text.split("\n").filter((line) => line.startsWith("data: ") && line.length > 6).map((line) => JSON.parse(line.slice(6)));
    expect(data.at(-1)).toEqual({ data: { jobProgress: { status: "COMPLETED" } } });
    expect(text).toContain("event: complete");
  });

  it("closes a WebSocket whose token is invalid with 4403, and answers UNAUTHENTICATED over HTTP", async () => {
    const socket = new WebSocket(`${conveyor.url!.replace("http", "ws")}/graphql`, "graphql-transport-ws");
    await new Promise((resolve) => socket.once("open", resolve));
    socket.send(JSON.stringify({ type: "connection_init", payload: { authorization: "Bearer not-a-token" } }));
    const code = await new Promise<number>((resolve) => socket.once("close", (closeCode: number) => resolve(closeCode)));
    expect(code).toBe(4403);
    const http = await graphql(conveyor, `{ me { id } }`, {}, { token: "not-a-token" });
    expect(http.errors?.[0]?.extensions?.code).toBe("UNAUTHENTICATED");
    const me = await graphql(conveyor, `{ me { id role } }`, {}, { token: olga });
    expect(me.data.me).toEqual({ id: "olga", role: "OPERATOR" });
  });

  it("lets operators clean up and recover stalled jobs, and nobody else", async () => {
    const cleanup = await graphql(conveyor, `mutation { cleanupJobs(olderThanSeconds: 0) { deleted } }`, {}, { token: olga });
    expect(cleanup.data.cleanupJobs.deleted).toBeGreaterThan(0);
    const recover = await graphql(conveyor, `mutation { recoverStalledJobs { recovered jobIds } }`, {}, { token: olga });
    expect(recover.data.recoverStalledJobs.recovered).toBe(0);
    for (const mutation of ["cleanupJobs(olderThanSeconds: 0) { deleted }", "recoverStalledJobs { recovered }"]) {
      const response = await graphql(conveyor, `mutation { ${mutation} }`, {}, { token: alice });
      expect(response.errors?.[0]?.extensions?.code).toBe("FORBIDDEN");
    }
  });
});
