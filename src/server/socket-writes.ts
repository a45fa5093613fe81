import type { Duplex } from "node:stream";
import type { WebSocket } from "ws";
import { wrapSend } from "./wrap-send.js";

/** Bytes a socket may hold unsent before a sender waits for its writes again: a slow client's backpressure. */
export const SOCKET_HIGH_WATER_BYTES = 64 * 1024;

/**
 * Sends a socket's messages of one turn of the event loop in one system call rather than one each.
 *
 * graphql-ws waits for each message's write callback before it takes the next result of that
 * subscription, and a write's callback runs only once the bytes reach the kernel. So holding the
 * socket's writes (cork) until the end of the turn was not enough on its own: every message still
 * waited for its own flush, and a job's PROCESSING, stages and COMPLETED each cost a system call
 * (in a profile of 10,000 watched jobs, the server's largest cost). Here a message that finds
 * less than `highWaterBytes` waiting is acknowledged as soon as the socket has it; past that, the
 * sender waits for the write as before, so a client that does not read holds up its own
 * subscriptions, not the server's memory.
 */
export function coalesceWrites(webSocket: WebSocket, socket: Duplex, highWaterBytes = SOCKET_HIGH_WATER_BYTES): void {
  let corked = false;
  const uncork = () => {
    corked = false;
    socket.uncork();
  };
  wrapSend(webSocket, (data, options, callback, send) => {
    if (!corked) {
      corked = true;
      socket.cork();
      setImmediate(uncork);
    }
    if (callback && webSocket.bufferedAmount < highWaterBytes) {
      // A failed write closes the socket, and graphql-ws ends its subscriptions on close.
      send(data, options, undefined);
      process.nextTick(callback);
      return;
    }
    send(data, options, callback);
  });
}
