import type { WebSocket } from "ws";

/**
 * Serializes each result once, however many WebSockets it goes to. Shared subscriptions hand one
 * result object to every follower (shared-subscriptions.ts: ten dashboards on jobUpdateBatches get
 * the same batch of a thousand changes), but graphql-ws stringifies every message whole, so the
 * same text was built once per socket: in a profile of ten operators, the largest single cost.
 *
 * graphql-ws takes a `jsonMessageReplacer`: `replacer` answers a message's payload (an object) with
 * a token, unique per message, and keeps the payload's text, made the first time that object is
 * seen. Every message then passes through the socket's `send` (`attach`), where `embed` puts the
 * text where the token stands. (JSON.rawJSON would spare the token, but it takes primitives only.)
 */
export class SerializeOnce {
  private readonly texts = new WeakMap<object, string>();
  /** Texts of messages stringified and not yet sent, by token. */
  private readonly pending = new Map<string, string>();
  private sequence = 0;

  /** For JSON.stringify, which calls it with the object holding `key` as `this`. */
  readonly replacer: (this: unknown, key: string, value: unknown) => unknown;

  constructor() {
    const self = this;
    this.replacer = function (key, value) {
      return self.tokenFor(this, key, value);
    };
  }

  private tokenFor(holder: unknown, key: string, value: unknown): unknown {
    // Only a message's own payload: the replacer sees every key at every depth until it answers
    // one, and fields named "payload" inside a result are the client's data.
    if (key !== "payload" || typeof value !== "object" || value === null || !isMessage(holder)) return value;
    let text = this.texts.get(value);
    if (text === undefined) this.texts.set(value, (text = JSON.stringify(value)));
    const token = `${TOKEN_PREFIX}${++this.sequence}`;
    this.pending.set(token, text);
    // A message graphql-ws stringifies but never sends (its socket closed meanwhile) is forgotten
    // with the oldest: send follows stringify at once, so only the latest few are ever waited for.
    if (this.pending.size > MAX_PENDING) this.pending.delete(this.pending.keys().next().value!);
    return token;
  }

  /** Every message the socket sends has its payload's text put in. */
  attach(webSocket: WebSocket): void {
    const send = webSocket.send.bind(webSocket);
    webSocket.send = ((data: unknown, ...rest: unknown[]) => (send as (...args: unknown[]) => void)(this.embed(data), ...rest)) as WebSocket["send"];
  }

  /** `data` with a payload's token replaced by its text; anything else as it came. */
  embed(data: unknown): unknown {
    if (typeof data !== "string" || this.pending.size === 0) return data;
    // Where the message's own "payload" field holds the token: a quote inside any string value,
    // the client's operation id included, comes out escaped, so nothing else reads like this.
    const start = data.indexOf(PAYLOAD_FIELD);
    if (start < 0) return data;
    const tokenStart = start + PAYLOAD_FIELD.length;
    const tokenEnd = data.indexOf('"', tokenStart);
    const token = TOKEN_PREFIX + data.slice(tokenStart, tokenEnd);
    const text = this.pending.get(token);
    if (text === undefined) return data;
    this.pending.delete(token);
    return data.slice(0, start) + '"payload":' + text + data.slice(tokenEnd + 1);
  }
}

const TOKEN_PREFIX = "conveyor:serialized-payload:";
const PAYLOAD_FIELD = `"payload":"${TOKEN_PREFIX}`;
const MAX_PENDING = 1000;

function isMessage(holder: unknown): boolean {
  return typeof holder === "object" && holder !== null && typeof (holder as { type?: unknown }).type === "string";
}
