import { Client, cacheExchange, fetchExchange, mapExchange, subscriptionExchange, type CombinedError } from "@urql/core";
import { createClient as createSocket, type Client as SocketClient } from "graphql-ws";
import type { Locale } from "../i18n/messages";

export const GRAPHQL_PATH = "/graphql";

/** The headers every HTTP request to the API carries. */
export function apiHeaders(token: string | null, locale: Locale): Record<string, string> {
  return {
    ...(token ? { authorization: `Bearer ${token}` } : {}),
    "accept-language": locale,
    // Conveyor's CSRF prevention asks for this header on requests a form could not make.
    "x-graphql-yoga-csrf": "1",
  };
}

/** Whether an error means the token no longer works: the operator has to sign in again. */
export function isAuthError(error: CombinedError): boolean {
  const response = error.response as Response | undefined;
  return response?.status === 401 || error.graphQLErrors.some((graphQLError) => graphQLError.extensions?.code === "UNAUTHENTICATED");
}

/**
 * The API over HTTP (queries, mutations) and over one WebSocket (subscriptions), the token in
 * the Authorization header and in graphql-ws's connectionParams. `onAuthLost` is called when the
 * server refuses the token (expired, revoked): 4401/4403 on the socket, UNAUTHENTICATED on HTTP.
 */
export function createApiClient(options: { token: string; locale: Locale; onAuthLost: () => void }): { client: Client; dispose: () => void } {
  const { token, locale, onAuthLost } = options;
  const socketUrl = `${location.protocol === "https:" ? "wss:" : "ws:"}//${location.host}${GRAPHQL_PATH}`;
  const socket: SocketClient = createSocket({
    url: socketUrl,
    connectionParams: { authorization: `Bearer ${token}`, locale },
    lazy: true,
    retryAttempts: Number.POSITIVE_INFINITY,
    shouldRetry: (event) => !isAuthClose(event),
    on: {
      closed: (event) => {
        if (isAuthClose(event)) onAuthLost();
      },
    },
  });
  const client = new Client({
    url: GRAPHQL_PATH,
    fetchOptions: () => ({ headers: apiHeaders(token, locale) }),
    requestPolicy: "cache-and-network",
    exchanges: [
      mapExchange({ onError: (error) => (isAuthError(error) ? onAuthLost() : undefined) }),
      cacheExchange,
      fetchExchange,
      subscriptionExchange({
        forwardSubscription: (request) => ({
          subscribe: (sink) => ({ unsubscribe: socket.subscribe({ ...request, query: request.query ?? "" }, sink) }),
        }),
      }),
    ],
  });
  return { client, dispose: () => void socket.dispose() };
}

function isAuthClose(event: unknown): boolean {
  const code = (event as { code?: number } | null)?.code;
  return code === 4401 || code === 4403;
}
