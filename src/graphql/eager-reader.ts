import { apiError } from "./errors.js";

export interface EagerReadOptions<T> {
  /** Values waiting past this many end the stream with SUBSCRIBER_TOO_SLOW, or with `whenFull: "replaceLast"` replace the last one waiting. */
  limit: number;
  keep?: (value: T) => boolean;
  /** Folds `value` into the last one still waiting, or answers null to queue it. */
  merge?: (waiting: T, value: T) => T | null;
  /** "replaceLast": for streams whose every value is the whole current state, where the newest makes the one before it moot. */
  whenFull?: "end" | "replaceLast";
  /** Called when the reader is left before its first read: `subscribe` never ran, so its cleanup will not either. */
  leftUnstarted?: () => void;
  tooSlow: string;
}

/**
 * Takes events as they are published and hands them to the client at the client's pace.
 * `subscribe` registers a listener (EventBus.listen) and returns what removes it; its `end` ends
 * the stream (with an error, the stream fails once what was waiting is delivered). Events land in
 * this reader's own backlog synchronously, so no queue in between can overflow where the event is
 * published (in the engine, or in a cross-instance bus's listener). The backlog is bounded: `merge`
 * may fold a value into the last one still waiting (a state stream keeps only the latest state),
 * and past `limit` waiting values the subscription ends with SUBSCRIBER_TOO_SLOW. Leaving
 * (`return`) is immediate, even while a read waits, and removes the listener.
 */
export function readEagerly<T>(
  subscribe: (listener: (value: T) => void, end: (error?: unknown) => void) => () => void,
  options: EagerReadOptions<T>,
): AsyncIterableIterator<T> {
  return new EagerReader(subscribe, options);
}

/**
 * A plain iterator rather than a Repeater: every event of every subscription passes through here,
 * and in a profile of 10,000 watched jobs the Repeaters' promises were the server's largest cost
 * after its system calls and garbage collection.
 */
class EagerReader<T> implements AsyncIterableIterator<T> {
  private readonly waiting: T[] = [];
  /** Reads made while nothing was waiting, answered in the order they were made. */
  private readonly readers: { resolve: (result: IteratorResult<T>) => void; reject: (error: unknown) => void }[] = [];
  private ended = false;
  /** The error the stream fails with, once what was waiting is delivered; taken by the read that throws it. */
  private failure: unknown = null;
  private unsubscribe: (() => void) | null = null;
  private started = false;

  constructor(
    private readonly subscribe: (listener: (value: T) => void, end: (error?: unknown) => void) => () => void,
    private readonly options: EagerReadOptions<T>,
  ) {}

  [Symbol.asyncIterator](): this {
    return this;
  }

  next(): Promise<IteratorResult<T>> {
    if (!this.started) this.start();
    if (this.waiting.length > 0) return Promise.resolve({ value: this.waiting.shift()!, done: false });
    if (this.ended) return this.settled();
    return new Promise((resolve, reject) => void this.readers.push({ resolve, reject }));
  }

  return(): Promise<IteratorResult<T>> {
    if (!this.started) this.options.leftUnstarted?.();
    this.started = true;
    this.waiting.length = 0;
    this.failure = null;
    this.end();
    return Promise.resolve({ value: undefined, done: true });
  }

  throw(error?: unknown): Promise<IteratorResult<T>> {
    void this.return();
    return Promise.reject(error);
  }

  /** Listening starts with the first read, as a Repeater's would; a listener that cannot be added fails that read. */
  private start(): void {
    this.started = true;
    let unsubscribe: () => void;
    try {
      unsubscribe = this.subscribe(
        (value) => this.offer(value),
        (error) => this.end(error),
      );
    } catch (error) {
      this.end(error);
      return;
    }
    // It may have ended while subscribing.
    if (this.ended) unsubscribe();
    else this.unsubscribe = unsubscribe;
  }

  private offer(value: T): void {
    if (this.ended || (this.options.keep && !this.options.keep(value))) return;
    const reader = this.readers.shift();
    if (reader) {
      reader.resolve({ value, done: false });
      return;
    }
    const last = this.waiting.length > 0 ? this.waiting[this.waiting.length - 1]! : undefined;
    if (this.waiting.length >= this.options.limit && this.options.whenFull === "replaceLast") {
      this.waiting[this.waiting.length - 1] = value;
      return;
    }
    const merged = last !== undefined && this.options.merge ? this.options.merge(last, value) : null;
    if (merged !== null) this.waiting[this.waiting.length - 1] = merged;
    else this.waiting.push(value);
    if (this.waiting.length > this.options.limit) this.end(apiError("SUBSCRIBER_TOO_SLOW", this.options.tooSlow));
  }

  private end(error?: unknown): void {
    if (this.ended) return;
    this.ended = true;
    this.failure = error ?? null;
    const unsubscribe = this.unsubscribe;
    this.unsubscribe = null;
    unsubscribe?.();
    // Reads wait only while no value does: the first gets the error, if any, the others the end.
    for (const reader of this.readers.splice(0)) this.settled().then(reader.resolve, reader.reject);
  }

  private settled(): Promise<IteratorResult<T>> {
    const failure = this.failure;
    this.failure = null;
    return failure ? Promise.reject(failure) : Promise.resolve({ value: undefined, done: true });
  }
}
