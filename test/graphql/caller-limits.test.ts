import WebSocket from "ws";
import { afterEach, describe, expect, it } from "vitest";
import { eventually, startTestConveyor, type TestConveyor } from "../support/conveyor.js";
import { collect, tokenFor, wsClient } from "../support/graphql-client.js";
import { completeAssessment, createAssessment, readSse } from "./helpers.js";

const progressOf = (name: string) => `subscription ${name}($id: ID!) { jobProgress(jobId: $id) { status } }`;

let conveyor: TestConveyor | null = null;
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await conveyor?.dispose();
  conveyor = null;
});

/** A job of `owner`'s, waiting (no pool runs here), for subscriptions that stay live. */
async function jobOf(server: TestConveyor, token: string): Promise<string> {
  return completeAssessment(server, token, await createAssessment(server, token));
}

/** An SSE subscription: its first event once it arrives, and an abort that leaves like a closed browser tab. */
function openSse(server: TestConveyor, token: string, query: string, jobId: string): { first: Promise<{ event: string; data: any }>; abort: () => void } {
  const controller = new AbortController();
  const first = (async () => {
    const response = await fetch(`${server.url}/graphql`, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "text/event-stream", authorization: `Bearer ${token}` },
      body: JSON.stringify({ query, variables: { id: jobId } }),
      signal: controller.signal,
    });
    let firstEvent: { event: string; data: any } | undefined;
    await readSse(response, (event) => {
      firstEvent ??= event;
      // The first event tells admitted (the job's state) from refused; the stream stays open until aborted.
      if (event.event === "next" && event.data.data) settle(event);
    }).catch(() => undefined);
    return firstEvent!;
  })();
  let settle: (event: { event: string; data: any }) => void = () => {};
  const admitted = new Promise<{ event: string; data: any }>((resolve) => (settle = resolve));
  return { first: Promise.race([first, admitted]), abort: () => controller.abort() };
}

/** Whether a subscription was admitted (its first event came) or refused (it ended first). */
function admitted(subscription: ReturnType<typeof collect>): Promise<boolean> {
  return new Promise((resolve) => {
    const poll = setInterval(() => {
      if (subscription.events.length === 0) return;
      clearInterval(poll);
      resolve(true);
    }, 10);
    void subscription.done.then(() => {
      clearInterval(poll);
      resolve(subscription.events.length > 0);
    });
  });
}

/** A raw graphql-transport-ws connection: "ack", or the code and reason it was closed with. */
function connect(server: TestConveyor, token?: string): { outcome: Promise<"ack" | { code: number; reason: string }>; close: () => Promise<void> } {
  const socket = new WebSocket(`${server.url!.replace(/^http/, "ws")}/graphql`, "graphql-transport-ws");
  const outcome = new Promise<"ack" | { code: number; reason: string }>((resolve, reject) => {
    socket.once("open", () => socket.send(JSON.stringify({ type: "connection_init", payload: token ? { authorization: `Bearer ${token}` } : {} })));
    socket.on("message", (data) => {
      if (JSON.parse(String(data)).type === "connection_ack") resolve("ack");
    });
    socket.once("close", (code, reason) => resolve({ code, reason: reason.toString() }));
    socket.once("error", reject);
  });
  const close = async () => {
    if (socket.readyState === socket.CLOSED) return;
    const closed = new Promise((resolve) => socket.once("close", resolve));
    socket.close();
    await closed;
  };
  return { outcome, close };
}

