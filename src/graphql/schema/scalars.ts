import { GraphQLError, Kind, type ValueNode } from "graphql";
import { builder } from "../builder.js";

builder.scalarType("DateTime", {
  description: "An instant in time, as an ISO 8601 string in UTC (e.g. 2026-11-24T12:00:00.000Z).",
  serialize: serializeDateTime,
  parseValue: (value) => parseDate(value),
  parseLiteral: (node) => {
    if (node.kind !== Kind.STRING) throw new GraphQLError("DateTime must be an ISO 8601 string", { extensions: { code: "BAD_USER_INPUT" } });
    return parseDate(node.value);
  },
});

builder.scalarType("JSON", {
  description: "Any JSON value.",
  serialize: (value) => value,
  parseValue: (value) => value,
  parseLiteral: (node) => literalValue(node),
});

builder.scalarType("Upload", {
  description: "A file sent as a part of a multipart request (GraphQL multipart request spec); input only.",
  serialize: () => {
    throw new GraphQLError("Upload is an input type");
  },
  parseValue: (value) => value,
  parseLiteral: () => {
    throw new GraphQLError("A file must be sent as a multipart request part, not written in the query", { extensions: { code: "BAD_USER_INPUT" } });
  },
});

// The last time written, and its text: a batch's changes share one time (their statement's).
let lastDateTime = { value: undefined as unknown, text: "" };

/**
 * Job changes carry their time as text (JobChange.at), and every change of every operator batch
 * was parsed and written again (1.7 % of the server's CPU in the profile of 10 operators): the
 * changes of one statement share a time, so its text is worked out once.
 */
export function serializeDateTime(value: unknown): string {
  if (typeof value === "string" && value === lastDateTime.value) return lastDateTime.text;
  const text = (value instanceof Date ? value : new Date(value as string | number)).toISOString();
  if (typeof value === "string") lastDateTime = { value, text };
  return text;
}

function parseDate(value: unknown): Date {
  const date = typeof value === "string" ? new Date(value) : new Date(Number.NaN);
  if (Number.isNaN(date.getTime())) {
    throw new GraphQLError("DateTime must be an ISO 8601 string", { extensions: { code: "BAD_USER_INPUT" } });
  }
  // JavaScript reaches years PostgreSQL cannot store; keep to ISO 8601's four-digit years.
  const year = date.getUTCFullYear();
  if (year < 1 || year > 9999) {
    throw new GraphQLError("DateTime must be between years 0001 and 9999", { extensions: { code: "BAD_USER_INPUT" } });
  }
  return date;
}

function literalValue(node: ValueNode): unknown {
  switch (node.kind) {
    case Kind.STRING:
    case Kind.BOOLEAN:
      return node.value;
    case Kind.INT:
    case Kind.FLOAT:
      return Number(node.value);
    case Kind.NULL:
      return null;
    case Kind.LIST:
      return node.values.map(literalValue);
    case Kind.OBJECT:
      return Object.fromEntries(node.fields.map((field) => [field.name.value, literalValue(field.value)]));
    default:
      throw new GraphQLError("Variables are not allowed inside a JSON literal", { extensions: { code: "BAD_USER_INPUT" } });
  }
}

export const JobStatusEnum = builder.enumType("JobStatus", {
  values: {
    QUEUED: { description: "Waiting to run (at runAt at the earliest)." },
    PROCESSING: { description: "A worker runs it now." },
    RETRYING: { description: "An attempt failed recoverably; it runs again at runAt." },
    COMPLETED: {
      description:
        "Finished with a result. A job whose cancel was requested while it ran still ends COMPLETED when its handler had already returned successfully before the request reached it.",
    },
    FAILED: { description: "Failed permanently, or ran out of attempts." },
    VALIDATION_FAILED: { description: "Its input is invalid; never retried by itself." },
    CANCELLED: {
      description:
        "Cancelled: at once while waiting; while running, its handler is aborted and the job ends CANCELLED however that attempt then ends (failed, timed out, stalled), unless the handler had already returned successfully (then COMPLETED). Never retried by itself.",
    },
  },
});
export const JobPriorityEnum = builder.enumType("JobPriority", { values: ["LOW", "NORMAL", "HIGH"] as const });
export const AssessmentStatusEnum = builder.enumType("AssessmentStatus", { values: ["IN_PROGRESS", "COMPLETED"] as const });
export const LocaleEnum = builder.enumType("Locale", {
  description: "A language for user-facing messages; without one, Accept-Language decides (English by default).",
  values: { EN: { value: "en" }, FR: { value: "fr" }, DE: { value: "de" } } as const,
});
export const RoleEnum = builder.enumType("Role", { values: { USER: { value: "user" }, OPERATOR: { value: "operator" } } as const });
