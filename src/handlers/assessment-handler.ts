import { findDefinition } from "../assessments/definitions.js";
import { scoreAnswers, validateAnswers, type AssessmentResult } from "../assessments/scoring.js";
import { JobValidationError, PermanentJobError } from "../jobs/job-errors.js";
import type { JobHandler } from "./registry.js";

export const ASSESSMENT_JOB_TYPE = "assessment";

export interface AssessmentJobPayload {
  assessmentId: string;
}

export interface AssessmentSnapshot {
  id: string;
  kind: string;
  answers: unknown;
}

/** Validates a completed assessment's answers, scores them and returns a result ready to render and export. */
export function createAssessmentHandler(loadAssessment: (id: string) => Promise<AssessmentSnapshot | null>): JobHandler<AssessmentJobPayload, AssessmentResult & { assessmentId: string }> {
  return {
    type: ASSESSMENT_JOB_TYPE,
    validatePayload(payload) {
      const id = (payload as Partial<AssessmentJobPayload> | null)?.assessmentId;
      return typeof id === "string" && id.length > 0 ? [] : ["payload.assessmentId is required"];
    },
    async run(payload, context) {
      await context.progress("loading", 5);
      const assessment = await loadAssessment(payload.assessmentId);
      if (!assessment) throw new PermanentJobError("Assessment not found", { category: "PERMANENT_ERROR", details: { reason: "assessment_missing" } });
      const definition = findDefinition(assessment.kind);
      if (!definition) {
        throw new JobValidationError([{ field: "kind", rule: "unknown_kind", reason: "this assessment kind is not supported" }]);
      }

      await context.progress("validating", 20);
      const failures = validateAnswers(definition, assessment.answers);
      if (failures.length > 0) throw new JobValidationError(failures);

      await context.progress("scoring", 50);
      const result = scoreAnswers(definition, assessment.answers as Record<string, unknown>);

      await context.progress("finalizing", 90);
      context.signal.throwIfAborted();
      return { assessmentId: assessment.id, ...result };
    },
  };
}
