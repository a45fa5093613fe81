import {
  GraphQLBoolean,
  GraphQLError,
  GraphQLInt,
  GraphQLNonNull,
  GraphQLObjectType,
  GraphQLSchema,
  GraphQLString,
  GraphQLUnionType,
  type ExecutionArgs,
  type ExecutionResult,
} from "graphql";
import { createYoga } from "graphql-yoga";
import { describe, expect, it, vi } from "vitest";
import { useCompiledSubscriptionEvents } from "../../src/graphql/compiled-subscription-events.js";

// Calls of graphql-jit's compileQuery, and of the executor's execute as our fallback for an event
// (yoga's own executor is not this import: node_modules are not transformed).
const { compilations, fallbacks, counting } = vi.hoisted(() => ({
  compilations: { count: 0 },
  fallbacks: { count: 0 },
  /** `call`, counting its calls in `counter`. */
  counting<F extends (...args: never[]) => unknown>(call: F, counter: { count: number }): F {
    return ((...args: Parameters<F>) => {
      counter.count++;
      return call(...args);
    }) as F;
  },
}));
vi.mock("graphql-jit", async (importOriginal) => {
  const original = await importOriginal<typeof import("graphql-jit")>();
  return { ...original, compileQuery: counting(original.compileQuery, compilations) };
});
vi.mock("@graphql-tools/executor", async (importOriginal) => {
  const original = await importOriginal<typeof import("@graphql-tools/executor")>();
  return { ...original, execute: counting(original.execute, fallbacks) };
});

/** Whether the latest source was ended (its return() called). */
let sourceClosed = false;
const Even = new GraphQLObjectType({ name: "Even", fields: { n: { type: GraphQLInt } }, isTypeOf: (value: { n: number }) => value.n % 2 === 0 });
const Odd = new GraphQLObjectType({ name: "Odd", fields: { n: { type: GraphQLInt } }, isTypeOf: (value: { n: number }) => value.n % 2 === 1 });
const Parity = new GraphQLUnionType({ name: "Parity", types: [Even, Odd] });
const Tick = new GraphQLObjectType({
  name: "Tick",
  fields: {
    n: { type: new GraphQLNonNull(GraphQLInt) },
    // A field that fails for one event: its error and the null it leaves, as the executor gives them.
    label: {
      type: GraphQLString,
      resolve: (tick: { n: number }) => (tick.n === 2 ? Promise.reject(new GraphQLError("no label for two", { extensions: { code: "FORBIDDEN" } })) : `tick ${tick.n}`),
    },
    doubled: { type: new GraphQLNonNull(GraphQLInt), args: { by: { type: new GraphQLNonNull(GraphQLInt) } }, resolve: (tick: { n: number }, { by }) => tick.n * by },
    // Null in a non-null field for tick 3: an error graphql-jit makes itself (no original error, no location).
    strict: { type: new GraphQLNonNull(GraphQLInt), resolve: (tick: { n: number }) => (tick.n === 3 ? null : tick.n) },
    // An abstract type, whose isTypeOf graphql-jit would call without a context.
    parity: { type: Parity, resolve: (tick: { n: number }) => ({ n: tick.n }) },
  },
});
const schema = new GraphQLSchema({
  query: new GraphQLObjectType({ name: "Query", fields: { ok: { type: GraphQLBoolean, resolve: () => true } } }),
  subscription: new GraphQLObjectType({
    name: "Subscription",
    fields: {
      ticks: {
        type: Tick,
        args: { upTo: { type: new GraphQLNonNull(GraphQLInt) }, secret: { type: GraphQLBoolean }, breakAt: { type: GraphQLInt } },
        subscribe(_root, { upTo, secret, breakAt }: { upTo: number; secret?: boolean; breakAt?: number }) {
          if (secret) throw new GraphQLError("not yours", { extensions: { code: "FORBIDDEN" } });
          return ticks(upTo, breakAt);
        },
        resolve: (payload: unknown) => payload,
      },
    },
  }),
});

