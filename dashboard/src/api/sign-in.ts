import { Client, fetchExchange } from "@urql/core";
import { graphql } from "../gql";
import type { Locale } from "../i18n/messages";
import { apiHeaders, GRAPHQL_PATH, isAuthError } from "./client";

const DEV_TOKEN_PATH = "/dashboard/dev-token";

const Me = graphql(`
  query Me {
    me {
      id
      role
    }
  }
`);

export type TokenCheck = { kind: "operator"; operatorId: string } | { kind: "user" } | { kind: "invalid" } | { kind: "unreachable"; message: string };

/** Asks the API who the token belongs to: only an operator may use the dashboard. */
export async function checkToken(token: string, locale: Locale): Promise<TokenCheck> {
  const client = new Client({ url: GRAPHQL_PATH, exchanges: [fetchExchange], fetchOptions: { headers: apiHeaders(token, locale) } });
  const result = await client.query(Me, {}, { requestPolicy: "network-only" }).toPromise();
  if (result.error) return isAuthError(result.error) ? { kind: "invalid" } : { kind: "unreachable", message: result.error.message };
  const me = result.data?.me;
  if (!me) return { kind: "invalid" };
  return me.role === "OPERATOR" ? { kind: "operator", operatorId: me.id } : { kind: "user" };
}

/** Whether this server mints development tokens (outside production, on a loopback address). */
export async function devTokensAvailable(): Promise<boolean> {
  try {
    return (await fetch(DEV_TOKEN_PATH, { cache: "no-store" })).ok;
  } catch {
    return false;
  }
}

export async function mintDevToken(): Promise<string> {
  const response = await fetch(DEV_TOKEN_PATH, { method: "POST", headers: { "x-conveyor-dev-token": "1" } });
  const body = (await response.json()) as { token?: string; error?: { message: string } };
  if (!response.ok || !body.token) throw new Error(body.error?.message ?? `HTTP ${response.status}`);
  return body.token;
}
