import { GraphQLError, type ExecutionResult } from "graphql";
import type { Plugin } from "graphql-yoga";
import type { GraphQLContext } from "../graphql/context.js";
import { isAsyncIterable } from "../graphql/streams.js";

type Outcome = AsyncIterable<ExecutionResult> | ExecutionResult;

/**
 * On a context admitted over WebSocket, whose leader execution passes through the plugin again. A
 * property rather than a set of contexts: envelop copies the context when a plugin extends it, and
 * a copy keeps it.
 */
const ADMITTED = Symbol("conveyor.admittedStream");

/** What one caller holds open on this instance (sockets, live streams), up to a maximum each. */
export class CallerCounts {
  private readonly held = new Map<string, number>();

  constructor(readonly maxPerCaller: number) {}

  /** Takes a place for `caller`: its release (once; later calls do nothing), or null when the caller holds the maximum. */
  take(caller: string): (() => void) | null {
    const held = this.held.get(caller) ?? 0;
    if (held >= this.maxPerCaller) return null;
    this.held.set(caller, held + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.held.get(caller) ?? 1) - 1;
      if (left > 0) this.held.set(caller, left);
      else this.held.delete(caller);
    };
  }
}

/**
 * Live subscriptions per caller on this instance, over WebSocket and SSE together. The limit per
 * WebSocket alone let one token hold any number of them by opening more sockets or SSE streams,
 * each with its listener, backlog and execution per event. A place is held from the subscribe
 * until its stream ends, however it ends (completed, the client gone, the server closing it).
 * Anonymous subscriptions are not counted: every subscription field refuses them at once.
 */
export class LiveStreamQuota {
  private readonly counts: CallerCounts;

  constructor(
    maxPerCaller: number,
    private readonly onRefused: () => void = () => {},
  ) {
    this.counts = new CallerCounts(maxPerCaller);
  }

  /**
   * Runs `subscribe` in the caller's quota: refused with TOO_MANY_SUBSCRIPTIONS past it, its place
   * held until the stream ends. `open`: a set the stream is in while it runs, for whoever must be
   * able to end it (a socket closing ends every stream it started, even one graphql-ws lost track of).
   */
  async admit(context: GraphQLContext, subscribe: () => Promise<Outcome> | Outcome, open?: Set<AsyncIterator<ExecutionResult>>): Promise<Outcome> {
    (context as { [ADMITTED]?: true })[ADMITTED] = true;
    const viewer = context.viewer;
    if (!viewer) return subscribe();
    const release = this.counts.take(viewer.id);
    if (!release) {
      this.onRefused();
      const message = `At most ${this.counts.maxPerCaller} live subscriptions per caller on this server: complete one first`;
      return { errors: [new GraphQLError(message, { extensions: { code: "TOO_MANY_SUBSCRIPTIONS" } })] };
    }
    let outcome: Outcome;
    try {
      outcome = await subscribe();
    } catch (error) {
      release();
      throw error;
    }
    if (!isAsyncIterable<ExecutionResult>(outcome)) {
      release();
      return outcome;
    }
    if (!open) return releasingAtEnd(outcome, release);
    const stream = releasingAtEnd(outcome, () => {
      release();
      open.delete(stream);
    });
    open.add(stream);
    return stream;
  }

  /**
   * For yoga: subscriptions over HTTP (SSE) are admitted here; those over WebSocket were admitted
   * before they reach it. One whose request accepts no stream is refused first: yoga would answer
   * 406 without ever ending the stream it had started, and its place and listener stayed taken.
   */
  plugin(): Plugin<GraphQLContext> {
    return {
      onSubscribe: ({ args, subscribeFn, setSubscribeFn, setResultAndStopExecution }) => {
        if ((args.contextValue as { [ADMITTED]?: true })[ADMITTED]) return;
        const request = (args.contextValue as { request?: Request }).request;
        if (request && !acceptsStream(request.headers.get("accept"))) {
          setResultAndStopExecution({
            errors: [
              new GraphQLError("A subscription over HTTP is a stream of events: send Accept: text/event-stream (or subscribe over WebSocket)", {
                extensions: { code: "BAD_REQUEST", http: { status: 406 } },
              }),
            ],
          });
          return;
        }
        setSubscribeFn((subscribeArgs) => this.admit(subscribeArgs.contextValue as GraphQLContext, () => subscribeFn(subscribeArgs) as Promise<Outcome> | Outcome) as never);
      },
    };
  }
}

/** Whether yoga can answer a request with this Accept header with a stream (SSE or multipart). */
function acceptsStream(accept: string | null): boolean {
  if (!accept) return true;
  return accept.split(",").some((part) => {
    const type = part.split(";")[0]!.trim().toLowerCase();
    return type === "*/*" || type === "text/*" || type === "text/event-stream" || type === "multipart/*" || type === "multipart/mixed";
  });
}

/**
 * `source`, calling `release` once it ends: done, failed, or returned early. An iterator with
 * return() and throw(), so that graphql-ws ends it when its socket closes.
 */
function releasingAtEnd(source: AsyncIterable<ExecutionResult>, release: () => void): AsyncIterableIterator<ExecutionResult> {
  const iterator = source[Symbol.asyncIterator]();
  return {
    [Symbol.asyncIterator]() {
      return this;
    },
    next: () =>
      iterator.next().then(
        (step) => {
          if (step.done) release();
          return step;
        },
        (error: unknown) => {
          release();
          throw error;
        },
      ),
    return: (value?: unknown) => {
      release();
      return iterator.return?.(value) ?? Promise.resolve({ done: true, value: undefined });
    },
    throw: (error?: unknown) => {
      release();
      return iterator.throw?.(error) ?? Promise.reject(error);
    },
  };
}
