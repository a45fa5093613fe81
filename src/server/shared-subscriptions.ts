import { getOperationAST, type ExecutionArgs, type ExecutionResult, type GraphQLError } from "graphql";
import type { GraphQLContext } from "../graphql/context.js";
import { readEagerly } from "../graphql/eager-reader.js";
import { isAsyncIterable } from "../graphql/streams.js";

type Results = AsyncIterable<ExecutionResult>;
type Outcome = Results | ExecutionResult;

/** A subscription refused when it started; `errors` are the result's errors, to send as they are. */
export class SubscriptionRefused extends Error {
  override name = "SubscriptionRefused";
  constructor(readonly errors: readonly GraphQLError[]) {
    super(errors[0]?.message ?? "Subscription refused");
  }
}

/**
 * Subscriptions whose every event is the full current state of one thing, so that a newcomer
 * shown the latest event has missed nothing.
 */
const SHAREABLE_FIELDS = new Set(["jobProgress", "queueHealthChanged"]);

/**
 * Operator-only streams of changes (not states), shared by every operator with the same document,
 * variables and language: an operator sees every job, so the results do not depend on which one
 * asks, and only an operator can share (a follower skips the field's own checks). A newcomer gets
 * the changes from its arrival on, never an earlier one. Ten dashboards then cost one execution
 * and one serialization per change or batch, not ten.
 */
const OPERATOR_CHANGE_STREAMS = new Set(["jobUpdates", "jobUpdateBatches"]);

/** Results kept for a follower of a change stream that reads slower than they come; then it ends. */
const FOLLOWER_BACKLOG = 10_000;
/** Results kept for a follower of a state stream; past them the newest replaces the last one waiting. */
const FOLLOWER_STATE_BACKLOG = 1000;

interface Shared {
  /** A state stream: a follower starts with the latest result. A change stream: with the next one. */
  replay: boolean;
  /** Followers: every subscriber after the first. */
  listeners: Set<(result: ExecutionResult) => void>;
  closers: Set<(error?: unknown) => void>;
  latest: ExecutionResult | null;
  source: AsyncIterator<ExecutionResult> | null;
  /**
   * The read of the source in flight, or the last one, settled. Reads go one at a time (see read):
   * a pump that took over while the first subscriber's read was pending read beside it, and the
   * two executions could finish in either order, or the second find the end and close the
   * followers before the first delivered the final state.
   */
  reading: Promise<unknown>;
  /** source.return() was called: once, whoever ends the stream. */
  returned: boolean;
  /**
   * The first subscriber of a state stream reads the source itself while it stays; then a pump takes
   * over. A change stream is pumped from its first read, each subscriber a follower with a backlog of
   * its own, so that one slow dashboard never holds up or ends the others.
   */
  leaderPresent: boolean;
  pumping: boolean;
  ended: boolean;
  /** Why it ended, when it failed: a follower that starts late ends the same way. */
  endError?: unknown;
}

/**
 * Runs identical subscriptions once. Many clients often follow one job (a team watching an import,
 * several tabs): subscriptions with the same document, variables, caller and language share one
 * execution per event instead of one each. The first subscriber reads the execution directly, so a
 * subscription nobody shares costs nothing extra; later ones first receive the latest result, which
 * for these state-like subscriptions is the current state, then every later one. Operators' change
 * streams are shared too (OPERATOR_CHANGE_STREAMS), without the replay.
 */
export class SharedSubscriptions {
  private readonly streams = new Map<string, Shared>();

  async subscribe(args: ExecutionArgs, run: () => Promise<Outcome> | Outcome): Promise<Outcome> {
    const sharing = sharingOf(args);
    if (!sharing) return run();
    const { key, replay } = sharing;
    const existing = this.streams.get(key);
    if (existing) return existing.replay ? this.follow(key, existing) : this.followChanges(key, existing);
    const shared: Shared = {
      replay,
      listeners: new Set(),
      closers: new Set(),
      latest: null,
      source: null,
      reading: Promise.resolve(),
      returned: false,
      leaderPresent: replay,
      pumping: false,
      ended: false,
    };
    this.streams.set(key, shared);
    let outcome: Outcome;
    try {
      outcome = await run();
    } catch (error) {
      this.end(key, shared, error);
      throw error;
    }
    if (!isAsyncIterable(outcome)) {
      // Refused or failed at subscribe time: whoever joined meanwhile gets the same answer.
      if (outcome.errors?.length) this.end(key, shared, new SubscriptionRefused(outcome.errors));
      else {
        for (const listener of shared.listeners) listener(outcome);
        this.end(key, shared);
      }
      return outcome;
    }
    shared.source = outcome[Symbol.asyncIterator]();
    if (replay) return this.lead(key, shared);
    // Others who joined while it started are already reading.
    if (shared.listeners.size > 0 && !shared.pumping) void this.pump(key, shared);
    return this.followChanges(key, shared);
  }

  /**
   * The first subscriber's stream: the execution itself, with each result also handed to the
   * followers. A plain iterator rather than a generator, so that it adds no hop per event.
   */
  private lead(key: string, shared: Shared): Results {
    const leave = async (error?: unknown): Promise<void> => {
      if (!shared.leaderPresent) return;
      shared.leaderPresent = false;
      if (shared.ended) return;
      if (error !== undefined) this.end(key, shared, error);
      // Keep reading for the others, or stop if nobody is left.
      else if (shared.listeners.size > 0) void this.pump(key, shared);
      else await this.release(key, shared);
    };
    const iterator: AsyncIterableIterator<ExecutionResult> = {
      next: async () => {
        // Gone already (its execution was still running when it left): the others' reader took over.
        if (!shared.leaderPresent) return { done: true, value: undefined };
        try {
          const next = await this.read(key, shared);
          if (next.done) shared.leaderPresent = false;
          return next;
        } catch (error) {
          await leave(error);
          throw error;
        }
      },
      return: async () => {
        await leave();
        return { done: true, value: undefined };
      },
      [Symbol.asyncIterator]: () => iterator,
    };
    return iterator;
  }

