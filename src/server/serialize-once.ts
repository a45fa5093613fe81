import type { ExecutionResult, GraphQLFormattedError } from "graphql";
import type { WebSocket } from "ws";
import { wrapSend } from "./wrap-send.js";

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
  private readonly texts = new WeakMap<object, SerializedPayload>();
  private readonly payloads = new WeakMap<ExecutionResult, object>();
  /** The message stringified last, until the socket sends it; the next one replaces it. */
  private pending: { token: string; payload: SerializedPayload } | null = null;
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
    wrapSend(webSocket, (data, options, callback, send) => {
      const message = this.embed(data);
      if (typeof message === "string" || message === data) return send(message, options, callback);
      // Bytes go out as the text frame the string would have been.
      send(message, { ...options, binary: false }, callback);
    });
  }

  /**
   * `data` with its payload's token replaced by the text (as UTF-8 bytes for a large payload);
   * anything else as it came.
   */
  embed(data: unknown): unknown {
    const pending = this.pending;
    if (typeof data !== "string" || pending === null) return data;
    // Where the message's own "payload" field holds the token: a quote inside any string value,
    // the client's operation id included, comes out escaped, so nothing else reads like this.
    const field = `"payload":"${pending.token}"`;
    const start = data.indexOf(field);
    if (start < 0) return data;
    this.pending = null;
    const before = data.slice(0, start) + '"payload":';
    const after = data.slice(start + field.length);
    const { text } = pending.payload;
    if (text.length < ENCODE_ONCE_CHARACTERS) return before + text + after;
    const bytes = (pending.payload.bytes ??= Buffer.from(text));
    return Buffer.concat([Buffer.from(before), bytes, Buffer.from(after)]);
  }

  private tokenFor(holder: unknown, key: string, value: unknown): unknown {
    // Only a message's own payload: the replacer sees every key at every depth until it answers
    // one, and fields named "payload" inside a result are the client's data.
    if (key !== "payload" || typeof value !== "object" || value === null || !isMessage(holder)) return value;
    let payload = this.texts.get(value);
    if (payload === undefined) this.texts.set(value, (payload = { text: JSON.stringify(value), bytes: null }));
    // A message graphql-ws stringifies but never sends (its socket closed meanwhile) is simply
    // replaced by the next one: nothing is held for it.
    this.pending = { token: `${TOKEN_PREFIX}${++this.sequence}`, payload };
    return this.pending.token;
  }
}

const TOKEN_PREFIX = "conveyor:serialized-payload:";

/** A payload's text, and its UTF-8 bytes once a large one has been sent. */
interface SerializedPayload {
  text: string;
  bytes: Buffer | null;
}

/**
 * From this many UTF-16 units of payload text, every socket's message is built as bytes around the
 * payload encoded once. ws measures (Buffer.byteLength) and encodes each string it sends, and the
 * message graphql-ws hands it is a fresh string per socket: ten dashboards on one batch of 150 kB
 * meant ten times that. In a profile of ten operators at full speed, byteLength alone was 191 ms
 * of the server's 2.3 s, the largest single cost the operators added. Small messages stay strings:
 * for them the bytes' copies would cost more than they save.
 */
const ENCODE_ONCE_CHARACTERS = 16 * 1024;

function isMessage(holder: unknown): boolean {
  return typeof holder === "object" && holder !== null && typeof (holder as { type?: unknown }).type === "string";
}
