import { describe, expect, it } from "vitest";
import { findDefinition } from "../../src/assessments/definitions.js";
import { scoreAnswers, validateAnswers } from "../../src/assessments/scoring.js";

const skills = findDefinition("skills-check")!;

describe("assessment scoring", () => {
  it("reports each invalid field by rule, without quoting the answer", () => {
    const failures = validateAnswers(skills, { q1: "WHERE", q2: 7, q4: 9, q5: "short", extra: "jane@example.com" });
    expect(failures.map((failure) => `${failure.field}:${failure.rule}`).sort()).toEqual([
      "answers.extra:unknown_question",
      "answers.q2:type",
      "answers.q3:required",
      "answers.q4:out_of_range",
      "answers.q5:too_short",
    ]);
    expect(JSON.stringify(failures)).not.toContain("jane@example.com");
    expect(validateAnswers(skills, [1, 2])).toEqual([{ field: "answers", rule: "type", reason: "answers must be an object keyed by question id" }]);
  });

  it("scores choices and scales by section, with a band", () => {
    const result = scoreAnswers(skills, { q1: "HAVING", q2: "NOWAIT", q3: "201", q4: 5 });
    expect(validateAnswers(skills, { q1: "HAVING", q2: "NOWAIT", q3: "201", q4: 5 })).toEqual([]);
    expect([result.points, result.maxPoints, result.percent, result.band]).toEqual([4, 7, 57.14, "intermediate"]);
    expect(result.sections).toEqual([
      { section: "sql", points: 2, maxPoints: 5, percent: 40 },
      { section: "http", points: 2, maxPoints: 2, percent: 100 },
    ]);
    expect([result.answeredCount, result.questionCount]).toEqual([4, 5]);
  });
});
