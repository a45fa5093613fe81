import {
  createSourceEventStream,
  getOperationAST,
  getVariableValues,
  GraphQLError,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  type GraphQLSchema,
  type OperationDefinitionNode,
} from "graphql";
import { compileQuery, isCompiledQuery, type CompiledQuery } from "graphql-jit";
import type { Plugin } from "graphql-yoga";
import { isAsyncIterable } from "./streams.js";

/**
 * Executes each event of a subscription with code compiled once per document (graphql-jit), instead
 * of walking the document again for every event. With 10,000 users each watching their own job,
 * every progress event is one execution per subscriber, and no two can share one (each viewer is
 * different): the executor's walk was 12 % of the server's CPU (bench/subscription-fanout.ts,
 * SHAPE=watched, CPU profile), more than anything of Conveyor's own.
 *
 * Only the events: setting the subscription up (its variables, the field's subscribe resolver and
 * the refusals it throws) is graphql-js's createSourceEventStream, as the executor does it. A
 * subscription goes to the executor whole when its variables do not coerce, when its document is
 * new or cannot be compiled, or when it has an abort signal (the executor ends its stream on abort).
 * graphql-jit's own subscribe passes the variables where the field's arguments belong, so it is
 * not used.
 */
export function useCompiledSubscriptionEvents(): Plugin {
  // Per operation: compiled (null: it cannot be), or SEEN_ONCE. A document is compiled when a second
  // subscription uses it, so that documents used once (a client sending a new one each time) cost
  // no compilation (0.2 to 0.6 ms each) and hold no compiled code, while one that thousands of
  // subscribers share is compiled once. Documents are yoga's parsed ones, which its parse cache
  // reuses for the same text; what is kept here goes with them.
  const compiled = new WeakMap<GraphQLSchema, WeakMap<DocumentNode, Map<string | undefined, CompiledQuery | null | typeof SEEN_ONCE>>>();
  const compiledFor = (args: ExecutionArgs): CompiledQuery | null => {
    let documents = compiled.get(args.schema);
    if (!documents) compiled.set(args.schema, (documents = new WeakMap()));
    let operations = documents.get(args.document);
    if (!operations) documents.set(args.document, (operations = new Map()));
    const name = args.operationName ?? undefined;
    const known = operations.get(name);
    if (known === undefined) {
      operations.set(name, SEEN_ONCE);
      return null;
    }
    if (known !== SEEN_ONCE) return known;
    const result = compileQuery(args.schema, args.document, name);
    const query = isCompiledQuery(result) ? result : null;
    operations.set(name, query);
    return query;
  };

  return {
    onSubscribe({ subscribeFn, setSubscribeFn }) {
      setSubscribeFn(async (args: ExecutionArgs) => {
        const operation = getOperationAST(args.document, args.operationName);
        const query = operation?.operation === "subscription" && !("signal" in args && args.signal) ? compiledFor(args) : null;
        if (!query || !operation || "errors" in getVariableValues(args.schema, operation.variableDefinitions ?? [], args.variableValues ?? {})) {
          return subscribeFn(args);
        }
        const stream = await createSourceEventStream(args);
        if (!isAsyncIterable(stream)) return stream;
        return eachExecuted(stream, operation, (event) => query.query(event, args.contextValue, args.variableValues));
      });
    },
  };
}

const SEEN_ONCE = Symbol("seen once");

/**
 * The source's events, each executed. Not an async generator: its return() would wait for the
 * pending read (the next event, which may never come), while this one ends the source at once.
 * A failing source fails as the executor fails it: with an error located at the operation.
 */
function eachExecuted(
  source: AsyncIterable<unknown>,
  operation: OperationDefinitionNode,
  execute: (event: unknown) => ExecutionResult | Promise<ExecutionResult>,
): AsyncIterableIterator<ExecutionResult> {
  const iterator = source[Symbol.asyncIterator]();
  const executed = async (step: IteratorResult<unknown>): Promise<IteratorResult<ExecutionResult>> =>
    step.done ? { done: true, value: undefined } : { done: false, value: await execute(step.value) };
  return {
    [Symbol.asyncIterator]() {
      return this;
    },
    next: () =>
      iterator.next().then(executed, (error: unknown) => {
        const cause = error instanceof Error ? error : new Error(String(error));
        throw new GraphQLError(cause.message, { originalError: cause, nodes: [operation] });
      }),
    return: async () => {
      await iterator.return?.();
      return { done: true, value: undefined };
    },
    throw: async (error: unknown) => {
      if (iterator.throw) return executed(await iterator.throw(error));
      throw error;
    },
  };
}
