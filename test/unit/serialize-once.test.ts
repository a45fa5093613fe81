import { buildSchema, GraphQLError, type ExecutionResult } from "graphql";
import { makeServer, type ServerOptions } from "graphql-ws";
import type { AddressInfo } from "node:net";
import { describe, expect, it } from "vitest";
import { WebSocket, WebSocketServer } from "ws";
import { SerializeOnce } from "../../src/server/serialize-once.js";
import { eventually } from "../support/conveyor.js";

const schema = buildSchema("type Query { a: Int } type Subscription { x: Int }");
const formatError = (error: GraphQLError) => ({ message: error.message, extensions: { code: error.extensions.code } });

/**
 * graphql-ws's own server, fed the same result objects on every socket (as shared subscriptions do),
 * with or without SerializeOnce: the texts each socket sends, by operation id.
 */
async function sendThrough(serializer: SerializeOnce | null, results: ExecutionResult[], ids: string[]): Promise<Map<string, string[]>> {
  const options: ServerOptions = {
    schema,
    subscribe: async function* () {
      yield* results;
    } as never,
    onNext: serializer ? (_context, _id, _payload, _args, result) => serializer.payloadOf(result) : (_c, _i, _p, _a, result) => (result.errors?.length ? { ...result, errors: result.errors.map(formatError) } : undefined),
    ...(serializer ? { jsonMessageReplacer: serializer.replacer } : {}),
  };
  const server = makeServer(options);
  const sent = new Map<string, string[]>();
  for (const id of ids) {
    let onMessage!: (data: string) => Promise<void>;
    const texts: string[] = [];
    sent.set(id, texts);
    server.opened(
      {
        protocol: "graphql-transport-ws",
        send: async (data) => void texts.push(serializer ? (serializer.embed(data) as string) : data),
        close: () => {},
        onMessage: (callback) => (onMessage = callback),
      },
      {},
    );
    await onMessage(JSON.stringify({ type: "connection_init" }));
    await onMessage(JSON.stringify({ id, type: "subscribe", payload: { query: "subscription { x }" } }));
  }
  return sent;
}

describe("SerializeOnce through graphql-ws", () => {
  it("builds a result's text once for ten sockets, each getting exactly what graphql-ws alone sends", async () => {
    let serialized = 0;
    const changes = [{ jobId: "a", status: "COMPLETED", note: 'quotes " and \\ and \u2028' }];
    // Counts the times the result's data is turned into text (graphql-ws itself copies the result).
    const shared = {
      data: {
        toJSON() {
          serialized++;
          return { jobUpdateBatches: { changes } };
        },
      },
    };
    const ids = Array.from({ length: 10 }, (_, i) => `operator-${i}`);
    const withSerializer = await sendThrough(new SerializeOnce(formatError), [shared], ids);
    expect(serialized).toBe(1);
    const plain = await sendThrough(null, [shared], ids);
    for (const id of ids) {
      expect(withSerializer.get(id)!.map((text) => JSON.parse(text))).toEqual(plain.get(id)!.map((text) => JSON.parse(text)));
      expect(withSerializer.get(id)!.map((text) => JSON.parse(text).type)).toEqual(["connection_ack", "next", "complete"]);
    }
  });

  it("formats a result's errors for clients once, and is not fooled by ids or data that look like its token", async () => {
    const failed: ExecutionResult = { data: { x: null }, errors: [new GraphQLError("nope", { extensions: { code: "FORBIDDEN", http: { status: 403 } } })] };
    const tricky = { data: { x: 1, note: '"payload":"conveyor:serialized-payload:1"', payload: { type: "next", payload: "conveyor:serialized-payload:2" } } };
    const ids = ['"payload":"conveyor:serialized-payload:1"', "conveyor:serialized-payload:3", '","payload":"x'];
    const withSerializer = await sendThrough(new SerializeOnce(formatError), [failed, tricky], ids);
    const plain = await sendThrough(null, [failed, tricky], ids);
    for (const id of ids) {
      const messages = withSerializer.get(id)!.map((text) => JSON.parse(text));
      expect(messages).toEqual(plain.get(id)!.map((text) => JSON.parse(text)));
      expect(messages[1]).toEqual({ id, type: "next", payload: { data: { x: null }, errors: [{ message: "nope", extensions: { code: "FORBIDDEN" } }] } });
      expect(messages[2].payload).toEqual(tricky);
    }
  });

  it("holds nothing for a message stringified and never sent", () => {
    const serializer = new SerializeOnce(formatError);
    for (let i = 0; i < 100; i++) JSON.stringify({ id: String(i), type: "next", payload: { data: { big: "x".repeat(10_000) } } }, serializer.replacer);
    const pending = (serializer as unknown as { pending: { payload: { text: string } } | null }).pending;
    expect(pending?.payload.text.length).toBeLessThan(20_000);
    const message = { id: "last", type: "next", payload: { data: { x: 1 } } };
    expect(serializer.embed(JSON.stringify(message, serializer.replacer))).toBe(JSON.stringify(message));
    expect((serializer as unknown as { pending: unknown }).pending).toBeNull();
  });

  it("sends a large payload as bytes encoded once, in the text frame the string would have been", async () => {
    const server = new WebSocketServer({ port: 0 });
    const serializer = new SerializeOnce(formatError);
    const sockets: WebSocket[] = [];
    server.on("connection", (socket) => {
      serializer.attach(socket);
      sockets.push(socket);
    });
    const port = (server.address() as AddressInfo).port;
    const clients = await Promise.all(
      Array.from({ length: 3 }, async () => {
        const client = new WebSocket(`ws://127.0.0.1:${port}`);
        const frames: { text: string; binary: boolean }[] = [];
        client.on("message", (data, binary) => frames.push({ text: String(data), binary }));
        await new Promise((resolve) => client.once("open", resolve));
        return { client, frames };
      }),
    );
    try {
      await eventually(() => sockets.length === 3);
      // Past the threshold, with characters of two and three UTF-8 bytes and escapes.
      const large = { data: { changes: Array.from({ length: 2_000 }, (_, i) => ({ jobId: `job-${i}`, note: `é → "${i}"` })) } };
      const small = { data: { x: 1, note: "é" } };
      const sent: string[] = [];
      for (const result of [large, small]) {
        for (const [index, socket] of sockets.entries()) {
          const message = { id: `operation-${index}`, type: "next", payload: result };
          sent.push(JSON.stringify(message));
          await new Promise<void>((resolve, reject) => socket.send(JSON.stringify(message, serializer.replacer), (error) => (error ? reject(error) : resolve())));
        }
      }
      await eventually(() => clients.every(({ frames }) => frames.length === 2));
      for (const [index, { frames }] of clients.entries()) {
        expect(frames.map((frame) => frame.binary)).toEqual([false, false]);
        expect(frames.map((frame) => frame.text)).toEqual([sent[index], sent[3 + index]]);
      }
      // Encoded once for the three sockets.
      const { texts } = serializer as unknown as { texts: WeakMap<object, { bytes: Buffer | null }> };
      expect(texts.get(large)?.bytes?.toString()).toBe(JSON.stringify(large));
      expect(texts.get(small)?.bytes).toBeNull();
    } finally {
      for (const { client } of clients) client.terminate();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
