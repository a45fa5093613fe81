import { AssessmentConflictError, AssessmentInputError, AssessmentNotFoundError } from "../../assessments/assessment-service.js";
import { ASSESSMENT_DEFINITIONS } from "../../assessments/definitions.js";
import { translate } from "../../i18n/messages.js";
import type { Locale } from "../../i18n/locale.js";
import type { ProcessingJob, Assessment } from "../../generated/prisma/client.js";
import { loadAccessible, requireListableCursors, requireViewer } from "../access.js";
import { builder } from "../builder.js";
import type { GraphQLContext } from "../context.js";
import { badInput, conflict, notFound } from "../errors.js";
import { findJobPage, JobType } from "./job.js";
import { AssessmentStatusEnum, LocaleEnum } from "./scalars.js";

const AssessmentType = builder.prismaObject("Assessment", {
  description: "A questionnaire a user fills in; completing it starts its processing job.",
  fields: (t) => ({
    id: t.exposeID("id"),
    owner: t.exposeString("owner"),
    kind: t.exposeString("kind"),
    answers: t.expose("answers", { type: "JSON" }),
    status: t.field({ type: AssessmentStatusEnum, resolve: (assessment) => assessment.status }),
    completedAt: t.expose("completedAt", { type: "DateTime", nullable: true }),
    createdAt: t.expose("createdAt", { type: "DateTime" }),
    updatedAt: t.expose("updatedAt", { type: "DateTime" }),
    // Not a relatedConnection: its query cannot wait for the cursor's check.
    jobs: t.prismaConnection({
      type: "ProcessingJob",
      cursor: "id",
      resolve: async (query, assessment, args, context, info) => {
        await requireListableCursors(args, async (id) => {
          const job = await context.services.prisma.processingJob.findUnique({ where: { id }, select: { assessmentId: true } });
          return job?.assessmentId === assessment.id;
        });
        return findJobPage(context, query, info, { assessmentId: assessment.id });
      },
    }),
  }),
});

const findAssessment = (context: GraphQLContext) => (id: string) => context.services.assessments.find(id);

builder.queryField("assessment", (t) =>
  t.prismaField({
    type: "Assessment",
    authScopes: { authenticated: true },
    args: { id: t.arg.id({ required: true }) },
    resolve: async (query, _root, args, context) => {
      const found = await loadAccessible(context, String(args.id), "Assessment", findAssessment(context));
      return context.services.prisma.assessment.findUniqueOrThrow({ ...query, where: { id: found.id } });
    },
  }),
);

builder.queryField("assessmentKinds", (t) =>
  t.stringList({ description: "The kinds of assessment that can be created.", resolve: () => [...ASSESSMENT_DEFINITIONS.keys()] }),
);

function answersObject(value: unknown, field: string): Record<string, unknown> {
  if (value === null || value === undefined) return {};
  if (typeof value !== "object" || Array.isArray(value)) throw badInput(`${field} must be an object keyed by question id`, [{ field, message: "expected an object" }]);
  return value as Record<string, unknown>;
}

function mapAssessmentError(error: unknown): never {
  if (error instanceof AssessmentInputError) throw badInput(error.message);
  if (error instanceof AssessmentConflictError) throw conflict(error.message);
  if (error instanceof AssessmentNotFoundError) throw notFound("Assessment");
  throw error;
}

builder.mutationField("createAssessment", (t) =>
  t.prismaField({
    type: "Assessment",
    authScopes: { authenticated: true },
    args: { kind: t.arg.string({ required: true }), answers: t.arg({ type: "JSON", required: false }) },
    resolve: async (_query, _root, args, context) => {
      const viewer = requireViewer(context);
      return context.services.assessments.create(viewer.id, args.kind, answersObject(args.answers, "answers")).catch(mapAssessmentError);
    },
  }),
);

builder.mutationField("saveAssessmentAnswers", (t) =>
  t.prismaField({
    type: "Assessment",
    description: "Replaces the answers of an assessment still in progress (CONFLICT once completed).",
    authScopes: { authenticated: true },
    args: { id: t.arg.id({ required: true }), answers: t.arg({ type: "JSON", required: true }) },
    resolve: async (_query, _root, args, context) => {
      const assessment = await loadAccessible(context, String(args.id), "Assessment", findAssessment(context));
      return context.services.assessments.saveAnswers(assessment.id, answersObject(args.answers, "answers")).catch(mapAssessmentError);
    },
  }),
);

interface CompletionPayload {
  assessment: Assessment;
  job: ProcessingJob | null;
  alreadyCompleted: boolean;
  jobExpired: boolean;
  correlationId: string;
  locale: Locale;
}

const CompleteAssessmentPayload = builder.objectRef<CompletionPayload>("CompleteAssessmentPayload").implement({
  fields: (t) => ({
    assessment: t.field({ type: AssessmentType, resolve: (payload) => payload.assessment }),
    job: t.field({
      type: JobType,
      nullable: true,
      description:
        "The processing job; null if it could not be created (the completion still stands; call again), or if it was processed and has since been deleted by retention (jobExpired).",
      resolve: (payload) => payload.job,
    }),
    jobCreated: t.boolean({ description: "Whether a job exists for this completion.", resolve: (payload) => payload.job !== null }),
    alreadyCompleted: t.exposeBoolean("alreadyCompleted", { description: "True when an earlier call completed it; the same job comes back." }),
    jobExpired: t.exposeBoolean("jobExpired", {
      description: "True when this completion was processed and its job has since been deleted by retention: no new job is created.",
    }),
    correlationId: t.exposeString("correlationId"),
    message: t.string({
      description: "What to tell the user, in their language.",
      resolve: (payload) =>
        translate(payload.jobExpired ? "assessment.jobExpired" : payload.job === null ? "assessment.jobNotCreated" : payload.alreadyCompleted ? "assessment.alreadyCompleted" : "assessment.completed", payload.locale),
    }),
  }),
});

builder.mutationField("completeAssessment", (t) =>
  t.field({
    type: CompleteAssessmentPayload,
    description:
      "Completes the assessment and creates its processing job exactly once per (assessment, correlation id): repeated or concurrent calls get the same job.",
    authScopes: { authenticated: true },
    args: {
      id: t.arg.id({ required: true }),
      correlationId: t.arg.string({ required: false, description: "Defaults to one derived from the assessment, stable across calls." }),
      locale: t.arg({ type: LocaleEnum, required: false }),
    },
    resolve: async (_root, args, context) => {
      const assessment = await loadAccessible(context, String(args.id), "Assessment", findAssessment(context));
      if (args.correlationId !== null && args.correlationId !== undefined && (args.correlationId.trim() === "" || args.correlationId.length > 200)) {
        throw badInput("correlationId must be 1 to 200 characters", [{ field: "correlationId", message: "invalid length" }]);
      }
      const result = await context.services.assessments.complete(assessment.id, context.viewer!.id, args.correlationId).catch(mapAssessmentError);
      const [fresh, job] = await Promise.all([
        context.services.prisma.assessment.findUniqueOrThrow({ where: { id: assessment.id } }),
        result.job ? context.services.prisma.processingJob.findUnique({ where: { id: result.job.id } }) : null,
      ]);
      return {
        assessment: fresh,
        job,
        alreadyCompleted: result.alreadyCompleted,
        jobExpired: result.jobExpired,
        correlationId: result.correlationId,
        locale: (args.locale as Locale | null) ?? context.locale,
      };
    },
  }),
);
