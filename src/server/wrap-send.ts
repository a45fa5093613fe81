import type { WebSocket } from "ws";

export type SendCallback = (error?: Error) => void;
export type Send = (data: unknown, options: object | undefined, callback: SendCallback | undefined) => void;

/**
 * Puts `wrapped` in front of a socket's `send`, with ws's two call shapes, (data, options?,
 * callback?) and (data, callback), given as one; `send` is the socket's own, or the one wrapped before.
 */
export function wrapSend(webSocket: WebSocket, wrapped: (data: unknown, options: object | undefined, callback: SendCallback | undefined, send: Send) => void): void {
  const send = webSocket.send.bind(webSocket) as Send;
  webSocket.send = ((data: unknown, optionsOrCallback?: object | SendCallback, maybeCallback?: SendCallback) => {
    if (typeof optionsOrCallback === "function") wrapped(data, undefined, optionsOrCallback as SendCallback, send);
    else wrapped(data, optionsOrCallback, maybeCallback, send);
  }) as WebSocket["send"];
}