describe("live subscriptions per caller (GRAPHQL_MAX_STREAMS_PER_CALLER)", () => {
  it("counts one caller's subscriptions over every WebSocket and SSE together, refuses one more with TOO_MANY_SUBSCRIPTIONS, and takes one again once another ends", async () => {
    const server = (conveyor = await startTestConveyor({ environment: { GRAPHQL_MAX_STREAMS_PER_CALLER: "3" } }));
    const alice = await tokenFor(server, "alice");
    const bob = await tokenFor(server, "bob");
    const jobId = await jobOf(server, alice);
    const [first, second] = [wsClient(server, alice), wsClient(server, alice)];
    cleanups.push(() => first.dispose(), () => second.dispose());
    // Two sockets; the same document on both (shared into one execution) and another one.
    const live = [collect(first, progressOf("Same"), { id: jobId }), collect(second, progressOf("Same"), { id: jobId }), collect(first, progressOf("Other"), { id: jobId })];
    cleanups.push(() => live.forEach((subscription) => subscription.stop()));
    await eventually(() => live.every((subscription) => subscription.events.length > 0));
    expect(live.map((subscription) => subscription.events[0]!.data)).toEqual(Array(3).fill({ jobProgress: { status: "QUEUED" } }));

    const fourth = collect(second, progressOf("Fourth"), { id: jobId });
    live.push(fourth);
    expect(await admitted(fourth)).toBe(false);
    const overWebSocket = await fourth.done;
    expect((overWebSocket.error as { extensions?: { code?: string } }[])[0]?.extensions?.code, JSON.stringify(overWebSocket.error)).toBe("TOO_MANY_SUBSCRIPTIONS");
    const refusedSse = openSse(server, alice, progressOf("OverSse"), jobId);
    const refusal = await refusedSse.first;
    refusedSse.abort();
    expect(refusal.data.errors?.[0]?.extensions?.code, JSON.stringify(refusal)).toBe("TOO_MANY_SUBSCRIPTIONS");
    expect(refusal.data.errors[0].message).toBe("At most 3 live subscriptions per caller on this server: complete one first");

    // Another caller has places of its own.
    const bobs = wsClient(server, bob);
    cleanups.push(() => bobs.dispose());
    const bobJob = await jobOf(server, bob);
    const bobLive = collect(bobs, progressOf("Bob"), { id: bobJob });
    cleanups.push(() => bobLive.stop());
    await eventually(() => bobLive.events.length > 0);
    expect(bobLive.events[0]!.data).toEqual({ jobProgress: { status: "QUEUED" } });

    // A completed subscription gives its place back: an SSE stream is admitted; aborted, it gives it back too.
    live.shift()!.stop();
    const admittedSse = openSse(server, alice, progressOf("Sse"), jobId);
    expect((await admittedSse.first).data).toEqual({ data: { jobProgress: { status: "QUEUED" } } });
    admittedSse.abort();
    // Aborted: the server hears of it when its next write fails or the socket's close arrives.
    const again = await eventually(async () => {
      const attempt = collect(first, progressOf("AfterSseLeft"), { id: jobId }, () => true);
      const { events } = await attempt.done;
      return events.length > 0 ? events : undefined;
    }, 5000);
    expect(again[0]!.data).toEqual({ jobProgress: { status: "QUEUED" } });

    // A closed socket gives back every place it held: two here, with alice at her maximum again.
    const fill = collect(second, progressOf("Fill"), { id: jobId });
    live.push(fill);
    await eventually(() => fill.events.length > 0);
    await second.dispose();
    const probe = wsClient(server, alice);
    cleanups.push(() => probe.dispose());
    const probes = await eventually(async () => {
      const attempts = [collect(probe, progressOf("ProbeA"), { id: jobId }), collect(probe, progressOf("ProbeB"), { id: jobId })];
      if ((await Promise.all(attempts.map(admitted))).every(Boolean)) return attempts;
      for (const attempt of attempts) attempt.stop();
      return undefined;
    }, 5000);
    cleanups.push(() => probes.forEach((attempt) => attempt.stop()));
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/^conveyor_caller_limit_refusals_total\{limit="streams"\} [2-9]/m);
  });
});

