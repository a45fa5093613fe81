import { describe, expect, it } from "vitest";
import { StatementBatcher } from "../../src/jobs/statement-batcher.js";

const turn = () => new Promise((resolve) => setImmediate(resolve));

/** A statement that answers when told: each call is recorded with what resolves or fails it. */
function statement() {
  const calls: { items: number[]; answer: () => void; fail: (error: Error) => void }[] = [];
  const run = (items: number[]) =>
    new Promise<number[]>((resolve, reject) => {
      calls.push({ items, answer: () => resolve(items.map((item) => item * 10)), fail: reject });
    });
  return { calls, run };
}

describe("StatementBatcher", () => {
  it("sends what arrives in one turn as one statement, each caller getting its own answer", async () => {
    const { calls, run } = statement();
    const batcher = new StatementBatcher(run);
    const answers = Promise.all([1, 2, 3].map((item) => batcher.add(item)));
    await turn();
    expect(calls.map((call) => call.items)).toEqual([[1, 2, 3]]);
    calls[0]!.answer();
    expect(await answers).toEqual([10, 20, 30]);
  });

  it("one at a time (writes): later arrivals wait for the batch in flight, then go together", async () => {
    const { calls, run } = statement();
    const batcher = new StatementBatcher(run);
    const first = batcher.add(1);
    await turn();
    const later = [batcher.add(2), batcher.add(3)];
    await turn();
    await turn();
    expect(calls.map((call) => call.items)).toEqual([[1]]);
    calls[0]!.answer();
    expect(await first).toBe(10);
    await turn();
    expect(calls.map((call) => call.items)).toEqual([[1], [2, 3]]);
    calls[1]!.answer();
    expect(await Promise.all(later)).toEqual([20, 30]);
  });

  it("reads: a statement that hangs holds up only its own items; a failure fails only its own", async () => {
    const { calls, run } = statement();
    const batcher = new StatementBatcher(run, { oneAtATime: false });
    const hung = batcher.add(1);
    await turn();
    const next = batcher.add(2);
    await turn();
    expect(calls.map((call) => call.items)).toEqual([[1], [2]]);
    calls[1]!.answer();
    expect(await next).toBe(20);
    const failing = batcher.add(3);
    await turn();
    calls[2]!.fail(new Error("connection reset"));
    await expect(failing).rejects.toThrow("connection reset");
    calls[0]!.answer();
    expect(await hung).toBe(10);
  });

  it("splits a turn's arrivals into batches of at most maxBatch", async () => {
    const { calls, run } = statement();
    const batcher = new StatementBatcher(run, { maxBatch: 2, oneAtATime: false });
    const answers = Promise.all([1, 2, 3, 4, 5].map((item) => batcher.add(item)));
    await turn();
    expect(calls.map((call) => call.items)).toEqual([[1, 2], [3, 4], [5]]);
    for (const call of calls) call.answer();
    expect(await answers).toEqual([10, 20, 30, 40, 50]);
  });

  it("fails only the item whose data a statement refused, halving the batch until it finds it; any other failure fails them all", async () => {
    const refusedData = Object.assign(new Error("invalid input syntax for type bigint"), { code: "22P02" });
    const sent: number[][] = [];
    const batcher = new StatementBatcher(async (items: number[]) => {
      sent.push(items);
      if (items.includes(3)) throw refusedData;
      return items.map((item) => item * 10);
    });
    const outcomes = await Promise.allSettled([1, 2, 3, 4, 5].map((item) => batcher.add(item)));
    expect(outcomes.map((outcome) => (outcome.status === "fulfilled" ? outcome.value : outcome.reason))).toEqual([10, 20, refusedData, 40, 50]);
    expect(sent).toEqual([[1, 2, 3, 4, 5], [1, 2, 3], [1, 2], [3], [4, 5]]);

    const lost = Object.assign(new Error("terminating connection"), { code: "57P01" });
    sent.length = 0;
    const failing = new StatementBatcher(async (items: number[]) => {
      sent.push(items);
      throw lost;
    });
    const all = await Promise.allSettled([1, 2, 3].map((item) => failing.add(item)));
    expect(all.map((outcome) => outcome.status === "rejected" && outcome.reason)).toEqual([lost, lost, lost]);
    expect(sent).toEqual([[1, 2, 3]]);
  });
});
