import type { ValidationFailure } from "../jobs/job-errors.js";
import type { AssessmentDefinition, Question } from "./definitions.js";

export type Answers = Record<string, unknown>;

/**
 * Problems with a set of answers, by question id. Failures name the field and the rule broken,
 * never the value given, so they are safe to store and show.
 */
export function validateAnswers(definition: AssessmentDefinition, answers: unknown): ValidationFailure[] {
  if (answers === null || typeof answers !== "object" || Array.isArray(answers)) {
    return [{ field: "answers", rule: "type", reason: "answers must be an object keyed by question id" }];
  }
  const given = answers as Answers;
  const failures: ValidationFailure[] = [];
  const known = new Set(definition.questions.map((question) => question.id));
  for (const key of Object.keys(given)) {
    if (!known.has(key)) failures.push({ field: `answers.${key}`, rule: "unknown_question", reason: "no such question in this assessment" });
  }
  for (const question of definition.questions) {
    const value = given[question.id];
    const field = `answers.${question.id}`;
    if (value === undefined || value === null || value === "") {
      if (question.required) failures.push({ field, rule: "required", reason: "an answer is required" });
      continue;
    }
    const failure = checkAnswer(question, value);
    if (failure) failures.push({ field, ...failure });
  }
  return failures;
}

function checkAnswer(question: Question, value: unknown): Omit<ValidationFailure, "field"> | null {
  switch (question.type) {
    case "choice":
      if (typeof value !== "string") return { rule: "type", reason: "expected one of the options, as text" };
      return question.options.includes(value) ? null : { rule: "option", reason: `expected one of: ${question.options.join(", ")}` };
    case "scale":
      if (typeof value !== "number" || !Number.isInteger(value)) return { rule: "type", reason: "expected a whole number" };
      return value >= question.min && value <= question.max
        ? null
        : { rule: "out_of_range", reason: `expected a number from ${question.min} to ${question.max}` };
    case "text":
      if (typeof value !== "string") return { rule: "type", reason: "expected text" };
      if (value.trim().length < question.minLength) return { rule: "too_short", reason: `expected at least ${question.minLength} characters` };
      return value.length > question.maxLength ? { rule: "too_long", reason: `expected at most ${question.maxLength} characters` } : null;
  }
}

export interface ScoredQuestion {
  questionId: string;
  section: string;
  prompt: string;
  answered: boolean;
  points: number;
  maxPoints: number;
}

export interface AssessmentResult {
  kind: string;
  title: string;
  points: number;
  maxPoints: number;
  percent: number;
  band: string;
  answeredCount: number;
  questionCount: number;
  sections: { section: string; points: number; maxPoints: number; percent: number }[];
  questions: ScoredQuestion[];
}

/** Scores valid answers. Text answers are not scored and not copied into the result. */
export function scoreAnswers(definition: AssessmentDefinition, answers: Answers): AssessmentResult {
  const questions: ScoredQuestion[] = definition.questions
    .filter((question) => question.type !== "text")
    .map((question) => {
      const value = answers[question.id];
      const answered = value !== undefined && value !== null && value !== "";
      if (question.type === "choice") {
        return { questionId: question.id, section: question.section, prompt: question.prompt, answered, points: value === question.correct ? question.points : 0, maxPoints: question.points };
      }
      const scale = question as Extract<Question, { type: "scale" }>;
      const span = scale.max - scale.min;
      const points = answered && span > 0 ? round(((Number(value) - scale.min) / span) * scale.weight) : 0;
      return { questionId: question.id, section: question.section, prompt: question.prompt, answered, points, maxPoints: scale.weight };
    });
  const sectionNames = [...new Set(questions.map((question) => question.section))];
  const sections = sectionNames.map((section) => {
    const inSection = questions.filter((question) => question.section === section);
    const points = round(inSection.reduce((sum, question) => sum + question.points, 0));
    const maxPoints = round(inSection.reduce((sum, question) => sum + question.maxPoints, 0));
    return { section, points, maxPoints, percent: percentOf(points, maxPoints) };
  });
  const points = round(questions.reduce((sum, question) => sum + question.points, 0));
  const maxPoints = round(questions.reduce((sum, question) => sum + question.maxPoints, 0));
  const percent = percentOf(points, maxPoints);
  const band = definition.bands.find((candidate) => percent >= candidate.minimumPercent)?.label ?? "unrated";
  const answeredCount = definition.questions.filter((question) => {
    const value = answers[question.id];
    return value !== undefined && value !== null && value !== "";
  }).length;
  return {
    kind: definition.kind,
    title: definition.title,
    points,
    maxPoints,
    percent,
    band,
    answeredCount,
    questionCount: definition.questions.length,
    sections,
    questions,
  };
}

function percentOf(points: number, maxPoints: number): number {
  return maxPoints === 0 ? 0 : round((points / maxPoints) * 100);
}

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
