import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JobHandler } from "../../src/handlers/registry.js";
import type { WorkerPool } from "../../src/jobs/worker-pool.js";
import { eventually, startTestConveyor, type TestConveyor } from "../support/conveyor.js";
import { collect, tokenFor, wsClient } from "../support/graphql-client.js";
import { codeOf, completeAssessment, createAssessment, enqueue, errorCodes, gql, ok, PARKED, readSse, startWorkerPool, statusOf, wsClientWith } from "./helpers.js";

const PROGRESS = `subscription($id: ID!) { jobProgress(jobId: $id) { jobId type status previousStatus stage progress retryCount error { category message } } }`;
type Progress = { jobId: string; type: string; status: string; previousStatus: string | null; stage: string | null; progress: number; retryCount: number; error: { category: string; message: string } | null };
const progressOf = (event: { data?: unknown }) => (event.data as { jobProgress: Progress }).jobProgress;

describe("jobProgress for a real assessment job", () => {
  let conveyor: TestConveyor;
  let pool: WorkerPool | null = null;
  beforeAll(async () => {
    // The pool starts only once the subscriber is there, so that it sees the job QUEUED.
    conveyor = await startTestConveyor({ environment: { WORKER_ENABLED: "false" } });
  });
  afterAll(async () => {
    await pool?.stop(1000);
    await conveyor?.dispose();
  });

  it("streams QUEUED → PROCESSING → loading, validating, scoring, finalizing → COMPLETED in order, then ends", async () => {
    const alice = await tokenFor(conveyor, "alice");
    const assessmentId = await createAssessment(conveyor, alice);
    const jobId = await completeAssessment(conveyor, alice, assessmentId);
    const client = wsClient(conveyor, alice);
    try {
      const stream = collect(client, `subscription($id: ID!) { jobProgress(jobId: $id) { jobId type status previousStatus stage progress job { id result } } }`, { id: jobId });
      await eventually(() => stream.events.length >= 1);
      expect(progressOf(stream.events[0]!)).toMatchObject({ jobId, type: "assessment", status: "QUEUED", previousStatus: null, progress: 0 });
      pool = await startWorkerPool(conveyor);
      const { events, error } = await stream.done;
      expect(error).toBeUndefined();
      const steps = events.map((event) => {
        const progress = progressOf(event);
        return `${progress.status}${progress.stage ? `:${progress.stage}` : ""}`;
      });
      expect(steps).toEqual([
        "QUEUED",
        "PROCESSING",
        "PROCESSING:loading",
        "PROCESSING:validating",
        "PROCESSING:scoring",
        "PROCESSING:finalizing",
        "COMPLETED:finalizing",
      ]);
      expect(events.map((event) => progressOf(event).progress)).toEqual([0, 0, 5, 20, 50, 90, 100]);
      expect(events.map((event) => progressOf(event).previousStatus)).toEqual([null, "QUEUED", "PROCESSING", "PROCESSING", "PROCESSING", "PROCESSING", "PROCESSING"]);
      const last = (events.at(-1)!.data as any).jobProgress;
      expect(last.job).toMatchObject({ id: jobId, result: { assessmentId, kind: "skills-check", band: "advanced" } });
    } finally {
      await client.dispose();
    }
  });

  it("gives a late subscriber to a finished job one COMPLETED event, then completes", async () => {
    const alice = await tokenFor(conveyor, "alice");
    pool ??= await startWorkerPool(conveyor);
    const jobId = await completeAssessment(conveyor, alice, await createAssessment(conveyor, alice));
    await eventually(async () => (await statusOf(conveyor, jobId)) === "COMPLETED");
    const client = wsClient(conveyor, alice);
    try {
      const { events, error } = await collect(client, PROGRESS, { id: jobId }).done;
      expect(error).toBeUndefined();
      expect(events).toHaveLength(1);
      expect(progressOf(events[0]!)).toMatchObject({ jobId, status: "COMPLETED", progress: 100, error: null });
    } finally {
      await client.dispose();
    }
  });
});

// Gates that hold a job's first attempt until the test has its subscribers in place.
const gates = new Map<string, () => void>();
const gate = (key: string, signal: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    gates.set(key, resolve);
    signal.addEventListener("abort", () => reject(signal.reason), { once: true });
  });

