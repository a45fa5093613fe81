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
  owner: string;
  kind: string;
  answers: unknown;
}

/** Validates a completed assessment's answers, scores them and returns a result ready to render and export. */
export function createAssessmentHandler(loadAssessment: (id: string) => Promise<AssessmentSnapshot | null>): JobHandler<AssessmentJobPayload, AssessmentResult & { assessmentId: string }> {
  return {
    type: ASSESSMENT_JOB_TYPE,
    // The payload names an assessment, and the job's result hands its scores to the job's owner:
    // completeAssessment (which checked the owner) and operators enqueue these, users never do.
    enqueuedBy: "operators",
    validatePayload(payload) {
      const id = (payload as Partial<AssessmentJobPayload> | null)?.assessmentId;
      return typeof id === "string" && id.length > 0 ? [] : ["payload.assessmentId is required"];
    },
    async run(payload, context) {
      await context.progress("loading", 5);
      const assessment = await loadAssessment(payload.assessmentId);
      if (!assessment) throw new PermanentJobError("Assessment not found", { category: "PERMANENT_ERROR", details: { reason: "assessment_missing" } });
      // Defence in depth behind enqueueJob's rule: whoever enqueued it, one user's scores never
      // become another's result. Neither owner goes in the error: it is shown to the job's owner.
      if (assessment.owner !== context.job.owner) {
        throw new PermanentJobError("The assessment's owner does not match the job's owner", {
          category: "PERMANENT_ERROR",
          details: { reason: "owner_mismatch" },
        });
      }
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
