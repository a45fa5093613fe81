import { GraphQLError } from "graphql";
import type { Logger } from "../logger.js";

/** Expected API errors pass through; anything else is logged and replaced by a masked one. */
export function maskStreamError(error: unknown, logger: Logger): unknown {
  if (error instanceof GraphQLError && error.extensions?.code) return error;
  logger.error({ err: error }, "subscription stream failed");
  return new GraphQLError("Unexpected error.", { extensions: { code: "INTERNAL_SERVER_ERROR" } });
}

/**
 * Ends a subscription with a safe error event when its source fails, so no internal message reaches
 * the client and the socket and the process stay up. Not an async generator: a generator's
 * return() waits for its pending read (the next event, which may never come), while this one ends
 * the source at once when the client leaves.
 */
export function guardStream<T>(source: AsyncIterable<T>, logger: Logger): AsyncIterableIterator<T> {
  const iterator = source[Symbol.asyncIterator]();
  return {
    [Symbol.asyncIterator]() {
      return this;
    },
    next: () =>
      iterator.next().catch((error: unknown) => {
        throw maskStreamError(error, logger);
      }),
    return: (value?: unknown) => iterator.return?.(value) ?? Promise.resolve({ done: true, value: undefined }),
    throw: (error?: unknown) => iterator.throw?.(error) ?? Promise.reject(error),
  };
}

export function isAsyncIterable<T = unknown>(value: unknown): value is AsyncIterable<T> {
  return typeof (value as AsyncIterable<unknown> | null)?.[Symbol.asyncIterator] === "function";
}
