import { GraphQLError } from "graphql";

/** The stable codes clients can branch on, in `errors[].extensions.code`. */
export type ErrorCode = "UNAUTHENTICATED" | "FORBIDDEN" | "NOT_FOUND" | "BAD_USER_INPUT" | "CONFLICT" | "SUBSCRIBER_TOO_SLOW" | "EVENTS_INTERRUPTED";

/** An expected failure: its message and extensions reach the client (unexpected ones are masked). */
export function apiError(code: ErrorCode, message: string, extensions: Record<string, unknown> = {}): GraphQLError {
  return new GraphQLError(message, { extensions: { code, ...extensions } });
}

export const unauthenticated = () => apiError("UNAUTHENTICATED", "Authentication required: send a Bearer token");
export const forbidden = (what = "this resource") => apiError("FORBIDDEN", `You may not access ${what}`);
export const notFound = (what: string) => apiError("NOT_FOUND", `${what} not found`);
export const badInput = (message: string, problems: { field: string; message: string }[] = []) =>
  apiError("BAD_USER_INPUT", message, problems.length ? { problems } : {});
export const conflict = (message: string) => apiError("CONFLICT", message);
