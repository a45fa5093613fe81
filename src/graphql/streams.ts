import { GraphQLError } from "graphql";
import type { Logger } from "../logger.js";

/**
 * Ends a subscription with a safe error event when its source fails: expected API errors pass
 * through, anything else is logged and replaced, so no internal message reaches the client and
 * the socket and the process stay up.
 */
export async function* guardStream<T>(source: AsyncIterable<T>, logger: Logger): AsyncGenerator<T> {
  try {
    yield* source;
  } catch (error) {
    if (error instanceof GraphQLError && error.extensions?.code) throw error;
    logger.error({ err: error }, "subscription stream failed");
    throw new GraphQLError("Unexpected error.", { extensions: { code: "INTERNAL_SERVER_ERROR" } });
  }
}
