import { describe, expect, it } from "vitest";
import { createEventBus } from "../../src/events/event-bus.js";
import { readEagerly } from "../../src/graphql/eager-reader.js";

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe("reading a bus subscription eagerly", () => {
  it("keeps a slow subscriber from backing up the bus: 5,000 events published in one burst to a subscriber that has not read yet, nothing thrown anywhere", async () => {
    const bus = createEventBus();
    // Read through pubsub.subscribe, the bus's queue for this subscriber overflows at 1,024 events
    // and the overflow is thrown where events are published, in the engine: one completion batch's
    // changes, published in one go, were enough. Read through a listener: nothing in between.
    const eager = readEagerly<number>((listener) => bus.listen("jobs:deleted", listener), { limit: 100_000, tooSlow: "too slow" });
    const first = eager.next();
    await tick();
    for (let i = 0; i < 5000; i++) bus.publishJobsDeleted(i);
    await tick();
    expect((await first).value).toBe(0);
    const rest: number[] = [];
    for (let i = 1; i < 5000; i++) rest.push((await eager.next()).value as number);
    expect(rest.at(-1)).toBe(4999);
    await eager.return?.(undefined);
    // Leaving removes the listener.
    expect(bus.listenerCount("jobs:deleted")).toBe(0);
    await bus.close();
  });

  it("folds waiting states into the latest one, and ends a subscriber that falls past the limit with SUBSCRIBER_TOO_SLOW", async () => {
    const bus = createEventBus();
    const subscribe = (listener: (value: number) => void) => bus.listen("jobs:deleted", listener);
    const latest = readEagerly(subscribe, { limit: 5, merge: (_waiting, value) => value, tooSlow: "too slow" });
    const first = latest.next();
    await tick();
    bus.publishJobsDeleted(0);
    expect((await first).value).toBe(0);
    // The client has not asked for the next value yet: 999 changes wait as one, the latest.
    for (let i = 1; i < 1000; i++) bus.publishJobsDeleted(i);
    await tick();
    expect((await latest.next()).value).toBe(999);
    await latest.return?.(undefined);

    const bounded = readEagerly(subscribe, { limit: 5, tooSlow: "fell behind" });
    const pending = bounded.next();
    await tick();
    for (let i = 0; i < 50; i++) bus.publishJobsDeleted(i);
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
    expect(bus.listenerCount("jobs:deleted")).toBe(0);
    await bus.close();
  });

  it("answers reads made before any value in the order they were made, and ends every one still waiting when the reader is left", async () => {
    let listener: ((value: number) => void) | null = null;
    const values = readEagerly<number>((added) => ((listener = added), () => (listener = null)), { limit: 10, tooSlow: "too slow" });
    // An AsyncIterator may be read ahead: a shared stream's pump and a leaving subscriber's last read.
    const first = values.next();
    const second = values.next();
    await tick();
    listener!(1);
    listener!(2);
    expect(await Promise.all([first, second])).toEqual([
      { value: 1, done: false },
      { value: 2, done: false },
    ]);
    const waiting = [values.next(), values.next()];
    await values.return?.(undefined);
    expect(await Promise.all(waiting)).toEqual([
      { value: undefined, done: true },
      { value: undefined, done: true },
    ]);
    expect(listener).toBeNull();
  });
});
