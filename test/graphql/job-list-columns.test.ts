import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JobHandler } from "../../src/handlers/registry.js";
import { PermanentJobError } from "../../src/jobs/job-errors.js";
import { eventually, startTestConveyor, type TestConveyor } from "../support/conveyor.js";
import { tokenFor } from "../support/graphql-client.js";
import { completeAssessment, createAssessment, enqueue, gql, ok, PARKED, statusOf } from "./helpers.js";

// A page of jobs reads only the columns its fields ask for (src/graphql/job-columns.ts): each field,
// asked in a list, must answer what job(id), which reads the whole row, answers.
const FIELDS = [
  ..."id type owner correlationId schemaVersion idempotencyKey status stage progress bytesDone bytesTotal priority".split(" "),
  ..."retryCount maxAttempts runAt lastRetryAt createdAt updatedAt startedAt completedAt processingTimeMs cancelRequestedAt".split(" "),
  ..."heartbeatAt lockedBy payload result metadata queuePosition estimatedStartAt estimatedCompletionAt".split(" "),
  "error { category message recoverable technicalMessage details }",
  "events(first: 10) { fromStatus toStatus stage at }",
  "assessment { id status }",
];
const EVERY_FIELD = FIELDS.join(" ");

// Holds its job PROCESSING until the tests are done.
let releaseSlow: () => void = () => {};
const slowReleased = new Promise<void>((resolve) => (releaseSlow = resolve));

const handlers: JobHandler<any, any>[] = [
  { type: "quick", run: async (payload) => ({ echo: payload }) },
  { type: "slow", run: async () => slowReleased.then(() => ({})) },
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
    // No heartbeat while the tests compare: a running job's heartbeatAt stays what both reads see.
    conveyor = await startTestConveyor({
      handlers,
      environment: { WORKER_ENABLED: "true", WORKER_CONCURRENCY: "2", WORKER_HEARTBEAT_INTERVAL_MS: "600000", STALLED_THRESHOLD_MS: "1200000" },
    });
    [alice, olga] = await Promise.all([tokenFor(conveyor, "alice"), tokenFor(conveyor, "olga", "operator")]);
    jobIds.push(await enqueue(conveyor, alice, { type: "quick", payload: { n: 1 }, idempotencyKey: "first" }));
    jobIds.push(await enqueue(conveyor, alice, { type: "broken", payload: { n: 2 } }));
    jobIds.push(await enqueue(conveyor, alice, { type: "quick", payload: { n: 3 }, runAt: PARKED }));
    jobIds.push(await enqueue(conveyor, alice, { type: "quick", payload: { n: 4 }, runAt: PARKED }));
    jobIds.push(await completeAssessment(conveyor, alice, await createAssessment(conveyor, alice)));
    jobIds.push(await enqueue(conveyor, alice, { type: "slow", payload: { n: 6 } }));
    await eventually(async () => {
      const statuses = await Promise.all(jobIds.map((id) => statusOf(conveyor, id)));
      const count = (status: string) => statuses.filter((each) => each === status).length;
      return count("COMPLETED") + count("FAILED") === 3 && count("QUEUED") === 2 && count("PROCESSING") === 1;
    });
  });
  afterAll(async () => {
    releaseSlow();
    await conveyor?.dispose();
  });

  const page = async (token: string, nodeSelection: string, fragments = "") =>
    ok(await gql(conveyor, `query { jobs(first: 7) { edges { cursor node { ${nodeSelection} } } } } ${fragments}`, {}, { token })).jobs.edges as {
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
    const whole = new Map<string, Record<string, unknown>>();
    for (const edge of listed) whole.set(edge.node.id as string, await one(token(), edge.node.id as string));
    for (const edge of listed) expect(edge.node).toEqual(whole.get(edge.node.id as string));
    // Each field alone, so that a field's columns are never read only because another field asked for them.
    for (const field of FIELDS) {
      const name = field.split(/[ ({]/)[0]!;
      for (const edge of await page(token(), `id ${field}`)) {
        if (whole.has(edge.node.id as string)) expect([field, edge.node[name]]).toEqual([field, whole.get(edge.node.id as string)![name]]);
      }
    }
    // The states this covers: a result, an error with details, waiting with a position, running
    // (its claim, heartbeat and estimated completion), an assessment's timeline.
    const nodes = listed.map((edge) => edge.node);
    const running = nodes.find((node) => node.status === "PROCESSING")!;
    expect([running.startedAt, running.heartbeatAt, running.estimatedCompletionAt].every((value) => typeof value === "string")).toBe(true);
    expect(typeof running.lockedBy).toBe(token() === olga ? "string" : "object");
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
