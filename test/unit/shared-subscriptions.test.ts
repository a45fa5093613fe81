import { Repeater } from "@graphql-yoga/subscription";
import { parse, type ExecutionArgs, type ExecutionResult } from "graphql";
import { describe, expect, it } from "vitest";
import { readEagerly } from "../../src/graphql/eager-reader.js";
import { SharedSubscriptions } from "../../src/server/shared-subscriptions.js";

const document = parse(`subscription { jobProgress(jobId: "job-1") { status progress } }`);
const args = (): ExecutionArgs => ({
  schema: undefined as never,
  document,
  contextValue: { viewer: { id: "alice", role: "user" }, locale: "en", cache: new Map() },
});
const event = (status: string, progress: number): ExecutionResult => ({ data: { jobProgress: { status, progress } } });
const progressOf = (result: ExecutionResult) => (result.data as { jobProgress: { status: string; progress: number } }).jobProgress;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * graphql's subscribe over published values: each mapped through `execute`, which takes a moment;
 * `publish` receives the function that publishes. An `execute` answering null ends the stream.
 */
function executedSource<T>(publish: (to: (value: T) => void) => void, execute: (value: T) => Promise<ExecutionResult | null>): AsyncIterableIterator<ExecutionResult> {
  const source = readEagerly<T>((listener) => (publish(listener), () => publish(() => {})), { limit: 100, tooSlow: "too slow" });
  const mapped: AsyncIterableIterator<ExecutionResult> = {
    async next() {
      const next = await source.next();
      const result = next.done ? null : await execute(next.value);
      return result ? { value: result, done: false } : { value: undefined, done: true };
    },
    return: () => source.return!() as Promise<IteratorResult<ExecutionResult>>,
    [Symbol.asyncIterator]: () => mapped,
  };
  return mapped;
}

/** Reads to the end like graphql-ws does: the next read only once the last result is sent. */
async function consume(results: AsyncIterable<ExecutionResult>, pause: () => Promise<unknown>): Promise<ExecutionResult[]> {
  const seen: ExecutionResult[] = [];
  for await (const result of results) {
    seen.push(result);
    await pause();
  }
  return seen;
}

