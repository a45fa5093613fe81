import { Repeater } from "@graphql-yoga/subscription";
import { getOperationAST, type ExecutionArgs, type ExecutionResult } from "graphql";
import type { GraphQLContext } from "../graphql/context.js";

type Results = AsyncIterable<ExecutionResult>;
type Outcome = Results | ExecutionResult;

/**
 * Subscriptions whose every event is the full current state of one thing, so that a newcomer
 * shown the latest event has missed nothing.
 */
const SHAREABLE_FIELDS = new Set(["jobProgress", "queueHealthChanged"]);

interface Shared {
  listeners: Set<(result: ExecutionResult) => void>;
  closers: Set<() => void>;
  latest: ExecutionResult | null;
  source: AsyncIterator<ExecutionResult> | null;
}

/**
 * Runs identical subscriptions once. Many clients often follow one job (a team watching an import,
 * several tabs): subscriptions with the same document, variables, caller and language share one
 * execution per event instead of one each. A newcomer first receives the latest result, which for
 * these state-like subscriptions is the current state, then every later one.
 */
export class SharedSubscriptions {
  private readonly streams = new Map<string, Shared>();

  async subscribe(args: ExecutionArgs, run: () => Promise<Outcome> | Outcome): Promise<Outcome> {
    const key = sharingKey(args);
    if (!key) return run();
    const existing = this.streams.get(key);
    if (existing) return this.join(key, existing);
    const shared: Shared = { listeners: new Set(), closers: new Set(), latest: null, source: null };
    this.streams.set(key, shared);
    let outcome: Outcome;
    try {
      outcome = await run();
    } catch (error) {
      this.streams.delete(key);
      throw error;
    }
    if (!isAsyncIterable(outcome)) {
      // Refused or failed at subscribe time: nothing to share; later callers try for themselves.
      this.streams.delete(key);
      for (const listener of shared.listeners) listener(outcome);
      for (const close of [...shared.closers]) close();
      return outcome;
    }
    shared.source = outcome[Symbol.asyncIterator]();
    void this.pump(key, shared);
    return this.join(key, shared);
  }

  private join(key: string, shared: Shared): Results {
    return new Repeater<ExecutionResult>(async (push, stop) => {
      if (shared.latest) await push(shared.latest);
      const listener = (result: ExecutionResult) => void push(result);
      shared.listeners.add(listener);
      shared.closers.add(stop);
      await stop;
      shared.listeners.delete(listener);
      shared.closers.delete(stop);
      if (shared.listeners.size === 0 && this.streams.get(key) === shared) {
        this.streams.delete(key);
        await shared.source?.return?.();
      }
    });
  }

  private async pump(key: string, shared: Shared): Promise<void> {
    let failure: unknown = null;
    try {
      for (;;) {
        const next = await shared.source!.next();
        if (next.done) break;
        shared.latest = next.value;
        for (const listener of shared.listeners) listener(next.value);
      }
    } catch (error) {
      failure = error;
    } finally {
      if (this.streams.get(key) === shared) this.streams.delete(key);
      for (const close of [...shared.closers]) (close as (error?: unknown) => void)(failure ?? undefined);
    }
  }
}

function sharingKey(args: ExecutionArgs): string | null {
  const operation = getOperationAST(args.document, args.operationName);
  const selections = operation?.selectionSet.selections ?? [];
  const [field] = selections;
  if (operation?.operation !== "subscription" || selections.length !== 1 || field?.kind !== "Field") return null;
  if (!SHAREABLE_FIELDS.has(field.name.value)) return null;
  const context = args.contextValue as GraphQLContext;
  if (!context.viewer) return null;
  return JSON.stringify([
    context.viewer.id,
    context.viewer.role,
    context.locale,
    args.operationName ?? null,
    args.variableValues ?? null,
    args.document.loc?.source.body ?? null,
  ]);
}

function isAsyncIterable(value: unknown): value is Results {
  return typeof (value as Results | null)?.[Symbol.asyncIterator] === "function";
}
