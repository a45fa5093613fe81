import { Repeater } from "@graphql-yoga/subscription";
import { apiError } from "./errors.js";

/**
 * Takes events as they are published and hands them to the client at the client's pace.
 * `subscribe` registers a listener (EventBus.listen) and returns what removes it; its `end` ends
 * the stream (with an error, the stream fails once what was waiting is delivered). Events land in
 * this reader's own backlog synchronously, so no queue in between can overflow where the event is
 * published (in the engine, or in a cross-instance bus's listener). The backlog is bounded: `merge`
 * may fold a value into the last one still waiting (a state stream keeps only the latest state),
 * and past `limit` waiting values the subscription ends with SUBSCRIBER_TOO_SLOW.
 */
export function readEagerly<T>(
  subscribe: (listener: (value: T) => void, end: (error?: unknown) => void) => () => void,
  options: { limit: number; keep?: (value: T) => boolean; merge?: (waiting: T, value: T) => T | null; tooSlow: string },
): AsyncIterableIterator<T> {
  return new Repeater<T>(async (push, stop) => {
    const waiting: T[] = [];
    let wake: (() => void) | null = null;
    let ended = false;
    let failure: unknown = null;
    const end = (error?: unknown) => {
      if (ended) return;
      failure = error ?? null;
      ended = true;
      wake?.();
    };
    const unsubscribe = subscribe((value) => {
      if (ended || (options.keep && !options.keep(value))) return;
      const last = waiting.length > 0 ? waiting[waiting.length - 1]! : undefined;
      const merged = last !== undefined && options.merge ? options.merge(last, value) : null;
      if (merged !== null) waiting[waiting.length - 1] = merged;
      else waiting.push(value);
      if (waiting.length > options.limit) end(apiError("SUBSCRIBER_TOO_SLOW", options.tooSlow));
      else wake?.();
    }, end);
    void stop.then(() => end());
    try {
      for (;;) {
        while (waiting.length > 0) await push(waiting.shift()!);
        if (ended) {
          if (failure) throw failure;
          return;
        }
        await new Promise<void>((resolve) => (wake = resolve));
        wake = null;
      }
    } finally {
      ended = true;
      unsubscribe();
    }
  });
}
