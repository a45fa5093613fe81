import { createClient, type Client, type FormattedExecutionResult } from "graphql-ws";

type ExecutionResult<T> = FormattedExecutionResult<T, unknown>;
import WebSocket from "ws";
import { signToken, type Role } from "../../src/graphql/auth.js";
import type { Conveyor } from "../../src/app.js";

export interface GraphQLResponse<T = any> {
  data?: T;
  errors?: { message: string; extensions?: { code?: string; [key: string]: unknown }; path?: (string | number)[] }[];
}

/** A token for `sub` with `role`, signed with the server's secret. */
export function tokenFor(conveyor: Conveyor, sub: string, role: Role = "user"): Promise<string> {
  return signToken(conveyor.config.auth.secret!, { id: sub, role });
}

/** POSTs one operation over real HTTP. */
export async function graphql<T = any>(
  conveyor: Conveyor,
  query: string,
  variables: Record<string, unknown> = {},
  options: { token?: string; headers?: Record<string, string> } = {},
): Promise<GraphQLResponse<T>> {
  return JSON.parse((await postOperation(conveyor, query, variables, options)).text) as GraphQLResponse<T>;
}

/** POSTs one operation over real HTTP; the status and the raw body. */
export async function postOperation(
  conveyor: Conveyor,
  query: string,
  variables: Record<string, unknown> = {},
  options: { token?: string; headers?: Record<string, string> } = {},
): Promise<{ status: number; text: string }> {
  const response = await fetch(`${conveyor.url}/graphql`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/graphql-response+json, application/json",
      ...(options.token ? { authorization: `Bearer ${options.token}` } : {}),
      ...options.headers,
    },
    body: JSON.stringify({ query, variables }),
  });
  return { status: response.status, text: await response.text() };
}

/** A real graphql-ws client over WebSocket, authenticated through connectionParams. */
export function wsClient(conveyor: Conveyor, token?: string, connectionParams: Record<string, unknown> = {}): Client {
  return createClient({
    url: `${conveyor.url!.replace(/^http/, "ws")}/graphql`,
    webSocketImpl: WebSocket,
    connectionParams: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...connectionParams },
    retryAttempts: 0,
    lazy: true,
  });
}

/** Collects a subscription's events until it completes, errors, or `until` says stop. */
export function collect<T = any>(
  client: Client,
  query: string,
  variables: Record<string, unknown> = {},
  until: (event: ExecutionResult<T>) => boolean = () => false,
): { events: ExecutionResult<T>[]; done: Promise<{ events: ExecutionResult<T>[]; error?: unknown }>; stop: () => void } {
  const events: ExecutionResult<T>[] = [];
  let stop = () => {};
  const done = new Promise<{ events: ExecutionResult<T>[]; error?: unknown }>((resolve) => {
    stop = client.subscribe<T>(
      { query, variables },
      {
        next: (event) => {
          events.push(event);
          if (until(event)) {
            stop();
            resolve({ events });
          }
        },
        error: (error) => resolve({ events, error }),
        complete: () => resolve({ events }),
      },
    );
  });
  return { events, done, stop: () => stop() };
}
