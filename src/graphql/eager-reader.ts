import { Repeater } from "@graphql-yoga/subscription";
import { apiError } from "./errors.js";

/**
 * Reads an event-bus subscription as fast as events are published and hands them to the client at
 * the client's pace. Read at the client's pace instead, the bus's own queue for that subscriber
 * grows until it overflows, and its overflow is thrown where the event is published: in the engine,
 * or in the listener of a cross-instance bus, where it ends the process. Here the backlog is this
 * reader's alone and bounded: `merge` may fold a value into the last one still waiting (a state
 * stream keeps only the latest state), and past `limit` waiting values the subscription ends with
 * SUBSCRIBER_TOO_SLOW.
 */
export function readEagerly<T>(
  source: AsyncIterator<T>,
  options: { limit: number; keep?: (value: T) => boolean; merge?: (waiting: T, value: T) => T | null; tooSlow: string },
): AsyncIterableIterator<T> {
  return new Repeater<T>(async (push, stop) => {
    const waiting: T[] = [];
    const reading: { wake: (() => void) | null } = { wake: null };
    let ended = false;
    let failure: unknown = null;
    const reader = (async () => {
      try {
        for (;;) {
          const next = await Promise.race([source.next(), stop.then(() => ({ done: true as const, value: undefined }))]);
          if (next.done) return;
          if (options.keep && !options.keep(next.value)) continue;
          const last = waiting.length > 0 ? waiting[waiting.length - 1]! : undefined;
          const merged = last !== undefined && options.merge ? options.merge(last, next.value) : null;
          if (merged !== null) waiting[waiting.length - 1] = merged;
          else waiting.push(next.value);
          if (waiting.length > options.limit) throw apiError("SUBSCRIBER_TOO_SLOW", options.tooSlow);
          reading.wake?.();
        }
      } catch (error) {
        failure = error;
      } finally {
        ended = true;
        reading.wake?.();
      }
    })();
    try {
      for (;;) {
        while (waiting.length > 0) await push(waiting.shift()!);
        if (ended) {
          if (failure) throw failure;
          return;
        }
        await new Promise<void>((resolve) => (reading.wake = resolve));
        reading.wake = null;
      }
    } finally {
      stop();
      try {
        await source.return?.();
      } catch {
        // Already ending; its reads' error, if any, is the one reported.
      }
      await reader;
    }
  });
}
