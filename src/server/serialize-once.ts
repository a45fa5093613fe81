import type { ExecutionResult, GraphQLFormattedError } from "graphql";
import type { WebSocket } from "ws";

/**
 * Serializes each result once, however many WebSockets it goes to. Shared subscriptions hand one
 * result object to every follower (shared-subscriptions.ts: ten dashboards on jobUpdateBatches get
 * the same batch of a thousand changes), but graphql-ws stringifies every message whole, so the
 * same text was built once per socket: in a profile of ten operators, the largest single cost.
 *
 * Three hooks of graphql-ws's server, used together:
 * - `payloadOf`, its `onNext`: the payload of a `next` message, one object per result (graphql-ws
 *   would build a fresh copy for every socket, and nothing could be reused);
 * - `replacer`, its `jsonMessageReplacer`: a message's payload becomes a token, and its text is made
 *   the first time that payload object is seen;
 * - `attach`, on each socket: the message graphql-ws sends gets the text where the token stands.
 * graphql-ws stringifies a message and hands it to the socket in one synchronous step, so only the
 * latest message's text is ever waited for. (JSON.rawJSON would spare the token, but it takes
 * primitives only.)
 */
export class SerializeOnce {
  private readonly texts = new WeakMap<object, string>();
  private readonly payloads = new WeakMap<ExecutionResult, object>();
  /** The message stringified last, until the socket sends it; the next one replaces it. */
  private pending: { token: string; text: string } | null = null;
  private sequence = 0;

  /** For JSON.stringify, which calls it with the object holding `key` as `this`. */
  readonly replacer: (this: unknown, key: string, value: unknown) => unknown;

  constructor(private readonly formatError: (error: NonNullable<ExecutionResult["errors"]>[number]) => GraphQLFormattedError) {
    const self = this;
    this.replacer = function (key, value) {
      return self.tokenFor(this, key, value);
    };
  }

  /** A `next` message's payload: the result itself, or once per result a copy with its errors formatted for clients. */
  payloadOf(result: ExecutionResult): object {
    if (!result.errors?.length) return result;
    let payload = this.payloads.get(result);
    if (!payload) this.payloads.set(result, (payload = { ...result, errors: result.errors.map(this.formatError) }));
    return payload;
  }

  /** Every message the socket sends has its payload's text put in. */
  attach(webSocket: WebSocket): void {
    const send = webSocket.send.bind(webSocket);
    webSocket.send = ((data: unknown, ...rest: unknown[]) => (send as (...args: unknown[]) => void)(this.embed(data), ...rest)) as WebSocket["send"];
  }

  /** `data` with its payload's token replaced by the text; anything else as it came. */
  embed(data: unknown): unknown {
    const pending = this.pending;
    if (typeof data !== "string" || pending === null) return data;
    // Where the message's own "payload" field holds the token: a quote inside any string value,
    // the client's operation id included, comes out escaped, so nothing else reads like this.
    const field = `"payload":"${pending.token}"`;
    const start = data.indexOf(field);
    if (start < 0) return data;
    this.pending = null;
    return data.slice(0, start) + '"payload":' + pending.text + data.slice(start + field.length);
  }

  private tokenFor(holder: unknown, key: string, value: unknown): unknown {
    // Only a message's own payload: the replacer sees every key at every depth until it answers
    // one, and fields named "payload" inside a result are the client's data.
    if (key !== "payload" || typeof value !== "object" || value === null || !isMessage(holder)) return value;
    let text = this.texts.get(value);
    if (text === undefined) this.texts.set(value, (text = JSON.stringify(value)));
    // A message graphql-ws stringifies but never sends (its socket closed meanwhile) is simply
    // replaced by the next one: nothing is held for it.
    this.pending = { token: `${TOKEN_PREFIX}${++this.sequence}`, text };
    return this.pending.token;
  }
}

const TOKEN_PREFIX = "conveyor:serialized-payload:";

function isMessage(holder: unknown): boolean {
  return typeof holder === "object" && holder !== null && typeof (holder as { type?: unknown }).type === "string";
}
