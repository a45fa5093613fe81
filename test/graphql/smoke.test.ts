import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestConveyor, type TestConveyor } from "../support/conveyor.js";
import { collect, graphql, tokenFor, wsClient } from "../support/graphql-client.js";

describe("graphql smoke", () => {
  let conveyor: TestConveyor;
  beforeAll(async () => {
    conveyor = await startTestConveyor({ environment: { WORKER_ENABLED: "true" } });
  });
  afterAll(() => conveyor?.dispose());

  it("creates, completes and follows an assessment", async () => {
    const alice = await tokenFor(conveyor, "alice");
    const created = await graphql(conveyor, `mutation { createAssessment(kind: "skills-check", answers: {q1: "HAVING", q2: "SKIP LOCKED", q3: "201", q4: 4}) { id status } }`, {}, { token: alice });
    expect(created.errors).toBeUndefined();
    const id = created.data.createAssessment.id;
    const completed = await graphql(conveyor, `mutation($id: ID!) { completeAssessment(id: $id) { alreadyCompleted message job { id status } } }`, { id }, { token: alice, headers: { "accept-language": "fr" } });
    expect(completed.errors).toBeUndefined();
    const jobId = completed.data.completeAssessment.job.id;
    const client = wsClient(conveyor, alice);
    const { done } = collect(client, `subscription($id: ID!) { jobProgress(jobId: $id) { status stage progress } }`, { id: jobId });
    const { events, error } = await done;
    expect(error).toBeUndefined();
    if (process.env.SHOW) console.log(JSON.stringify(events.map((e) => e.data)));
    expect(events.at(-1)?.data).toMatchObject({ jobProgress: { status: "COMPLETED" } });
    const job = await graphql(conveyor, `query($id: ID!) { job(id: $id) { status result events { toStatus stage } } }`, { id: jobId }, { token: alice });
    expect(job.data.job.status).toBe("COMPLETED");
    await client.dispose();
  });
});
