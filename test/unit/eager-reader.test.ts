import { createPubSub } from "graphql-yoga";
import { describe, expect, it } from "vitest";
import { readEagerly } from "../../src/graphql/eager-reader.js";

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe("reading a bus subscription eagerly", () => {
  it("keeps a slow subscriber from backing up the bus: 5,000 events to a subscriber that has not read yet, nothing thrown anywhere", async () => {
    const pubsub = createPubSub<{ change: [number] }>();
    // Read at the client's pace (a plain iterator), the bus's queue for this subscriber overflows
    // at 1,024 events and the overflow is thrown where events are dispatched: an error no caller
    // can catch, which vitest reports as unhandled (and which ends a server). Read eagerly: none.
    const eager = readEagerly(pubsub.subscribe("change")[Symbol.asyncIterator](), { limit: 100_000, tooSlow: "too slow" });
    const first = eager.next();
    await tick();
    for (let i = 0; i < 5000; i++) {
      pubsub.publish("change", i);
      if (i % 500 === 0) await tick();
    }
    await tick();
    expect((await first).value).toBe(0);
    const rest: number[] = [];
    for (let i = 1; i < 5000; i++) rest.push((await eager.next()).value as number);
    expect(rest.at(-1)).toBe(4999);
    await eager.return?.(undefined);
  });

  it("folds waiting states into the latest one, and ends a subscriber that falls past the limit with SUBSCRIBER_TOO_SLOW", async () => {
    const pubsub = createPubSub<{ change: [number] }>();
    const latest = readEagerly(pubsub.subscribe("change")[Symbol.asyncIterator](), { limit: 5, merge: (_waiting, value) => value, tooSlow: "too slow" });
    const first = latest.next();
    await tick();
    for (let i = 0; i < 1000; i++) {
      pubsub.publish("change", i);
      if (i % 100 === 0) await tick();
    }
    await tick();
    await first;
    expect((await latest.next()).value).toBe(999);
    await latest.return?.(undefined);

    const bounded = readEagerly(pubsub.subscribe("change")[Symbol.asyncIterator](), { limit: 5, tooSlow: "fell behind" });
    const pending = bounded.next();
    await tick();
    for (let i = 0; i < 50; i++) pubsub.publish("change", i);
    await tick();
    await pending;
    const outcome = await (async () => {
      try {
        for (;;) await bounded.next();
      } catch (error) {
        return error as { message: string; extensions?: { code?: string } };
      }
    })();
    expect(outcome.extensions?.code).toBe("SUBSCRIBER_TOO_SLOW");
    expect(outcome.message).toBe("fell behind");
  });
});
