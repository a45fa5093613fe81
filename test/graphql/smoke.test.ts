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
    expect(completed.data.completeAssessment.alreadyCompleted).toBe(false);
    const jobId = completed.data.completeAssessment.job.id;
    const client = wsClient(conveyor, alice);
    const { done } = collect(client, `subscription($id: ID!) { jobProgress(jobId: $id) { status stage progress } }`, { id: jobId });
    const { events, error } = await done;
    expect(error).toBeUndefined();
    // The stream ends with the final state, whatever it caught of the run before that.
    expect(events.at(-1)?.data).toEqual({ jobProgress: { status: "COMPLETED", stage: "finalizing", progress: 100 } });
    const job = await graphql(conveyor, `query($id: ID!) { job(id: $id) { status result events { toStatus stage } } }`, { id: jobId }, { token: alice });
    expect(job.errors).toBeUndefined();
    expect(job.data.job.status).toBe("COMPLETED");
    expect(job.data.job.result).toMatchObject({ kind: "skills-check", band: "advanced", points: 6.75, maxPoints: 7, answeredCount: 4, questionCount: 5 });
    expect(job.data.job.events.at(0)).toEqual({ toStatus: "QUEUED", stage: null });
    expect(job.data.job.events.at(-1)).toEqual({ toStatus: "COMPLETED", stage: "finalizing" });
    await client.dispose();
  });
});