/**
 * Ticks 1 to upTo (failing at breakAt), then nothing until the subscriber leaves. Not an async
 * generator, whose return() would wait for the event it is waiting for: as the server's sources.
 */
function ticks(upTo: number, breakAt?: number): AsyncIterableIterator<{ n: number }> {
  let n = 0;
  let wake: ((step: IteratorResult<{ n: number }>) => void) | null = null;
  sourceClosed = false;
  return {
    [Symbol.asyncIterator]() {
      return this;
    },
    next() {
      n++;
      if (n === breakAt) return Promise.reject(new Error("the source broke"));
      if (n <= upTo) return Promise.resolve({ done: false, value: { n } });
      return new Promise((resolve) => (wake = resolve));
    },
    return() {
      sourceClosed = true;
      wake?.({ done: true, value: undefined });
      return Promise.resolve({ done: true, value: undefined });
    },
  };
}

const DOCUMENT = `subscription Ticks($upTo: Int!, $secret: Boolean, $breakAt: Int, $by: Int!) {
  ticks(upTo: $upTo, secret: $secret, breakAt: $breakAt) { n label doubled(by: $by) }
}`;
const WITH_STRICT = `subscription { ticks(upTo: 3) { n strict } }`;

const yogas = {
  compiled: createYoga({ schema, plugins: [useCompiledSubscriptionEvents()], logging: false }),
  executor: createYoga({ schema, logging: false }),
};

/** A subscription through yoga's enveloped subscribe, with the plugin or without it (the executor's answer). */
async function subscribe(compiled: boolean, variableValues: Record<string, unknown>, document = DOCUMENT) {
  const enveloped = yogas[compiled ? "compiled" : "executor"].getEnveloped({});
  const args: ExecutionArgs = {
    schema: enveloped.schema,
    document: enveloped.parse(document),
    variableValues,
    contextValue: await enveloped.contextFactory(),
  };
  return (await enveloped.subscribe(args)) as AsyncIterableIterator<ExecutionResult> | ExecutionResult;
}

/** Subscriptions enough for the document to be compiled for the ones a test then makes. */
async function warm(document = DOCUMENT): Promise<void> {
  for (let i = 0; i < 2; i++) await take(await subscribe(true, { upTo: 1, by: 1 }, document), 1);
}

/** Up to `count` events, as clients receive them (JSON). */
async function take(result: AsyncIterableIterator<ExecutionResult> | ExecutionResult, count: number): Promise<unknown> {
  if (!(Symbol.asyncIterator in result)) return JSON.parse(JSON.stringify(result));
  const events: unknown[] = [];
  try {
    while (events.length < count) {
      const step = await result.next();
      if (step.done) break;
      events.push(JSON.parse(JSON.stringify(step.value)));
    }
  } catch (error) {
    events.push({ thrown: (error as Error).message, locations: (error as GraphQLError).locations });
  }
  await result.return?.();
  return events;
}

