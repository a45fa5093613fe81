import { describe, expect, it } from "vitest";
import { ProgressWriter, storedReport, type ProgressBatch } from "../../src/jobs/progress-writer.js";

describe("ProgressWriter", () => {
  it("fails only the report whose data the statement refused; the others of its turn are written", async () => {
    const refusedData = Object.assign(new Error("invalid input syntax for type bigint"), { code: "22P02" });
    const sent: string[][] = [];
    const writer = new ProgressWriter(async (batch: ProgressBatch) => {
      const ids = batch.latest.map((report) => report.id);
      sent.push(ids);
      if (ids.includes("bad")) throw refusedData;
      return new Set(batch.latest.map((report) => report.token));
    });
    const at = new Date();
    const reports = ["a", "bad", "c"].map((id) => writer.report({ id, token: `token-${id}` }, storedReport({ stage: "s", percent: 1 }), at));
    const outcomes = await Promise.allSettled(reports);
    expect(outcomes.map((outcome) => (outcome.status === "fulfilled" ? outcome.value : outcome.reason))).toEqual([true, refusedData, true]);
    expect(sent).toEqual([["a", "bad", "c"], ["a", "bad"], ["a"], ["bad"], ["c"]]);
  });
});
