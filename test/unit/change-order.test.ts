import { afterEach, describe, expect, it, vi } from "vitest";
import { ChangeOrder } from "../../src/events/change-order.js";
import { createEventBus } from "../../src/events/event-bus.js";
import { jobTopic, type JobChange } from "../../src/events/messages.js";

const JOB = "5f0c7c1e-8f0a-4c61-9a55-0d7b1c3c2a11";

function change(status: JobChange["status"], revision: number, extra: Partial<JobChange> = {}): JobChange {
  return {
    jobId: JOB, type: "quick", owner: "alice", status, previousStatus: null, stage: null, progress: 0,
    bytesDone: null, bytesTotal: null, retryCount: 0, errorCode: null, revision, at: "2026-11-26T12:00:00.000Z", ...extra,
  };
}

/** Two listeners on jobs:changed and one on the job's topic, each recording what it gets. */
function listeners(bus: ReturnType<typeof createEventBus>) {
  const seen = { first: [] as string[], second: [] as string[], ownTopic: [] as string[] };
  const label = (entry: JobChange) => `${entry.status}${entry.stage ? `:${entry.stage}` : ""}`;
  bus.listen<JobChange>("jobs:changed", (entry) => seen.first.push(label(entry)));
  bus.listen<JobChange>("jobs:changed", (entry) => seen.second.push(label(entry)));
  bus.listen<JobChange>(jobTopic(JOB), (entry) => seen.ownTopic.push(label(entry)));
  return seen;
}

describe("the order of one job's changes", () => {
  afterEach(() => vi.useRealTimers());

  it("holds a worker's claim that overtook the job's creation until the creation is delivered, for every listener of every job's changes", async () => {
    const bus = createEventBus();
    const seen = listeners(bus);
    bus.expectCreations([JOB]);
    bus.publishJobChange(change("PROCESSING", 2));
    expect(seen).toEqual({ first: [], second: [], ownTopic: ["PROCESSING"] });
    bus.publishJobChange(change("QUEUED", 1));
    bus.publishJobChange(change("COMPLETED", 3));
    await Promise.resolve();
    expect(seen.first).toEqual(["QUEUED", "PROCESSING", "COMPLETED"]);
    expect(seen.second).toEqual(["QUEUED", "PROCESSING", "COMPLETED"]);
    // Nothing waits on the job's own topic (its subscribers read the job first): the late creation is dropped.
    expect(seen.ownTopic).toEqual(["PROCESSING", "COMPLETED"]);
    await bus.close();
  });

  it("drops a change older than one delivered, keeps every progress report of the attempt", async () => {
    const bus = createEventBus();
    const seen = listeners(bus);
    bus.publishJobChange(change("PROCESSING", 2));
    bus.publishJobChange(change("QUEUED", 1));
    bus.publishJobChange(change("PROCESSING", 2, { stage: "reading", progress: 10 }));
    bus.publishJobChange(change("PROCESSING", 2, { stage: "writing", progress: 60 }));
    bus.publishJobChange(change("COMPLETED", 3));
    bus.publishJobChange(change("PROCESSING", 2, { stage: "late", progress: 70 }));
    for (const stream of Object.values(seen)) expect(stream).toEqual(["PROCESSING", "PROCESSING:reading", "PROCESSING:writing", "COMPLETED"]);
    await bus.close();
  });

  it("lets held changes go when the creation did not happen, or did not arrive within a second of the enqueue", async () => {
    vi.useFakeTimers();
    const bus = createEventBus();
    const seen = listeners(bus);
    bus.expectCreations([JOB]);
    bus.publishJobChange(change("PROCESSING", 2));
    bus.settleCreations([], [JOB]);
    expect(seen.first).toEqual(["PROCESSING"]);

    bus.expectCreations([JOB]);
    // However long the statement takes, the second counts from its end.
    vi.advanceTimersByTime(5_000);
    bus.publishJobChange(change("COMPLETED", 3));
    expect(seen.first).toEqual(["PROCESSING"]);
    bus.settleCreations([JOB], []);
    vi.advanceTimersByTime(999);
    expect(seen.first).toEqual(["PROCESSING"]);
    vi.advanceTimersByTime(1);
    expect(seen.first).toEqual(["PROCESSING", "COMPLETED"]);
    expect(seen.second).toEqual(["PROCESSING", "COMPLETED"]);
    await bus.close();
  });

  it("gives what waited to the listeners present when it is released: one that joined meanwhile gets it, one that left does not", async () => {
    const bus = createEventBus();
    const early: string[] = [];
    const leaving: string[] = [];
    const joining: string[] = [];
    bus.listen<JobChange>("jobs:changed", (entry) => early.push(entry.status));
    const leave = bus.listen<JobChange>("jobs:changed", (entry) => leaving.push(entry.status));
    bus.expectCreations([JOB]);
    bus.publishJobChange(change("PROCESSING", 2));
    leave();
    bus.listen<JobChange>("jobs:changed", (entry) => joining.push(entry.status));
    bus.publishJobChange(change("QUEUED", 1));
    await Promise.resolve();
    expect(early).toEqual(["QUEUED", "PROCESSING"]);
    expect(joining).toEqual(["QUEUED", "PROCESSING"]);
    expect(leaving).toEqual([]);
    await bus.close();
  });

  it("keeps giving what waited to the other listeners when one throws", async () => {
    const order = new ChangeOrder(() => errors++);
    let errors = 0;
    const got: string[] = [];
    const throwing = order.listener("jobs:changed", () => {
      throw new Error("listener failed");
    });
    const quiet = order.listener("jobs:changed", (event) => got.push((event as CustomEvent<JobChange>).detail.status));
    const dispatch = (entry: JobChange) => {
      const event = new CustomEvent("jobs:changed", { detail: entry });
      for (const listener of [throwing, quiet]) {
        try {
          listener.wrapped(event);
        } catch {
          // An EventTarget reports it; here only what waited matters.
        }
      }
    };
    order.expect([JOB]);
    dispatch(change("PROCESSING", 2));
    dispatch(change("QUEUED", 1));
    await Promise.resolve();
    expect(got).toEqual(["QUEUED", "PROCESSING"]);
    expect(errors).toBe(1);
  });

  it("expects nothing when no one follows every job", () => {
    const bus = createEventBus();
    const own: string[] = [];
    bus.listen<JobChange>(jobTopic(JOB), (entry) => own.push(entry.status));
    bus.expectCreations([JOB]);
    bus.publishJobChange(change("PROCESSING", 2));
    expect(own).toEqual(["PROCESSING"]);
  });

  it("remembers a bounded number of jobs", () => {
    const order = new ChangeOrder(() => {}, 2);
    const got: number[] = [];
    const listener = order.listener("jobs:changed", (event) => got.push((event as CustomEvent<JobChange>).detail.revision));
    const send = (jobId: string, revision: number) => listener.wrapped(new CustomEvent("jobs:changed", { detail: { ...change("QUEUED", revision), jobId } }));
    send("a", 5);
    send("a", 4);
    send("b", 1);
    send("c", 1);
    // "a" was forgotten: its stale change now passes, as for any job first heard of.
    send("a", 3);
    expect(got).toEqual([5, 1, 1, 3]);
  });
});