  /**
   * A state stream's later subscriber: the latest result, then every later one. Each is the whole
   * current state, so one that falls FOLLOWER_STATE_BACKLOG results behind has the last of them
   * replaced by the newest rather than its stream ended: a Repeater's queue here overflowed past
   * 1,024 waiting results, and its error ended the stream for every subscriber.
   */
  private follow(key: string, shared: Shared): Results {
    return readEagerly<ExecutionResult>(
      (listener, end) => {
        // All in one synchronous step: the latest result waits first, and the listener and closer
        // are in place before anything else can be broadcast or end the stream.
        if (shared.latest) listener(shared.latest);
        shared.listeners.add(listener);
        shared.closers.add(end);
        // A follower starts listening on its first read, which may come after the stream ended.
        if (shared.ended) end(shared.endError);
        return () => {
          shared.listeners.delete(listener);
          shared.closers.delete(end);
          void this.releaseIfUnread(key, shared);
        };
      },
      { limit: FOLLOWER_STATE_BACKLOG, whenFull: "replaceLast", leftUnstarted: () => void this.releaseIfUnread(key, shared), tooSlow: "never: the last result waiting is replaced" },
    );
  }

  /** A change stream's subscriber: every result from now on, in a backlog of its own, bounded. */
  private followChanges(key: string, shared: Shared): Results {
    return readEagerly<ExecutionResult>(
      (listener, end) => {
        shared.listeners.add(listener);
        shared.closers.add(end);
        if (shared.ended) end(shared.endError);
        else if (!shared.pumping && shared.source) void this.pump(key, shared);
        return () => {
          shared.listeners.delete(listener);
          shared.closers.delete(end);
          void this.releaseIfUnread(key, shared);
        };
      },
      {
        limit: FOLLOWER_BACKLOG,
        // Left before its first read (its socket closed while it started): the stream may have
        // nobody left, and nobody else would stop it.
        leftUnstarted: () => void this.releaseIfUnread(key, shared),
        tooSlow: `This subscriber fell more than ${FOLLOWER_BACKLOG} results behind; jobUpdateBatches follows any rate`,
      },
    );
  }

  private async pump(key: string, shared: Shared): Promise<void> {
    shared.pumping = true;
    try {
      while (!shared.ended) if ((await this.read(key, shared)).done) break;
    } catch {
      // read() ended the stream with the error.
    }
  }

  /**
   * The next result of the source, handed to every follower, after any read in flight (see
   * `reading`); the end, or a failure, ends the stream.
   */
  private read(key: string, shared: Shared): Promise<IteratorResult<ExecutionResult>> {
    const reading = shared.reading.then(async (): Promise<IteratorResult<ExecutionResult>> => {
      if (shared.ended) return { done: true, value: undefined };
      try {
        const next = await shared.source!.next();
        if (next.done) this.end(key, shared);
        else this.broadcast(shared, next.value);
        return next;
      } catch (error) {
        this.end(key, shared, error);
        throw error;
      }
    });
    shared.reading = reading.catch(() => undefined);
    return reading;
  }

  private broadcast(shared: Shared, result: ExecutionResult): void {
    shared.latest = result;
    for (const listener of shared.listeners) listener(result);
  }

  /** Ends the stream for everyone, and the execution with it (its listener, its registration). */
  private end(key: string, shared: Shared, error?: unknown): Promise<void> {
    if (!shared.ended) {
      shared.ended = true;
      shared.endError = error;
    }
    if (this.streams.get(key) === shared) this.streams.delete(key);
    for (const close of [...shared.closers]) close(error);
    return this.returnSource(shared);
  }

  private async returnSource(shared: Shared): Promise<void> {
    if (shared.returned || !shared.source) return;
    shared.returned = true;
    await Promise.resolve(shared.source.return?.()).catch(() => undefined);
  }

  /** Stops the execution once nobody reads it any more. */
  private async releaseIfUnread(key: string, shared: Shared): Promise<void> {
    if (shared.listeners.size === 0 && !shared.leaderPresent && !shared.ended) await this.release(key, shared);
  }

  private async release(key: string, shared: Shared): Promise<void> {
    await this.end(key, shared);
  }
}

function sharingOf(args: ExecutionArgs): { key: string; replay: boolean } | null {
  const operation = getOperationAST(args.document, args.operationName);
  const selections = operation?.selectionSet.selections ?? [];
  const [field] = selections;
  if (operation?.operation !== "subscription" || selections.length !== 1 || field?.kind !== "Field") return null;
  const context = args.contextValue as GraphQLContext;
  if (!context.viewer) return null;
  const name = field.name.value;
  const request = [context.locale, args.operationName ?? null, args.variableValues ?? null, args.document.loc?.source.body ?? null];
  if (SHAREABLE_FIELDS.has(name)) return { key: JSON.stringify([context.viewer.id, context.viewer.role, ...request]), replay: true };
  if (OPERATOR_CHANGE_STREAMS.has(name) && context.viewer.role === "operator") return { key: JSON.stringify(["operators", ...request]), replay: false };
  return null;
}