describe("places that must come back", () => {
  /** How many of `count` subscriptions alice is admitted to now (each ended afterwards). */
  async function freePlaces(server: TestConveyor, token: string, jobId: string, count: number): Promise<number> {
    const client = wsClient(server, token);
    const attempts = Array.from({ length: count }, (_, index) => collect(client, progressOf(`Probe${index}`), { id: jobId }));
    const outcomes = await Promise.all(attempts.map(admitted));
    for (const attempt of attempts) attempt.stop();
    await client.dispose();
    return outcomes.filter(Boolean).length;
  }

  it("refuses a subscription POSTed without a stream in Accept (406, BAD_REQUEST) before it takes a place or a listener", async () => {
    const server = (conveyor = await startTestConveyor({ environment: { GRAPHQL_MAX_STREAMS_PER_CALLER: "3" } }));
    const alice = await tokenFor(server, "alice");
    const jobId = await jobOf(server, alice);
    const listenersBefore = server.services.events.listenerCount();
    for (let attempt = 0; attempt < 3; attempt++) {
      const response = await fetch(`${server.url}/graphql`, {
        method: "POST",
        headers: { "content-type": "application/json", accept: "application/json", authorization: `Bearer ${alice}` },
        body: JSON.stringify({ query: progressOf("OverJson"), variables: { id: jobId } }),
      });
      expect(response.status).toBe(406);
      expect((await response.json()).errors[0].extensions.code).toBe("BAD_REQUEST");
    }
    expect(server.services.events.listenerCount()).toBe(listenersBefore);
    await eventually(async () => (await freePlaces(server, alice, jobId, 3)) === 3, 5000);
  });

  it("ends, when its socket closes, a subscription whose id the client reused while it was starting", async () => {
    const server = (conveyor = await startTestConveyor({ environment: { GRAPHQL_MAX_STREAMS_PER_CALLER: "3" } }));
    const alice = await tokenFor(server, "alice");
    const jobId = await jobOf(server, alice);
    for (let round = 0; round < 2; round++) {
      const socket = new WebSocket(`${server.url!.replace(/^http/, "ws")}/graphql`, "graphql-transport-ws");
      await new Promise((resolve) => socket.once("open", resolve));
      socket.send(JSON.stringify({ type: "connection_init", payload: { authorization: `Bearer ${alice}` } }));
      await new Promise<void>((resolve) => socket.on("message", (data) => JSON.parse(String(data)).type === "connection_ack" && resolve()));
      // Subscribe, complete and subscribe again with the same id: graphql-ws lets the second in
      // while the first still starts, and then knows of the second alone.
      const subscribe = (name: string) => socket.send(JSON.stringify({ id: "x", type: "subscribe", payload: { query: progressOf(name), variables: { id: jobId } } }));
      subscribe(`First${round}`);
      socket.send(JSON.stringify({ id: "x", type: "complete" }));
      subscribe(`Second${round}`);
      await new Promise((resolve) => setTimeout(resolve, 500));
      const closed = new Promise((resolve) => socket.once("close", resolve));
      socket.close();
      await closed;
    }
    await eventually(async () => (await freePlaces(server, alice, jobId, 3)) === 3, 5000);
    await eventually(() => server.services.events.listenerCount(`job:changed:${jobId}`) === 0, 5000);
  });
});

describe("WebSockets per caller (GRAPHQL_MAX_SOCKETS_PER_CALLER)", () => {
  it("closes one socket more of a caller with 4403 and the reason, counts anonymous sockets per address, and takes one again once another closes", async () => {
    const server = (conveyor = await startTestConveyor({ environment: { GRAPHQL_MAX_SOCKETS_PER_CALLER: "2" } }));
    const alice = await tokenFor(server, "alice");
    const bob = await tokenFor(server, "bob");
    const alices = [connect(server, alice), connect(server, alice)];
    cleanups.push(() => Promise.all(alices.map((socket) => socket.close())));
    expect(await Promise.all(alices.map((socket) => socket.outcome))).toEqual(["ack", "ack"]);
    const third = connect(server, alice);
    expect(await third.outcome).toEqual({ code: 4403, reason: "Too many connections: at most 2 per caller" });
    // Another caller, and the same caller with another token, are counted as callers.
    const bobs = connect(server, bob);
    cleanups.push(() => bobs.close());
    expect(await bobs.outcome).toBe("ack");
    const aliceAgain = connect(server, await tokenFor(server, "alice"));
    expect(await aliceAgain.outcome).toMatchObject({ code: 4403 });

    const anonymous = [connect(server), connect(server)];
    cleanups.push(() => Promise.all(anonymous.map((socket) => socket.close())));
    expect(await Promise.all(anonymous.map((socket) => socket.outcome))).toEqual(["ack", "ack"]);
    expect(await connect(server).outcome).toMatchObject({ code: 4403 });

    await alices.shift()!.close();
    const replacement = await eventually(async () => {
      const attempt = connect(server, alice);
      const outcome = await attempt.outcome;
      if (outcome === "ack") return attempt;
      return undefined;
    }, 5000);
    cleanups.push(() => replacement.close());
    const metrics = await (await fetch(`${server.url}/metrics`)).text();
    expect(metrics).toMatch(/^conveyor_caller_limit_refusals_total\{limit="sockets"\} [3-9]/m);
  });
});
