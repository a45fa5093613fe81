import { Repeater } from "@graphql-yoga/subscription";
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

interface Shared {
  /** A state stream: a follower starts with the latest result. A change stream: with the next one. */
  replay: boolean;
  /** Followers: every subscriber after the first. */
  listeners: Set<(result: ExecutionResult) => void>;
  closers: Set<(error?: unknown) => void>;
  latest: ExecutionResult | null;
  source: AsyncIterator<ExecutionResult> | null;
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
    const shared: Shared = { replay, listeners: new Set(), closers: new Set(), latest: null, source: null, leaderPresent: replay, pumping: false, ended: false };
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
    const source = shared.source!;
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
          const next = await source.next();
          if (next.done) {
            shared.leaderPresent = false;
            this.end(key, shared);
          } else {
            this.broadcast(shared, next.value);
          }
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

  private follow(key: string, shared: Shared): Results {
    return new Repeater<ExecutionResult>(async (push, stop) => {
      // All in one synchronous step: the latest result is queued first and the listener and closer
      // are in place before anything else can be broadcast or end the stream. (Awaiting the push
      // waited for the client to take it, and whatever came meanwhile, the end included, was lost.)
      if (shared.latest) void push(shared.latest);
      const listener = (result: ExecutionResult) => void push(result);
      shared.listeners.add(listener);
      shared.closers.add(stop);
      // A follower's executor runs on its first read, which may come after the stream ended.
      if (shared.ended) stop(shared.endError);
      await stop;
      shared.listeners.delete(listener);
      shared.closers.delete(stop);
      await this.releaseIfUnread(key, shared);
    });
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
      { limit: FOLLOWER_BACKLOG, tooSlow: `This subscriber fell more than ${FOLLOWER_BACKLOG} results behind; jobUpdateBatches follows any rate` },
    );
  }

  private async pump(key: string, shared: Shared): Promise<void> {
    shared.pumping = true;
    try {
      while (!shared.ended) {
        const next = await shared.source!.next();
        if (next.done) break;
        this.broadcast(shared, next.value);
      }
      this.end(key, shared);
    } catch (error) {
      this.end(key, shared, error);
    }
  }

  private broadcast(shared: Shared, result: ExecutionResult): void {
    shared.latest = result;
    for (const listener of shared.listeners) listener(result);
  }

  private end(key: string, shared: Shared, error?: unknown): void {
    shared.ended = true;
    shared.endError = error;
    if (this.streams.get(key) === shared) this.streams.delete(key);
    for (const close of [...shared.closers]) close(error);
  }

  /** Stops the execution once nobody reads it any more. */
  private async releaseIfUnread(key: string, shared: Shared): Promise<void> {
    if (shared.listeners.size === 0 && !shared.leaderPresent && !shared.ended) await this.release(key, shared);
  }

  private async release(key: string, shared: Shared): Promise<void> {
    this.end(key, shared);
    await shared.source?.return?.();
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
