import { execute as executeWithExecutor } from "@graphql-tools/executor";
import {
  createSourceEventStream,
  getNamedType,
  getOperationAST,
  getVariableValues,
  GraphQLError,
  isObjectType,
  Kind,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  type FragmentDefinitionNode,
  type GraphQLObjectType,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type SelectionSetNode,
} from "graphql";
import { compileQuery, isCompiledQuery, type CompiledQuery } from "graphql-jit";
import type { Plugin } from "graphql-yoga";
import { isAsyncIterable } from "./streams.js";

/** Documents with more fields than this, fragments expanded, are never compiled. */
const MAX_COMPILED_FIELDS = 200;
/** Compiled documents kept; the least recently used goes first. */
const MAX_COMPILED_DOCUMENTS = 64;
/** Accepted subscriptions of one document before it is compiled. */
const COMPILE_AFTER_ACCEPTED = 2;

/**
 * Executes each event of a subscription with code compiled once per document (graphql-jit), instead
 * of walking the document again for every event. With 10,000 users each watching their own job,
 * every progress event is one execution per subscriber, and no two can share one (each viewer is
 * different): the executor's walk was 12 % of the server's CPU (bench/subscription-fanout.ts,
 * SHAPE=watched, CPU profile), more than anything of Conveyor's own.
 *
 * Only the events, and only where the executor's answer cannot differ:
 * - a subscription is set up, checked and refused as before: the executor runs it whole until its
 *   document has been accepted COMPILE_AFTER_ACCEPTED times (a refused one, such as an anonymous
 *   client's, never leads to a compilation), and afterwards graphql-js's createSourceEventStream
 *   sets it up (graphql-jit's own subscribe passes the variables where the field's arguments belong);
 * - an event whose compiled execution reports any error (or throws) is executed again by the
 *   executor, whose answer is sent: graphql-jit's own errors (a null in a non-null field, an enum
 *   value it cannot serialize) carry no original error and no location, so masking would let
 *   their text through, and some of its answers with errors differ from the executor's (a list
 *   with a failed element). Errors are the exception, so this costs nothing in the common case;
 * - documents that reach an abstract type (whose isTypeOf graphql-jit calls without a context) or
 *   more than MAX_COMPILED_FIELDS fields are left to the executor: a large document took a quarter
 *   of a second to compile and kept 15 MB. At most MAX_COMPILED_DOCUMENTS compiled documents are
 *   kept; a subscription with an abort signal is left to the executor too, which ends its stream
 *   on abort.
 */
export function useCompiledSubscriptionEvents(): Plugin {
  // Per document and operation name. Documents are yoga's parsed ones, which its parse cache reuses
  // for the same text: a document gets a number of its own for as long as it lives.
  const documentNumbers = new WeakMap<DocumentNode, number>();
  let nextDocumentNumber = 0;
  const keyOf = (document: DocumentNode, operationName: string | undefined) => {
    let number = documentNumbers.get(document);
    if (number === undefined) documentNumbers.set(document, (number = nextDocumentNumber++));
    return `${number}:${operationName ?? ""}`;
  };
  // Per document, by operation name.
  const accepted = new WeakMap<DocumentNode, Map<string, number>>();
  // Least recently used first; null: the document is not compiled (compilable() said no).
  const compiled = new Map<string, CompiledQuery | null>();

  const compiledFor = (key: string): CompiledQuery | null | undefined => {
    const query = compiled.get(key);
    if (query !== undefined) {
      compiled.delete(key);
      compiled.set(key, query);
    }
    return query;
  };

  const noteAccepted = (args: ExecutionArgs, operation: OperationDefinitionNode, key: string) => {
    let counts = accepted.get(args.document);
    if (!counts) accepted.set(args.document, (counts = new Map()));
    const name = args.operationName ?? "";
    const count = (counts.get(name) ?? 0) + 1;
    counts.set(name, count);
    if (count < COMPILE_AFTER_ACCEPTED) return;
    counts.delete(name);
    const result = compilable(args.schema, args.document, operation) ? compileQuery(args.schema, args.document, args.operationName ?? undefined) : null;
    compiled.set(key, result && isCompiledQuery(result) ? result : null);
    if (compiled.size > MAX_COMPILED_DOCUMENTS) compiled.delete(compiled.keys().next().value!);
  };

  return {
    onSubscribe({ subscribeFn, setSubscribeFn }) {
      setSubscribeFn(async (args: ExecutionArgs) => {
        const operation = getOperationAST(args.document, args.operationName);
        if (operation?.operation !== "subscription" || ("signal" in args && args.signal)) return subscribeFn(args);
        const key = keyOf(args.document, args.operationName ?? undefined);
        const query = compiledFor(key);
        if (!query || "errors" in getVariableValues(args.schema, operation.variableDefinitions ?? [], args.variableValues ?? {})) {
          const result = await subscribeFn(args);
          if (query === undefined && isAsyncIterable(result)) noteAccepted(args, operation, key);
          return result;
        }
        const stream = await createSourceEventStream(args);
        if (!isAsyncIterable(stream)) return stream;
        return eachExecuted(stream, operation, async (event) => {
          const result = await Promise.resolve()
            .then(() => query.query(event, args.contextValue, args.variableValues))
            .catch(() => null);
          return result && !result.errors?.length ? result : ((await executeWithExecutor({ ...args, rootValue: event })) as ExecutionResult);
        });
      });
    },
  };
}

/**
 * Whether graphql-jit may compile the operation: at most MAX_COMPILED_FIELDS fields with its
 * fragments expanded, and no field of an abstract type.
 */
function compilable(schema: GraphQLSchema, document: DocumentNode, operation: OperationDefinitionNode): boolean {
  const fragments = new Map<string, FragmentDefinitionNode>();
  for (const definition of document.definitions) {
    if (definition.kind === Kind.FRAGMENT_DEFINITION) fragments.set(definition.name.value, definition);
  }
  let fields = 0;
  const walk = (type: GraphQLObjectType, selectionSet: SelectionSetNode): boolean => {
    for (const selection of selectionSet.selections) {
      if (selection.kind === Kind.FIELD) {
        if (++fields > MAX_COMPILED_FIELDS) return false;
        if (selection.name.value.startsWith("__")) continue;
        const field = type.getFields()[selection.name.value];
        if (!field) return false;
        const named = getNamedType(field.type);
        // A selection on an interface or union is not followed: not compiled.
        if (selection.selectionSet && !(isObjectType(named) && walk(named, selection.selectionSet))) return false;
      } else {
        const fragment = selection.kind === Kind.INLINE_FRAGMENT ? selection : fragments.get(selection.name.value);
        if (!fragment || !walk(type, fragment.selectionSet)) return false;
      }
    }
    return true;
  };
  const root = schema.getSubscriptionType();
  return root !== null && root !== undefined && walk(root, operation.selectionSet);
}

/**
 * The source's events, each executed. Not an async generator: its return() would wait for the
 * pending read (the next event, which may never come), while this one ends the source at once.
 * A failing source fails as the executor fails it: with an error located at the operation.
 */
function eachExecuted(
  source: AsyncIterable<unknown>,
  operation: OperationDefinitionNode,
  execute: (event: unknown) => Promise<ExecutionResult>,
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
