import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JobHandler } from "../../src/handlers/registry.js";
import { PermanentJobError } from "../../src/jobs/job-errors.js";
import { eventually, startTestConveyor, type TestConveyor } from "../support/conveyor.js";
import { tokenFor } from "../support/graphql-client.js";
import { completeAssessment, createAssessment, enqueue, gql, ok, PARKED, statusOf } from "./helpers.js";

// A page of jobs reads only the columns its fields ask for (src/graphql/job-columns.ts): each field,
// asked in a list, must answer what job(id), which reads the whole row, answers.
const EVERY_FIELD = `id type owner correlationId schemaVersion idempotencyKey status stage progress bytesDone bytesTotal priority
  retryCount maxAttempts runAt lastRetryAt createdAt updatedAt startedAt completedAt processingTimeMs cancelRequestedAt
  heartbeatAt lockedBy payload result metadata error { category message recoverable technicalMessage details }
  queuePosition estimatedStartAt estimatedCompletionAt events(first: 10) { fromStatus toStatus stage at } assessment { id status }`;

const handlers: JobHandler<any, any>[] = [
  { type: "quick", run: async (payload) => ({ echo: payload }) },
  {
    type: "broken",
    run: async () => {
      throw new PermanentJobError("the input file is corrupt", { category: "FILE_ERROR", details: { line: 7 } });
    },
  },
];

describe("a page of jobs read column by column", () => {
  let conveyor: TestConveyor;
  let alice: string;
  let olga: string;
  const jobIds: string[] = [];

  beforeAll(async () => {
    conveyor = await startTestConveyor({ handlers, environment: { WORKER_ENABLED: "true", WORKER_CONCURRENCY: "2" } });
    [alice, olga] = await Promise.all([tokenFor(conveyor, "alice"), tokenFor(conveyor, "olga", "operator")]);
    jobIds.push(await enqueue(conveyor, alice, { type: "quick", payload: { n: 1 }, idempotencyKey: "first" }));
    jobIds.push(await enqueue(conveyor, alice, { type: "broken", payload: { n: 2 } }));
    jobIds.push(await enqueue(conveyor, alice, { type: "quick", payload: { n: 3 }, runAt: PARKED }));
    jobIds.push(await enqueue(conveyor, alice, { type: "quick", payload: { n: 4 }, runAt: PARKED }));
    jobIds.push(await completeAssessment(conveyor, alice, await createAssessment(conveyor, alice)));
    await eventually(async () => {
      const statuses = await Promise.all(jobIds.map((id) => statusOf(conveyor, id)));
      return statuses.every((status) => status === "COMPLETED" || status === "FAILED" || status === "QUEUED") && statuses.filter((status) => status === "QUEUED").length === 2;
    });
  });
  afterAll(() => conveyor?.dispose());

  const page = async (token: string, nodeSelection: string, fragments = "") =>
    ok(await gql(conveyor, `query { jobs(first: 6) { edges { cursor node { ${nodeSelection} } } } } ${fragments}`, {}, { token })).jobs.edges as {
      cursor: string;
      node: Record<string, unknown>;
    }[];
  const one = async (token: string, id: string) => ok(await gql(conveyor, `query($id: ID!) { job(id: $id) { ${EVERY_FIELD} } }`, { id }, { token })).job;

  it.each([
    ["a user", () => alice],
    ["an operator", () => olga],
  ])("answers every field in a list as job(id) does, for %s", async (_who, token) => {
    const edges = await page(token(), EVERY_FIELD);
    const listed = edges.filter((edge) => jobIds.includes(edge.node.id as string));
    expect(listed.map((edge) => edge.node.id).sort()).toEqual([...jobIds].sort());
    for (const edge of listed) expect(edge.node).toEqual(await one(token(), edge.node.id as string));
    // The states this covers: a result, an error with details, waiting with a position, an assessment's timeline.
    const nodes = listed.map((edge) => edge.node);
    expect(nodes.some((node) => node.result !== null && node.status === "COMPLETED")).toBe(true);
    expect(nodes.some((node) => (node.error as { category?: string } | null)?.category === "FILE_ERROR")).toBe(true);
    expect(nodes.some((node) => typeof node.queuePosition === "number" && node.estimatedStartAt !== null)).toBe(true);
    expect(nodes.some((node) => node.assessment !== null && (node.events as unknown[]).length > 0)).toBe(true);
  });

  it("reads the fields of fragments and inline fragments, and the cursors, in a narrow page", async () => {
    const edges = await page(olga, `...Brief ... on Job { error { category details } payload }`, `fragment Brief on Job { status progress }`);
    const broken = edges.find((edge) => (edge.node.payload as { n?: number }).n === 2)!;
    expect(broken.node).toEqual({ status: "FAILED", progress: expect.any(Number), error: { category: "FILE_ERROR", details: expect.objectContaining({ line: 7 }) }, payload: { n: 2 } });
    for (const edge of edges) expect(Object.keys(edge.node).sort()).toEqual(["error", "payload", "progress", "status"]);
    const after = ok(await gql(conveyor, `query($after: String) { jobs(first: 1, after: $after) { edges { node { status } } } }`, { after: edges[0]!.cursor }, { token: olga })).jobs.edges;
    expect(after).toHaveLength(1);
  });
});
