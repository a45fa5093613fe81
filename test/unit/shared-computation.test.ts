import { describe, expect, it } from "vitest";
import { SharedComputation } from "../../src/jobs/shared-computation.js";

describe("shared computation", () => {
  it("computes once for concurrent callers and serves the result until it is stale", async () => {
    let now = 0;
    let calls = 0;
    let release = (_value: number) => {};
    const shared = new SharedComputation(() => new Promise<number>((resolve) => ((calls++, (release = resolve)))), 1000, () => now);
    const first = Promise.all([shared.get(), shared.get(), shared.get()]);
    release(1);
    expect(await first).toEqual([1, 1, 1]);
    expect(calls).toBe(1);
    now = 999;
    expect(await shared.get()).toBe(1);
    expect(calls).toBe(1);
    now = 1000;
    // Stale: served at once while one refresh runs.
    expect(await shared.get()).toBe(1);
    expect(await shared.get()).toBe(1);
    expect(calls).toBe(2);
    release(2);
    await new Promise((resolve) => setImmediate(resolve));
    expect(await shared.get()).toBe(2);
  });

  it("keeps the stale value when a refresh fails, and computes every time with a ttl of 0", async () => {
    let now = 0;
    let fail = false;
    let calls = 0;
    const shared = new SharedComputation(async () => (calls++, fail ? Promise.reject(new Error("db down")) : calls), 10, () => now);
    expect(await shared.get()).toBe(1);
    fail = true;
    now = 20;
    expect(await shared.get()).toBe(1);
    await new Promise((resolve) => setImmediate(resolve));
    fail = false;
    expect(await shared.get()).toBe(1);
    const uncached = new SharedComputation(async () => ++calls, 0);
    expect(await uncached.get()).not.toBe(await uncached.get());
  });
});
