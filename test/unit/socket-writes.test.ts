import type { AddressInfo, Socket } from "node:net";
import { buildSchema } from "graphql";
import { createClient } from "graphql-ws";
import { useServer } from "graphql-ws/use/ws";
import { afterEach, describe, expect, it } from "vitest";
import WebSocket, { WebSocketServer } from "ws";
import { coalesceWrites, SOCKET_HIGH_WATER_BYTES } from "../../src/server/socket-writes.js";

const schema = buildSchema("type Query { a: Int } type Subscription { burst(count: Int!, size: Int!): String }");

interface Served {
  url: string;
  /** Writes handed to the kernel by the server's sockets (one system call each). */
  writes: () => number;
  /** Values the subscription has produced so far. */
  produced: () => number;
  /** Bytes the server holds unsent on its latest socket. */
  buffered: () => number;
  close: () => Promise<void>;
}

let served: Served | null = null;
afterEach(async () => {
  await served?.close();
  served = null;
});

/** graphql-ws over ws, as the server runs it; every subscription yields `count` strings of `size` bytes at once. */
async function serve(coalesce: boolean): Promise<Served> {
  let writes = 0;
  let produced = 0;
  let latest: WebSocket | null = null;
  const server = new WebSocketServer({ port: 0, host: "127.0.0.1" });
  server.on("connection", (webSocket, request) => {
    latest = webSocket;
    const socket = request.socket as Socket & { _write: (...args: unknown[]) => void; _writev: (...args: unknown[]) => void };
    for (const method of ["_write", "_writev"] as const) {
      const original = socket[method].bind(socket);
      socket[method] = (...args: unknown[]) => {
        writes++;
        original(...args);
      };
    }
    if (coalesce) coalesceWrites(webSocket, socket);
  });
  const subscriptions = useServer(
    {
      schema,
      roots: {
        subscription: {
          burst: async function* ({ count, size }: { count: number; size: number }) {
            for (let index = 0; index < count; index++) {
              produced++;
              yield { burst: String(index).padEnd(size, ".") };
            }
          },
        },
      },
    },
    server,
  );
  await new Promise((resolve) => server.once("listening", resolve));
  return {
    url: `ws://127.0.0.1:${(server.address() as AddressInfo).port}`,
    writes: () => writes,
    produced: () => produced,
    buffered: () => latest?.bufferedAmount ?? 0,
    close: async () => {
      await subscriptions.dispose();
    },
  };
}

async function receiveAll(url: string, count: number, size: number): Promise<string[]> {
  const client = createClient({ url, webSocketImpl: WebSocket, retryAttempts: 0 });
  try {
    const received: string[] = [];
    await new Promise<void>((resolve, reject) =>
      client.subscribe<{ burst: string }>(
        { query: `subscription { burst(count: ${count}, size: ${size}) }` },
        { next: (result) => void received.push(result.data!.burst), error: reject, complete: resolve },
      ),
    );
    return received;
  } finally {
    await client.dispose();
  }
}

describe("a socket's writes, coalesced", () => {
  it("sends a burst of 200 messages in a few system calls instead of one each, every message intact and in order", async () => {
    served = await serve(false);
    const plain = await receiveAll(served.url, 200, 100);
    const plainWrites = served.writes();
    await served.close();

    served = await serve(true);
    const coalesced = await receiveAll(served.url, 200, 100);
    const coalescedWrites = served.writes();

    expect(coalesced).toEqual(plain);
    expect(coalesced.map((text) => Number.parseInt(text, 10))).toEqual(Array.from({ length: 200 }, (_, index) => index));
    // graphql-ws waits for each message's write before taking the next result: one write each.
    expect(plainWrites).toBeGreaterThanOrEqual(200);
    // The handshake's answer, connection_ack, the burst (20 kB, under the high-water mark) and its end.
    expect(coalescedWrites).toBeLessThanOrEqual(6);
  });

  it("holds a subscription back once a client that does not read has more than the high-water mark waiting", async () => {
    served = await serve(true);
    const size = 100_000;
    const client = new WebSocket(served.url, "graphql-transport-ws");
    await new Promise((resolve) => client.once("open", resolve));
    client.send(JSON.stringify({ type: "connection_init" }));
    await new Promise((resolve) => client.once("message", resolve));
    // The client stops reading: the kernel's buffers fill, then the server's.
    (client as unknown as { _socket: Socket })._socket.pause();
    client.send(JSON.stringify({ id: "1", type: "subscribe", payload: { query: `subscription { burst(count: 2000, size: ${size}) }` } }));
    let before = -1;
    while (served.produced() !== before) {
      before = served.produced();
      await new Promise((resolve) => setTimeout(resolve, 300));
    }
    // Without the mark, all 2,000 (200 MB) would be produced into the server's memory at once.
    expect(served.produced()).toBeLessThan(2000);
    expect(served.buffered()).toBeLessThan(SOCKET_HIGH_WATER_BYTES + 2 * size);
    client.terminate();
  });
});
