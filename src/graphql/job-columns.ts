import { Kind, type FieldNode, type GraphQLResolveInfo, type SelectionSetNode } from "graphql";
import type { Prisma } from "../generated/prisma/client.js";

type JobColumn = keyof typeof Prisma.ProcessingJobScalarFieldEnum;

/**
 * The columns each field of the GraphQL type Job reads of its row (its resolver's, or the key of a
 * relation). A page that asks for a field not listed here reads whole rows, so a field added to Job
 * without an entry is still answered right, only without the saving (test/unit/job-columns.test.ts
 * fails until it has one).
 */
export const JOB_FIELD_COLUMNS: Record<string, readonly JobColumn[]> = {
  __typename: [],
  id: ["id"],
  type: ["type"],
  owner: ["owner"],
  correlationId: ["correlationId"],
  schemaVersion: ["schemaVersion"],
  idempotencyKey: ["idempotencyKey"],
  status: ["status"],
  stage: ["stage"],
  progress: ["progress"],
  bytesDone: ["bytesDone"],
  bytesTotal: ["bytesTotal"],
  priority: ["priority"],
  retryCount: ["retryCount"],
  maxAttempts: ["maxAttempts"],
  runAt: ["runAt"],
  lastRetryAt: ["lastRetryAt"],
  createdAt: ["createdAt"],
  updatedAt: ["updatedAt"],
  startedAt: ["startedAt"],
  completedAt: ["completedAt"],
  processingTimeMs: ["processingTimeMs"],
  cancelRequestedAt: ["cancelRequestedAt"],
  heartbeatAt: ["heartbeatAt"],
  lockedBy: ["lockedBy"],
  payload: ["payload"],
  result: ["result"],
  metadata: ["metadata"],
  error: ["errorCode", "errorMessage", "errorDetails", "errorRecoverable"],
  queuePosition: ["id", "status"],
  estimatedStartAt: ["id", "status", "runAt"],
  estimatedCompletionAt: ["id", "status", "runAt", "startedAt"],
  events: ["id"],
  assessment: ["assessmentId"],
};

/** Read whatever is asked: the connection's cursors are job ids. */
const ALWAYS_READ: readonly JobColumn[] = ["id"];

/**
 * For a connection of jobs (`edges { cursor node { … } }`): the columns its fields read, or
 * undefined when every column may be needed (a field without an entry in JOB_FIELD_COLUMNS). The
 * client turns every column of every row into a value (a jsonb parsed, a timestamp made a Date):
 * the page of 20 jobs that bench/api-latency.ts asks for (7 fields) answered 1,076 requests/s at
 * concurrency 10 with whole rows, 1,714 with these columns (medians of three runs; 1,073–1,080 and 1,704–1,813).
 */
export function askedJobColumns(info: GraphQLResolveInfo): JobColumn[] | undefined {
  const needed = new Set<JobColumn>(ALWAYS_READ);
  const collect = (selectionSet: SelectionSetNode | undefined, visit: (field: FieldNode) => boolean): boolean => {
    for (const selection of selectionSet?.selections ?? []) {
      const complete =
        selection.kind === Kind.FIELD
          ? visit(selection)
          : selection.kind === Kind.INLINE_FRAGMENT
            ? collect(selection.selectionSet, visit)
            : collect(info.fragments[selection.name.value]?.selectionSet, visit);
      if (!complete) return false;
    }
    return true;
  };
  const jobField = (field: FieldNode): boolean => {
    const columns = JOB_FIELD_COLUMNS[field.name.value];
    if (!columns) return false;
    for (const column of columns) needed.add(column);
    return true;
  };
  const edgeField = (field: FieldNode): boolean => (field.name.value === "node" ? collect(field.selectionSet, jobField) : true);
  const connectionField = (field: FieldNode): boolean => (field.name.value === "edges" ? collect(field.selectionSet, edgeField) : true);
  for (const fieldNode of info.fieldNodes) if (!collect(fieldNode.selectionSet, connectionField)) return undefined;
  return [...needed];
}
