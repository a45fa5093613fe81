/** The kinds of assessment Conveyor knows how to validate and score. Add a kind here to support it. */

export type Question =
  | { id: string; section: string; prompt: string; type: "choice"; options: string[]; correct: string; points: number; required: boolean }
  | { id: string; section: string; prompt: string; type: "scale"; min: number; max: number; weight: number; required: boolean }
  | { id: string; section: string; prompt: string; type: "text"; minLength: number; maxLength: number; required: boolean };

export interface AssessmentDefinition {
  kind: string;
  title: string;
  questions: Question[];
  /** Score bands by minimum percent, highest first. */
  bands: { minimumPercent: number; label: string }[];
}

const skillsCheck: AssessmentDefinition = {
  kind: "skills-check",
  title: "Skills check",
  questions: [
    { id: "q1", section: "sql", prompt: "Which clause filters groups after aggregation?", type: "choice", options: ["WHERE", "HAVING", "ORDER BY"], correct: "HAVING", points: 2, required: true },
    { id: "q2", section: "sql", prompt: "Which lock mode lets concurrent workers skip claimed rows?", type: "choice", options: ["NOWAIT", "SKIP LOCKED", "SHARE"], correct: "SKIP LOCKED", points: 3, required: true },
    { id: "q3", section: "http", prompt: "Which status code means the resource was created?", type: "choice", options: ["200", "201", "204"], correct: "201", points: 1, required: true },
    { id: "q4", section: "http", prompt: "Rate your confidence with HTTP caching (1-5)", type: "scale", min: 1, max: 5, weight: 1, required: true },
    { id: "q5", section: "general", prompt: "Describe a system you are proud of", type: "text", minLength: 10, maxLength: 2000, required: false },
  ],
  bands: [
    { minimumPercent: 80, label: "advanced" },
    { minimumPercent: 50, label: "intermediate" },
    { minimumPercent: 0, label: "beginner" },
  ],
};

const wellbeingCheck: AssessmentDefinition = {
  kind: "wellbeing-check",
  title: "Team wellbeing check",
  questions: [
    { id: "workload", section: "work", prompt: "My workload is manageable (1-5)", type: "scale", min: 1, max: 5, weight: 2, required: true },
    { id: "focus", section: "work", prompt: "I can focus without interruptions (1-5)", type: "scale", min: 1, max: 5, weight: 1, required: true },
    { id: "support", section: "team", prompt: "I get help when I need it (1-5)", type: "scale", min: 1, max: 5, weight: 2, required: true },
    { id: "comment", section: "team", prompt: "Anything else?", type: "text", minLength: 0, maxLength: 2000, required: false },
  ],
  bands: [
    { minimumPercent: 75, label: "thriving" },
    { minimumPercent: 50, label: "steady" },
    { minimumPercent: 0, label: "at-risk" },
  ],
};

export const ASSESSMENT_DEFINITIONS: ReadonlyMap<string, AssessmentDefinition> = new Map(
  [skillsCheck, wellbeingCheck].map((definition) => [definition.kind, definition]),
);

export function findDefinition(kind: string): AssessmentDefinition | undefined {
  return ASSESSMENT_DEFINITIONS.get(kind);
}