describe("subscription events executed by compiled code", () => {
  it("compiles a document once two subscriptions of it were accepted, and runs the later ones compiled", async () => {
    const variables = { upTo: 3, by: 10 };
    const before = compilations.count;
    const first = await take(await subscribe(true, variables), 3);
    expect(compilations.count - before).toBe(0);
    await take(await subscribe(true, variables), 3);
    expect(compilations.count - before).toBe(1);
    const fallbacksBefore = fallbacks.count;
    const compiled = await take(await subscribe(true, variables), 3);
    expect(compiled).toEqual(first);
    expect(compiled).toEqual(await take(await subscribe(false, variables), 3));
    expect(compiled).toMatchObject([
      { data: { ticks: { n: 1, label: "tick 1", doubled: 10 } } },
      { data: { ticks: { n: 2, label: null, doubled: 20 } }, errors: [{ message: "no label for two", path: ["ticks", "label"], extensions: { code: "FORBIDDEN" } }] },
      { data: { ticks: { n: 3, label: "tick 3", doubled: 30 } } },
    ]);
    // Compiled: only the event with an error was executed again by the executor.
    expect(fallbacks.count - fallbacksBefore).toBe(1);
    // Yoga parses the same text to the same document: still one compilation.
    expect(compilations.count - before).toBe(1);
  });

  // graphql-jit's own error for a null in a non-null field has no original error, so yoga's
  // masking would let its text through, and no location: the executor's answer is sent instead.
  it("sends the executor's answer for an event with errors, masked and located as the executor masks them", async () => {
    await warm(WITH_STRICT);
    const compiled = await take(await subscribe(true, {}, WITH_STRICT), 3);
    expect(compiled).toEqual(await take(await subscribe(false, {}, WITH_STRICT), 3));
    expect(compiled).toMatchObject([
      { data: { ticks: { n: 1, strict: 1 } } },
      { data: { ticks: { n: 2, strict: 2 } } },
      { data: { ticks: null }, errors: [{ message: "Unexpected error.", locations: [{ line: 1, column: 35 }], path: ["ticks", "strict"] }] },
    ]);
  });

  it("compiles nothing for subscriptions it refuses, nor for documents of more than 200 fields or reaching an abstract type", async () => {
    const before = compilations.count;
    const refusedDocument = `subscription Refused($by: Int!) { ticks(upTo: 1, secret: true) { n doubled(by: $by) } }`;
    for (let i = 0; i < 3; i++) expect(await take(await subscribe(true, { by: 1 }, refusedDocument), 1)).toMatchObject({ errors: [{}] });
    const large = `subscription { ticks(upTo: 1) { ${Array.from({ length: 201 }, (_, i) => `n${i}: n`).join(" ")} } }`;
    for (let i = 0; i < 3; i++) expect(await take(await subscribe(true, {}, large), 1)).toMatchObject([{ data: { ticks: { n0: 1, n200: 1 } } }]);
    const abstract = `subscription { ticks(upTo: 2) { n parity { __typename ... on Even { n } } } }`;
    for (let i = 0; i < 3; i++) {
      expect(await take(await subscribe(true, {}, abstract), 2)).toEqual([
        { data: { ticks: { n: 1, parity: { __typename: "Odd" } } } },
        { data: { ticks: { n: 2, parity: { __typename: "Even", n: 2 } } } },
      ]);
    }
    expect(compilations.count - before).toBe(0);
  });

  it("refuses as the executor refuses: the subscribe resolver's error, and variables that do not coerce", async () => {
    await warm();
    for (const variables of [{ upTo: 1, by: 1, secret: true }, { upTo: "many", by: 1 }, { by: 1 }]) {
      const compiled = await take(await subscribe(true, variables), 1);
      expect(compiled).toEqual(await take(await subscribe(false, variables), 1));
      expect(compiled).toMatchObject({ errors: [{}] });
    }
  });

  // Masked, as yoga masks every error that is not a GraphQL error of the API's own.
  it("fails a broken source as the executor does, located at the operation", async () => {
    await warm();
    const variables = { upTo: 5, by: 1, breakAt: 2 };
    const compiled = await take(await subscribe(true, variables), 5);
    expect(compiled).toEqual(await take(await subscribe(false, variables), 5));
    expect(compiled).toMatchObject([{ data: { ticks: { n: 1 } } }, { thrown: "Unexpected error.", locations: [{ line: 1, column: 1 }] }]);
  });

  it("ends its source at once when the subscriber leaves while waiting for an event", async () => {
    await warm();
    const result = (await subscribe(true, { upTo: 1, by: 1 })) as AsyncIterableIterator<ExecutionResult>;
    expect((await result.next()).value).toMatchObject({ data: { ticks: { n: 1 } } });
    const pending = result.next();
    await result.return!();
    expect(sourceClosed).toBe(true);
    await expect(pending).resolves.toMatchObject({ done: true });
  });
});