const handlers: JobHandler<any, any>[] = [
  { type: "quick", run: async (payload) => ({ echo: payload }) },
  {
    // Fails every attempt with an unexpected error (retried); the first waits for its gate.
    type: "flaky",
    async run(payload: { key: string }, context) {
      await context.progress("calling upstream", 10);
      if (context.attempt === 1) await gate(payload.key, context.signal);
      throw new Error("upstream unavailable for jane@example.com");
    },
  },
  {
    type: "slow",
    async run(_payload, context) {
      await context.progress("working", 10);
      await new Promise((_resolve, reject) => {
        if (context.signal.aborted) reject(context.signal.reason);
        context.signal.addEventListener("abort", () => reject(context.signal.reason), { once: true });
      });
    },
  },
];

describe("subscriptions", () => {
  let conveyor: TestConveyor;
  let alice: string;
  let bob: string;
  let olga: string;
  beforeAll(async () => {
    conveyor = await startTestConveyor({
      handlers,
      environment: { WORKER_ENABLED: "true", WORKER_CONCURRENCY: "4", RETRY_INITIAL_DELAY_MS: "50", RETRY_MAX_DELAY_MS: "50", JOB_MAX_ATTEMPTS: "2" },
    });
    [alice, bob, olga] = await Promise.all([tokenFor(conveyor, "alice"), tokenFor(conveyor, "bob"), tokenFor(conveyor, "olga", "operator")]);
  });
  afterAll(() => conveyor?.dispose());

  it("shows a failing job's subscribers RETRYING, then FAILED with the error message in their language", async () => {
    const jobId = await enqueue(conveyor, alice, { type: "flaky", payload: { key: "flaky-1" } });
    await eventually(async () => (await conveyor.jobs.find(jobId))?.stage === "calling upstream");
    const french = wsClientWith(conveyor, { token: alice, params: { locale: "fr" } });
    const german = wsClientWith(conveyor, { token: alice, headers: { "accept-language": "de-AT, de;q=0.9" } });
    const english = wsClientWith(conveyor, { token: alice, headers: { "accept-language": "de" } });
    try {
      const streams = [
        collect(french, PROGRESS, { id: jobId }),
        collect(german, PROGRESS, { id: jobId }),
        // The argument wins over the connection's language.
        collect(english, `subscription($id: ID!) { jobProgress(jobId: $id) { jobId type status previousStatus stage progress retryCount error { category message(locale: EN) } } }`, { id: jobId }),
      ];
      await eventually(() => streams.every((stream) => stream.events.length >= 1));
      for (const stream of streams) expect(progressOf(stream.events[0]!)).toMatchObject({ status: "PROCESSING", stage: "calling upstream", error: null });
      gates.get("flaky-1")!();
      const messages: string[] = [];
      for (const stream of streams) {
        const { events, error } = await stream.done;
        expect(error).toBeUndefined();
        const progress = events.map(progressOf);
        // Consecutive duplicates are stage reports within one status.
        const statuses = progress.map((item) => item.status).filter((status, index, all) => status !== all[index - 1]);
        expect(statuses).toEqual(["PROCESSING", "RETRYING", "PROCESSING", "FAILED"]);
        const retrying = progress.find((item) => item.status === "RETRYING")!;
        expect(retrying).toMatchObject({ previousStatus: "PROCESSING", retryCount: 1, error: { category: "WORKER_ERROR" } });
        expect(progress.filter((item) => item.status === "PROCESSING").every((item) => item.error === null)).toBe(true);
        const failed = progress.at(-1)!;
        expect(failed).toMatchObject({ status: "FAILED", previousStatus: "PROCESSING", retryCount: 1, error: { category: "WORKER_ERROR" } });
        expect(retrying.error!.message).toBe(failed.error!.message);
        expect(JSON.stringify(events)).not.toContain("jane@example.com");
        messages.push(failed.error!.message);
      }
      expect(messages).toEqual([
        "Une erreur inattendue s'est produite pendant le traitement.",
        "Bei der Verarbeitung ist ein unerwarteter Fehler aufgetreten.",
        "An unexpected error occurred while processing.",
      ]);
      expect(await statusOf(conveyor, jobId)).toBe("FAILED");
    } finally {
      await Promise.all([french.dispose(), german.dispose(), english.dispose()]);
    }
  });

  it("refuses another user's job at subscribe time with an error before any event; operators may follow it", async () => {
    const jobId = await enqueue(conveyor, alice, { type: "quick", runAt: PARKED });
    const client = wsClient(conveyor, bob);
    try {
      const refused = await collect(client, PROGRESS, { id: jobId }).done;
      expect(refused.events).toEqual([]);
      expect(errorCodes(refused.error)).toEqual(["FORBIDDEN"]);
      expect((refused.error as { path?: string[] }[])[0]!.path).toEqual(["jobProgress"]);
      const missing = await collect(client, PROGRESS, { id: "00000000-0000-4000-8000-000000000000" }).done;
      expect(missing.events).toEqual([]);
      expect(errorCodes(missing.error)).toEqual(["NOT_FOUND"]);
      const malformed = await collect(client, PROGRESS, { id: "42" }).done;
      expect(errorCodes(malformed.error)).toEqual(["BAD_USER_INPUT"]);
      const noVariable = await collect(client, PROGRESS, {}).done;
      expect(errorCodes(noVariable.error)).toEqual(["BAD_USER_INPUT"]);
      // The socket still serves what bob may see.
      const own = await enqueue(conveyor, bob, { type: "quick" });
      const mine = await collect(client, PROGRESS, { id: own }).done;
      expect(mine.error).toBeUndefined();
      expect(progressOf(mine.events.at(-1)!).status).toBe("COMPLETED");
    } finally {
      await client.dispose();
    }
    const operator = wsClient(conveyor, olga);
    try {
      const watching = collect(operator, PROGRESS, { id: jobId });
      await eventually(() => watching.events.length >= 1);
      expect(progressOf(watching.events[0]!)).toMatchObject({ jobId, status: "QUEUED" });
      ok(await gql(conveyor, `mutation($id: ID!) { cancelJob(id: $id) { outcome } }`, { id: jobId }, { token: olga }));
      const { events, error } = await watching.done;
      expect(error).toBeUndefined();
      expect(progressOf(events.at(-1)!).status).toBe("CANCELLED");
    } finally {
      await operator.dispose();
    }
  });

  it("refuses subscriptions without a token (UNAUTHENTICATED) and operator-only ones to users (FORBIDDEN)", async () => {
    const jobId = await enqueue(conveyor, alice, { type: "quick", runAt: PARKED });
    const anonymous = wsClient(conveyor);
    const user = wsClient(conveyor, alice);
    try {
      for (const query of [PROGRESS, `subscription { jobUpdates { jobId } }`, `subscription { queueHealthChanged { status } }`]) {
        const { events, error } = await collect(anonymous, query, { id: jobId }).done;
        expect(events).toEqual([]);
        expect(errorCodes(error)).toEqual(["UNAUTHENTICATED"]);
      }
      for (const query of [`subscription { jobUpdates { jobId } }`, `subscription { queueHealthChanged { status } }`]) {
        const { events, error } = await collect(user, query).done;
        expect(events).toEqual([]);
        expect(errorCodes(error)).toEqual(["FORBIDDEN"]);
      }
    } finally {
      await Promise.all([anonymous.dispose(), user.dispose()]);
    }
  });

  it("streams every change to operators on jobUpdates, filtered by type, status and owner", async () => {
    const client = wsClient(conveyor, olga);
    try {
      const byType = collect(client, `subscription { jobUpdates(filter: { type: "quick" }) { jobId status type job { owner } } }`);
      const alicesCompletions = collect(client, `subscription { jobUpdates(filter: { status: [COMPLETED], owner: "alice" }) { jobId status type job { owner } } }`);
      // Both are listening once both have seen a marker job of alice's.
      await eventually(
        async () => {
          await enqueue(conveyor, alice, { type: "quick", payload: { marker: true } });
          return byType.events.length > 0 && alicesCompletions.events.length > 0;
        },
        20_000,
        100,
      );
      const target = await enqueue(conveyor, alice, { type: "quick" });
      const bobs = await enqueue(conveyor, bob, { type: "quick" });
      const slow = await enqueue(conveyor, alice, { type: "slow" });
      const updates = (stream: typeof byType) =>
        stream.events.map((event) => {
          const { job, ...update } = (event.data as any).jobUpdates as { jobId: string; status: string; type: string; job: { owner: string } };
          return { ...update, owner: job.owner };
        });
      await eventually(() => [target, bobs].every((id) => updates(byType).some((update) => update.jobId === id && update.status === "COMPLETED")));
      await eventually(() => updates(alicesCompletions).some((update) => update.jobId === target));
      expect(updates(byType).filter((update) => update.jobId === target).map((update) => update.status)).toEqual(["QUEUED", "PROCESSING", "COMPLETED"]);
      expect(updates(byType).filter((update) => update.jobId === bobs).map((update) => update.status)).toEqual(["QUEUED", "PROCESSING", "COMPLETED"]);
      expect(updates(byType).every((update) => update.type === "quick")).toBe(true);
      expect(updates(alicesCompletions).every((update) => update.status === "COMPLETED" && update.owner === "alice")).toBe(true);
      expect(updates(alicesCompletions).filter((update) => update.jobId === target)).toHaveLength(1);
      expect(updates(alicesCompletions).some((update) => update.jobId === bobs)).toBe(false);
      ok(await gql(conveyor, `mutation($id: ID!) { cancelJob(id: $id) { outcome } }`, { id: slow }, { token: alice }));
      await eventually(async () => (await statusOf(conveyor, slow)) === "CANCELLED");
      byType.stop();
      alicesCompletions.stop();
    } finally {
      await client.dispose();
    }
  });

  it("ends a subscription whose stream fails with a masked error, keeping the socket and its other subscriptions", async () => {
    const failing = await enqueue(conveyor, alice, { type: "quick", runAt: PARKED });
    const healthy = await enqueue(conveyor, alice, { type: "slow" });
    await eventually(async () => (await conveyor.jobs.find(healthy))?.stage === "working");
    const bus = conveyor.services.events;
    const listen = bus.listen.bind(bus);
    (bus as any).listen = (topic: string, listener: (payload: unknown) => void) => {
      if (topic === `job:changed:${failing}`) throw Object.assign(new Error("connect ECONNREFUSED 10.0.0.5:6379"), { code: "ECONNREFUSED" });
      return listen(topic, listener);
    };
    const closes: number[] = [];
    const client = wsClientWith(conveyor, { token: alice, onClosed: (code) => closes.push(code) });
    try {
      const alive = collect(client, PROGRESS, { id: healthy });
      await eventually(() => alive.events.length >= 1);
      const broken = await collect(client, PROGRESS, { id: failing }).done;
      // The snapshot comes first; then the failure ends this subscription only.
      expect(broken.events.map((event) => progressOf(event).status)).toEqual(["QUEUED"]);
      expect(broken.error).toEqual([{ message: "Unexpected error.", extensions: { code: "INTERNAL_SERVER_ERROR" } }]);
      expect(JSON.stringify(broken.error)).not.toMatch(/10\.0\.0\.5|ECONNREFUSED|srv/);
      // The socket takes new subscriptions, and the other one on it still gets its events.
      (bus as any).listen = listen;
      const again = await collect(client, PROGRESS, { id: failing }, () => true).done;
      expect(again.error).toBeUndefined();
      expect(again.events.map((event) => progressOf(event).status)).toEqual(["QUEUED"]);
      // One socket throughout: never closed while `alive` was on it.
      expect(closes).toEqual([]);
      ok(await gql(conveyor, `mutation($id: ID!) { cancelJob(id: $id) { outcome } }`, { id: healthy }, { token: alice }));
      const { events, error } = await alive.done;
      expect(error).toBeUndefined();
      expect(progressOf(events.at(-1)!).status).toBe("CANCELLED");
    } finally {
      (bus as any).listen = listen;
      await client.dispose();
    }
  });

  it("streams a subscription over SSE: next events, then complete", async () => {
    const jobId = await enqueue(conveyor, alice, { type: "slow" });
    await eventually(async () => (await conveyor.jobs.find(jobId))?.stage === "working");
    const response = await fetch(`${conveyor.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "text/event-stream", authorization: `Bearer ${alice}`, "accept-language": "fr" },
      body: JSON.stringify({ query: PROGRESS, variables: { id: jobId } }),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get("content-type")).toMatch(/^text\/event-stream/);
    let cancelled: Promise<unknown> | null = null;
    const events = await readSse(response, (_event, index) => {
      // Once the stream is live, cancel the job: the stream must carry that and end.
      if (index === 0) cancelled = gql(conveyor, `mutation($id: ID!) { cancelJob(id: $id) { outcome } }`, { id: jobId }, { token: alice });
    });
    await cancelled;
    expect(events.at(-1)!.event).toBe("complete");
    const nexts = events.filter((event) => event.event === "next").map((event) => event.data.data.jobProgress as Progress);
    expect(nexts[0]).toMatchObject({ jobId, status: "PROCESSING", stage: "working" });
    expect(nexts.at(-1)).toMatchObject({ status: "CANCELLED", error: { category: "CANCELLED", message: "La tâche a été annulée." } });
    expect(events.filter((event) => event.event === "next").every((event) => event.data.errors === undefined)).toBe(true);
  });

  it("refuses another user's job over SSE too", async () => {
    const jobId = await enqueue(conveyor, alice, { type: "quick", runAt: PARKED });
    const response = await fetch(`${conveyor.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "text/event-stream", authorization: `Bearer ${bob}` },
      body: JSON.stringify({ query: PROGRESS, variables: { id: jobId } }),
    });
    const events = await readSse(response);
    expect(events.map((event) => event.event)).toEqual(["next", "complete"]);
    expect(events[0]!.data.data ?? null).toBeNull();
    expect(codeOf(events[0]!.data)).toBe("FORBIDDEN");
  });
});