describe("shared subscriptions", () => {
  it("item 19: followers joining at random moments while events fire each see every later event, end on the terminal one and complete", async () => {
    const EVENTS = 40;
    const FOLLOWERS = 200;
    for (let round = 0; round < 5; round++) {
      const shared = new SharedSubscriptions();
      let runs = 0;
      // The job's events fire at their own pace, like pub/sub; a subscriber that starts after the
      // end gets the final state alone, like the snapshot of a finished job.
      const run = () =>
        runs++ === 0
          ? new Repeater<ExecutionResult>(async (push, stop) => {
              for (let progress = 1; progress < EVENTS; progress++) {
                void push(event("PROCESSING", progress));
                await new Promise(setImmediate);
              }
              void push(event("COMPLETED", EVENTS));
              stop();
            })
          : new Repeater<ExecutionResult>((push, stop) => {
              void push(event("COMPLETED", EVENTS));
              stop();
            });
      // Followers join at chosen points of the leader's progress, most of them near the end,
      // where a follower still taking in its first result is the case that used to lose the end.
      let reached = 0;
      const waiting: { at: number; join: () => void }[] = [];
      const advance = (progress: number) => {
        reached = progress;
        for (const waiter of waiting.filter((item) => item.at <= reached)) {
          waiting.splice(waiting.indexOf(waiter), 1);
          waiter.join();
        }
      };
      const leaderResults = (await shared.subscribe(args(), run)) as AsyncIterable<ExecutionResult>;
      const leader = (async () => {
        const seen: ExecutionResult[] = [];
        for await (const result of leaderResults) {
          seen.push(result);
          advance(progressOf(result).progress);
          await new Promise(setImmediate);
        }
        advance(EVENTS + 1);
        return seen;
      })();
      const followers = Array.from({ length: FOLLOWERS }, async (_, index) => {
        const at = index % 4 === 0 ? 1 + Math.floor(Math.random() * (EVENTS + 1)) : EVENTS - Math.floor(Math.random() * 4);
        await new Promise<void>((join) => (at <= reached ? join() : waiting.push({ at, join })));
        const results = (await shared.subscribe(args(), run)) as AsyncIterable<ExecutionResult>;
        const seen = consume(results, () => (Math.random() < 0.3 ? new Promise(setImmediate) : sleep(Math.random() * 4)));
        return Promise.race([seen, sleep(3000).then(() => "never completed" as const)]);
      });
      const outcomes = await Promise.all(followers);
      expect((await leader).map((result) => progressOf(result).progress)).toEqual(Array.from({ length: EVENTS }, (_, index) => index + 1));
      const hung = outcomes.filter((outcome) => outcome === "never completed").length;
      const seen = outcomes.filter((outcome): outcome is ExecutionResult[] => outcome !== "never completed");
      const withoutTerminal = seen.filter((results) => progressOf(results.at(-1)!).status !== "COMPLETED").length;
      // From whatever it joins on, a follower misses nothing: consecutive progress to the end.
      const withGaps = seen.filter((results) => results.some((result, index) => index > 0 && progressOf(result).progress !== progressOf(results[index - 1]!).progress + 1)).length;
      expect({ round, hung, withoutTerminal, withGaps }).toEqual({ round, hung: 0, withoutTerminal: 0, withGaps: 0 });
    }
  });

  it("shares operators' change streams from the moment each joins, never with a user, and ends a follower that falls behind", async () => {
    const updates = parse(`subscription { jobUpdates { jobId status } }`);
    const as = (id: string, role: string): ExecutionArgs => ({ schema: undefined as never, document: updates, contextValue: { viewer: { id, role }, locale: "en", cache: new Map() } });
    const change = (n: number): ExecutionResult => ({ data: { jobUpdates: { jobId: `job-${n}`, status: "QUEUED" } } });
    const numberOf = (result: ExecutionResult) => Number((result.data as { jobUpdates: { jobId: string } }).jobUpdates.jobId.slice(4));
    const shared = new SharedSubscriptions();
    let push: (result: ExecutionResult) => void = () => {};
    let runs = 0;
    const run = () => {
      runs++;
      return new Repeater<ExecutionResult>(async (next, stop) => {
        push = (result) => void next(result);
        await stop;
      });
    };
    const leader = ((await shared.subscribe(as("olga", "operator"), run)) as AsyncIterable<ExecutionResult>)[Symbol.asyncIterator]();
    const first = leader.next();
    await new Promise(setImmediate);
    push(change(1));
    expect(numberOf((await first).value)).toBe(1);
    // Another operator joins: one execution for both, and change 1 is not replayed to it.
    const follower = ((await shared.subscribe(as("oscar", "operator"), run)) as AsyncIterable<ExecutionResult>)[Symbol.asyncIterator]();
    const followed = follower.next();
    await new Promise(setImmediate);
    push(change(2));
    expect(numberOf((await leader.next()).value)).toBe(2);
    expect(numberOf((await followed).value)).toBe(2);
    expect(runs).toBe(1);
    // A user never joins an operators' stream: its own run is refused by the field's checks.
    await shared.subscribe(as("alice", "user"), () => ({ errors: [] }));
    expect(runs).toBe(1);
    // The follower stops reading while 10,001 more changes come: it ends with SUBSCRIBER_TOO_SLOW
    // after what it had waiting; the first subscriber is neither held up nor ended with it.
    for (let n = 3; n <= 10_003; n++) {
      push(change(n));
      expect(numberOf((await leader.next()).value)).toBe(n);
    }
    const outcome = await (async () => {
      try {
        for (;;) if ((await follower.next()).done) return "completed";
      } catch (error) {
        return (error as { extensions?: { code?: string } }).extensions?.code;
      }
    })();
    expect(outcome).toBe("SUBSCRIBER_TOO_SLOW");
    push(change(10_004));
    expect(numberOf((await leader.next()).value)).toBe(10_004);
    await leader.return?.(undefined);
  });

  it("keeps the followers going when the first subscriber leaves while its result is being executed and its loop reads once more", async () => {
    let publish: (value: number) => void = () => {};
    const run = () =>
      executedSource<number>(
        (to) => (publish = to),
        async (value) => {
          await sleep(20);
          return event("PROCESSING", value);
        },
      );
    const shared = new SharedSubscriptions();
    const first = ((await shared.subscribe(args(), run)) as AsyncIterable<ExecutionResult>)[Symbol.asyncIterator]();
    const follower = ((await shared.subscribe(args(), run)) as AsyncIterable<ExecutionResult>)[Symbol.asyncIterator]();
    const seen: number[] = [];
    void (async () => {
      for (let next = await follower.next(); !next.done; next = await follower.next()) seen.push(progressOf(next.value).progress);
    })();
    const firstRead = first.next();
    await sleep(5);
    publish(1);
    await sleep(5);
    // The client completes while value 1 is being executed for it: the shared stream's pump takes over.
    await first.return!();
    await firstRead;
    // graphql-ws's loop for it reads once more, then waits on its socket and never reads again.
    void first.next();
    await sleep(5);
    for (let value = 2; value <= 5; value++) {
      publish(value);
      await sleep(40);
    }
    expect(seen).toEqual([1, 2, 3, 4, 5]);
    await follower.return!();
  });

  it("reads the execution once at a time when the first subscriber leaves during a read: the followers get every result in order, the last one before the end", async () => {
    let publish: (value: number | "end") => void = () => {};
    let inFlight = 0;
    let mostInFlight = 0;
    // A job's events: the first result takes longer to execute than the next, and the stream ends
    // after the final state.
    const run = () => {
      const mapped = executedSource<number | "end">(
        (to) => (publish = to),
        async (value) => {
          if (value === "end") return null;
          await sleep(value === 1 ? 40 : 1);
          return event(value === 2 ? "COMPLETED" : "PROCESSING", value);
        },
      );
      const next = mapped.next.bind(mapped);
      mapped.next = async () => {
        mostInFlight = Math.max(mostInFlight, ++inFlight);
        try {
          return await next();
        } finally {
          inFlight--;
        }
      };
      return mapped;
    };
    const shared = new SharedSubscriptions();
    const first = ((await shared.subscribe(args(), run)) as AsyncIterable<ExecutionResult>)[Symbol.asyncIterator]();
    const follower = ((await shared.subscribe(args(), run)) as AsyncIterable<ExecutionResult>)[Symbol.asyncIterator]();
    const followed = consume({ [Symbol.asyncIterator]: () => follower }, () => Promise.resolve());
    const firstRead = first.next();
    await sleep(5);
    publish(1);
    await sleep(5);
    // It leaves while result 1 is executed for it; the final state and the end follow at once.
    await first.return!();
    publish(2);
    publish("end");
    await firstRead;
    const seen = await Promise.race([followed, sleep(2000).then(() => "never completed" as const)]);
    expect(seen === "never completed" ? seen : seen.map((result) => `${progressOf(result).status} ${progressOf(result).progress}`)).toEqual(["PROCESSING 1", "COMPLETED 2"]);
    expect(mostInFlight).toBe(1);
  });

  it("keeps a state stream going for everyone when one follower stops reading: that follower later gets what it kept and the newest result, then the end", async () => {
    let push: (result: ExecutionResult) => void = () => {};
    let finish: () => void = () => {};
    const run = () =>
      new Repeater<ExecutionResult>(async (next, stop) => {
        push = (result) => void next(result);
        finish = () => stop();
        await stop;
      });
    const shared = new SharedSubscriptions();
    const first = ((await shared.subscribe(args(), run)) as AsyncIterable<ExecutionResult>)[Symbol.asyncIterator]();
    const idle = ((await shared.subscribe(args(), run)) as AsyncIterable<ExecutionResult>)[Symbol.asyncIterator]();
    const firstRead = first.next();
    await new Promise(setImmediate);
    push(event("PROCESSING", 0));
    expect(progressOf((await firstRead).value).progress).toBe(0);
    // Its first read starts it: from the latest result on, then it reads no more while 5,000 come.
    expect(progressOf((await idle.next()).value).progress).toBe(0);
    for (let progress = 1; progress <= 5000; progress++) {
      push(event(progress === 5000 ? "COMPLETED" : "PROCESSING", progress));
      expect(progressOf((await first.next()).value).progress).toBe(progress);
    }
    finish();
    expect((await first.next()).done).toBe(true);
    const rest: number[] = [];
    for (let next = await idle.next(); !next.done; next = await idle.next()) rest.push(progressOf(next.value).progress);
    expect(rest.length).toBe(1000);
    expect(rest.slice(0, 3)).toEqual([1, 2, 3]);
    expect(rest.at(-1)).toBe(5000);
  });

  it("ends an operators' change stream left before its first read (its socket closed while it started)", async () => {
    const updates = parse(`subscription { jobUpdates { jobId status } }`);
    const olga: ExecutionArgs = { schema: undefined as never, document: updates, contextValue: { viewer: { id: "olga", role: "operator" }, locale: "en", cache: new Map() } };
    let runs = 0;
    let returned = 0;
    const run = () => {
      runs++;
      const source: AsyncIterableIterator<ExecutionResult> = {
        next: () => new Promise<IteratorResult<ExecutionResult>>(() => {}),
        return: async () => {
          returned++;
          return { done: true, value: undefined };
        },
        [Symbol.asyncIterator]: () => source,
      };
      return source;
    };
    const shared = new SharedSubscriptions();
    const left = ((await shared.subscribe(olga, run)) as AsyncIterable<ExecutionResult>)[Symbol.asyncIterator]();
    await left.return!();
    expect(returned).toBe(1);
    // The next operator starts an execution of its own rather than follow the abandoned one.
    await shared.subscribe(olga, run);
    expect(runs).toBe(2);
  });

  it("ends the execution (its listener) when the shared stream fails, not only when everyone leaves", async () => {
    let returned = 0;
    const run = () => {
      const failing: AsyncIterableIterator<ExecutionResult> = {
        next: () => Promise.reject(new Error("the source failed")),
        return: async () => {
          returned++;
          return { done: true, value: undefined };
        },
        [Symbol.asyncIterator]: () => failing,
      };
      return failing;
    };
    const shared = new SharedSubscriptions();
    const first = ((await shared.subscribe(args(), run)) as AsyncIterable<ExecutionResult>)[Symbol.asyncIterator]();
    const follower = ((await shared.subscribe(args(), run)) as AsyncIterable<ExecutionResult>)[Symbol.asyncIterator]();
    const followerEnd = follower.next().then(
      () => "completed",
      (error: Error) => error.message,
    );
    await expect(first.next()).rejects.toThrow("the source failed");
    expect(await followerEnd).toBe("the source failed");
    expect(returned).toBe(1);
  });
});
