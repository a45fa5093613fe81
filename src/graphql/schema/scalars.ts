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

// What toISOString writes for years 0000 to 9999.
const CANONICAL_DATE_TIME = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/**
 * A job change carries its time as this very text already (JobChange.at): parsing and writing it
 * again for every change of every batch an operator receives was 1.7 % of the server's CPU.
 */
export function serializeDateTime(value: unknown): string {
  if (typeof value === "string" && CANONICAL_DATE_TIME.test(value)) return value;
  return (value instanceof Date ? value : new Date(value as string | number)).toISOString();
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
