import type { Plugin } from "graphql-yoga";
import { GraphQLError, type ExecutionResult } from "graphql";
import type { GraphQLContext } from "../graphql/context.js";
import { isAsyncIterable } from "../graphql/streams.js";
import { callAt } from "./timer-at.js";

/**
 * Ends a subscription over HTTP (SSE) when the token it was started with expires: one last event
 * carrying UNAUTHENTICATED, then complete. A request's token is checked once, as it arrives, and a
 * stream would otherwise outlive it, however long it stays open. WebSockets close with 4401 at
 * expiry instead (graphql-app.ts, closeAtExpiry); their context carries no expiry, so this leaves
 * them alone.
 */
export function useEndStreamsAtTokenExpiry(): Plugin<GraphQLContext> {
  return {
    onSubscribe({ args }) {
      const expiresAt = (args.contextValue.viewer as { expiresAt?: number } | null)?.expiresAt;
      if (expiresAt === undefined) return;
      return {
        onSubscribeResult({ result, setResult }) {
          if (isAsyncIterable<ExecutionResult>(result)) setResult(endingAt(result, expiresAt * 1000));
        },
      };
    },
  };
}

function endingAt(source: AsyncIterable<ExecutionResult>, expiresAtMs: number): AsyncIterableIterator<ExecutionResult> {
  const iterator = source[Symbol.asyncIterator]();
  const expiredEvent = (): IteratorResult<ExecutionResult> => ({
    done: false,
    value: { errors: [new GraphQLError("The token has expired", { extensions: { code: "UNAUTHENTICATED" } })] },
  });
  let finished = false;
  let expired = false;
  // The caller of a next() that waits for the source, woken with the expiry event if it comes first.
  let waiting: ((step: IteratorResult<ExecutionResult>) => void) | null = null;
  const finish = () => {
    finished = true;
    cancelExpiry();
    // Not awaited: a next() of the source may be pending, and its return() could wait for it.
    void Promise.resolve(iterator.return?.()).catch(() => {});
  };
  const cancelExpiry = callAt(expiresAtMs, () => {
    expired = true;
    if (!waiting) return;
    const wake = waiting;
    waiting = null;
    finish();
    wake(expiredEvent());
  });
  return {
    [Symbol.asyncIterator]() {
      return this;
    },
    next() {
      if (finished) return Promise.resolve({ done: true, value: undefined });
      if (expired) {
        finish();
        return Promise.resolve(expiredEvent());
      }
      return new Promise((resolve, reject) => {
        waiting = resolve;
        iterator.next().then(
          (step) => {
            if (waiting !== resolve) return;
            waiting = null;
            if (step.done) {
              finished = true;
              cancelExpiry();
            }
            resolve(step);
          },
          (error: unknown) => {
            if (waiting !== resolve) return;
            waiting = null;
            finished = true;
            cancelExpiry();
            reject(error);
          },
        );
      });
    },
    async return() {
      if (!finished) finish();
      return { done: true, value: undefined };
    },
    async throw(error: unknown) {
      if (!finished) finish();
      throw error;
    },
  };
}