describe("queueHealthChanged", () => {
  let conveyor: TestConveyor;
  beforeAll(async () => {
    conveyor = await startTestConveyor({ handlers, environment: { WORKER_ENABLED: "false", HEALTH_DEGRADED_QUEUED: "3", HEALTH_BROADCAST_INTERVAL_MS: "50" } });
  });
  afterAll(() => conveyor?.dispose());

  it("starts with the current status and reports each change of status to operators", async () => {
    const olga = await tokenFor(conveyor, "olga", "operator");
    const oscar = await tokenFor(conveyor, "oscar", "operator");
    const query = `subscription { queueHealthChanged { status previousStatus reasons at } }`;
    const client = wsClient(conveyor, olga);
    const late = wsClient(conveyor, oscar);
    try {
      const stream = collect(client, query);
      await eventually(() => stream.events.length >= 1);
      const change = (event: { data?: unknown }) => (event.data as any).queueHealthChanged as { status: string; previousStatus: string | null; reasons: string[] };
      expect(change(stream.events[0]!)).toMatchObject({ status: "HEALTHY", previousStatus: null, reasons: [] });
      // With the pool off, a fourth waiting job crosses the threshold of three.
      const jobs: string[] = [];
      for (let index = 0; index < 4; index++) jobs.push(await enqueue(conveyor, olga, { type: "quick" }));
      await eventually(() => stream.events.length >= 2);
      expect(change(stream.events[1]!)).toMatchObject({ status: "DEGRADED", previousStatus: "HEALTHY", reasons: ["4 jobs waiting (more than 3)"] });
      // A subscriber joining now starts from the current status.
      const joined = collect(late, query);
      await eventually(() => joined.events.length >= 1);
      expect(change(joined.events[0]!)).toMatchObject({ status: "DEGRADED", previousStatus: null });
      for (const id of jobs.slice(0, 2)) ok(await gql(conveyor, `mutation($id: ID!) { cancelJob(id: $id) { outcome } }`, { id }, { token: olga }));
      await eventually(() => stream.events.length >= 3 && joined.events.length >= 2);
      expect(change(stream.events[2]!)).toMatchObject({ status: "HEALTHY", previousStatus: "DEGRADED", reasons: [] });
      expect(change(joined.events[1]!)).toMatchObject({ status: "HEALTHY", previousStatus: "DEGRADED" });
      // Only changes are sent: checks that find it still HEALTHY send nothing, so the next event
      // is the next change.
      await conveyor.services.healthMonitor.tick();
      for (let index = 0; index < 2; index++) jobs.push(await enqueue(conveyor, olga, { type: "quick" }));
      await eventually(() => stream.events.length >= 4);
      expect(change(stream.events[3]!)).toMatchObject({ status: "DEGRADED", previousStatus: "HEALTHY" });
      stream.stop();
      joined.stop();
    } finally {
      await Promise.all([client.dispose(), late.dispose()]);
    }
  });
});
