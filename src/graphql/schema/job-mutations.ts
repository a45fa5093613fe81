import type { ProcessingJob } from "../../generated/prisma/client.js";
import { ASSESSMENT_JOB_TYPE } from "../../handlers/assessment-handler.js";
import { InvalidJobInputError, UnknownJobTypeError } from "../../jobs/enqueue-errors.js";
import { JobsHeldError } from "../../jobs/lifecycle.js";
import { loadAccessible, requireViewer } from "../access.js";
import { builder } from "../builder.js";
import type { GraphQLContext } from "../context.js";
import { apiError, badInput, conflict, forbidden } from "../errors.js";
import { JobFilter, JobType, jobSelection } from "./job.js";
import { JobPriorityEnum } from "./scalars.js";

const findJob = (context: GraphQLContext) => (id: string) => context.services.prisma.processingJob.findUnique({ where: { id } });
const reloadJob = (context: GraphQLContext, id: string) => context.services.prisma.processingJob.findUniqueOrThrow({ where: { id } });

const EnqueueJobInput = builder.inputType("EnqueueJobInput", {
  fields: (t) => ({
    type: t.string({ required: true, description: "A registered handler's name." }),
    payload: t.field({ type: "JSON", required: false }),
    priority: t.field({
      type: JobPriorityEnum,
      required: false,
      description: "NORMAL unless given. HIGH is for operators: a user's HIGH is refused with FORBIDDEN.",
    }),
    runAt: t.field({ type: "DateTime", required: false, description: "Do not run before this time. A time in the past is stored as now." }),
    idempotencyKey: t.string({ required: false, description: "Calls with the same key get the same job back." }),
    maxAttempts: t.int({ required: false }),
  }),
});

const EnqueueJobPayload = builder.objectRef<{ created: boolean; job: ProcessingJob }>("EnqueueJobPayload").implement({
  fields: (t) => ({
    created: t.exposeBoolean("created", { description: "False when the idempotency key matched an existing job." }),
    job: t.field({ type: JobType, resolve: (parent) => parent.job }),
  }),
});

builder.mutationField("enqueueJob", (t) =>
  t.field({
    type: EnqueueJobPayload,
    authScopes: { authenticated: true },
    args: { input: t.arg({ type: EnqueueJobInput, required: true }) },
    resolve: async (_root, { input }, context) => {
      const viewer = requireViewer(context);
      const operator = viewer.role === "operator";
      // Types that act on data their payload names are enqueued by the code that checked its owner.
      if (!operator && context.services.jobs.enqueuedBy(input.type) === "operators") throw forbidden(`jobs of type "${input.type}": operators only`);
      // Claim order is priority first: a user's HIGH would jump everyone else's work.
      if (!operator && input.priority === "HIGH") throw forbidden("priority HIGH: operators only");
      let owner = viewer.id;
      // An operator's assessment job belongs to the assessment's owner, who gets its scores (the
      // handler refuses any other owner); operators see every job anyway.
      const assessmentId = (input.payload as { assessmentId?: unknown } | null | undefined)?.assessmentId;
      if (input.type === ASSESSMENT_JOB_TYPE && typeof assessmentId === "string") {
        owner = (await loadAccessible(context, assessmentId, "Assessment", (id) => context.services.assessments.find(id))).owner;
      }
      // A time in the past would put the job ahead of everything enqueued since then.
      const now = new Date();
      const runAt = input.runAt && input.runAt.getTime() < now.getTime() ? now : (input.runAt ?? null);
      try {
        const { job, created } = await context.services.jobs.enqueue(
          {
            type: input.type,
            owner,
            payload: input.payload ?? {},
            priority: input.priority ?? undefined,
            runAt,
            idempotencyKey: input.idempotencyKey ?? null,
            maxAttempts: input.maxAttempts ?? undefined,
          },
          viewer.id,
        );
        return { created, job: await reloadJob(context, job.id) };
      } catch (error) {
        if (error instanceof UnknownJobTypeError) throw badInput(error.message, [{ field: "input.type", message: "unknown job type" }]);
        if (error instanceof InvalidJobInputError) {
          throw badInput(`Invalid job: ${error.message}`, error.problems.map((problem) => ({ field: "input", message: problem })));
        }
        throw error;
      }
    },
  }),
);

/**
 * A lock held elsewhere past JOB_ACTION_LOCK_TIMEOUT_MS: CONFLICT, told apart from a job in the
 * wrong state (which trying again will not change) by `reason: "HELD"` and `retryable: true`.
 */
function heldConflict(error: JobsHeldError, message: string, extensions: Record<string, unknown> = {}) {
  return apiError("CONFLICT", `This call ${error.message}: ${message}`, { reason: "HELD", retryable: true, ...extensions });
}

async function heldAsConflict<T>(action: Promise<T>): Promise<T> {
  try {
    return await action;
  } catch (error) {
    if (error instanceof JobsHeldError) throw heldConflict(error, "nothing was changed. Try again.");
    throw error;
  }
}

builder.mutationField("retryJob", (t) =>
  t.prismaField({
    type: "ProcessingJob",
    description:
      "Puts a FAILED, VALIDATION_FAILED or CANCELLED job back in the queue with fresh attempts. A runAt still in the future is kept: a scheduled job keeps its schedule. CONFLICT with extensions.reason HELD (worth trying again) if another session holds the job's row for longer than JOB_ACTION_LOCK_TIMEOUT_MS (5 s by default).",
    authScopes: { authenticated: true },
    args: { id: t.arg.id({ required: true }) },
    resolve: async (query, _root, args, context) => {
      const job = await loadAccessible(context, String(args.id), "Job", findJob(context));
      const retried = await heldAsConflict(context.services.jobs.retry(job.id, context.viewer!.id));
      if (!retried) throw conflict(`Only failed, invalid or cancelled jobs can be retried; this one is ${job.status}`);
      return context.services.prisma.processingJob.findUniqueOrThrow({ ...query, where: { id: job.id } });
    },
  }),
);

const CancelOutcome = builder.enumType("CancelOutcome", {
  values: {
    CANCELLED: { description: "It was waiting and is now CANCELLED." },
    CANCEL_REQUESTED: { description: "It is running; its handler has been told to stop and it will end CANCELLED." },
  },
});

const CancelJobPayload = builder.objectRef<{ outcome: "CANCELLED" | "CANCEL_REQUESTED"; job: ProcessingJob }>("CancelJobPayload").implement({
  fields: (t) => ({
    outcome: t.field({ type: CancelOutcome, resolve: (parent) => parent.outcome }),
    job: t.field({ type: JobType, resolve: (parent) => parent.job }),
  }),
});

builder.mutationField("cancelJob", (t) =>
  t.field({
    type: CancelJobPayload,
    description: "Cancels a queued, retrying or running job. CONFLICT with extensions.reason HELD (worth trying again) if another session holds the job's row for longer than JOB_ACTION_LOCK_TIMEOUT_MS (5 s by default).",
    authScopes: { authenticated: true },
    args: { id: t.arg.id({ required: true }) },
    resolve: async (_root, args, context) => {
      const job = await loadAccessible(context, String(args.id), "Job", findJob(context));
      const result = await heldAsConflict(context.services.jobs.cancel(job.id, context.viewer!.id));
      if (result.outcome === "not-cancellable") throw conflict(`Only queued, retrying or running jobs can be cancelled; this one is ${job.status}`);
      return {
        outcome: result.outcome === "cancelled" ? ("CANCELLED" as const) : ("CANCEL_REQUESTED" as const),
        job: await reloadJob(context, job.id),
      };
    },
  }),
);

const CleanupJobsPayload = builder.objectRef<{ deleted: number }>("CleanupJobsPayload").implement({
  fields: (t) => ({ deleted: t.exposeInt("deleted", { description: "Finished jobs deleted, with their events." }) }),
});

builder.mutationField("cleanupJobs", (t) =>
  t.field({
    type: CleanupJobsPayload,
    description: "Operators: deletes finished jobs completed more than `olderThanSeconds` ago.",
    authScopes: { operator: true },
    args: { olderThanSeconds: t.arg.int({ required: true }) },
    resolve: async (_root, args, context) => {
      if (args.olderThanSeconds < 0) throw badInput("olderThanSeconds must be zero or more", [{ field: "olderThanSeconds", message: "negative" }]);
      return { deleted: await context.services.jobs.cleanup(args.olderThanSeconds * 1000) };
    },
  }),
);

const RecoverStalledJobsPayload = builder.objectRef<{ recovered: number; jobIds: string[] }>("RecoverStalledJobsPayload").implement({
  fields: (t) => ({
    recovered: t.exposeInt("recovered"),
    jobIds: t.exposeIDList("jobIds"),
  }),
});

builder.mutationField("recoverStalledJobs", (t) =>
  t.field({
    type: RecoverStalledJobsPayload,
    description: "Operators: moves running jobs whose heartbeat stopped back to RETRYING (or FAILED when out of attempts).",
    authScopes: { operator: true },
    resolve: async (_root, _args, context) => {
      const changes = await context.services.jobs.recoverStalled();
      return { recovered: changes.length, jobIds: changes.map((change) => change.jobId) };
    },
  }),
);

/** The most jobs one bulk call changes: a bounded statement, a bounded response. */
export const BULK_LIMIT_MAX = 1000;

const BulkJobAction = builder.enumType("BulkJobAction", {
  values: {
    RETRY: { description: "FAILED, VALIDATION_FAILED and CANCELLED jobs go back to the queue, like retryJob." },
    CANCEL: { description: "QUEUED and RETRYING jobs are cancelled at once; PROCESSING ones are asked to stop, like cancelJob." },
  },
});

interface BulkOutcome {
  action: "RETRY" | "CANCEL";
  changed: string[];
  cancelRequested: string[];
  limitReached: boolean;
}

const BulkJobActionPayload = builder.objectRef<BulkOutcome>("BulkJobActionPayload").implement({
  fields: (t) => ({
    action: t.field({ type: BulkJobAction, resolve: (outcome) => outcome.action }),
    changed: t.int({ description: "Jobs whose status changed (retried to QUEUED, or CANCELLED).", resolve: (outcome) => outcome.changed.length }),
    cancelRequested: t.int({
      description: "CANCEL only: running jobs asked to stop; each ends CANCELLED (or COMPLETED if it had already finished).",
      resolve: (outcome) => outcome.cancelRequested.length,
    }),
    jobIds: t.idList({ description: "Every job acted on: the changed ones, then those asked to stop.", resolve: (outcome) => [...outcome.changed, ...outcome.cancelRequested] }),
    limitReached: t.boolean({
      description: "True when the call chose `limit` jobs: more may match; call again for the next batch.",
      resolve: (outcome) => outcome.limitReached,
    }),
  }),
});

builder.mutationField("bulkJobAction", (t) =>
  t.field({
    type: BulkJobActionPayload,
    description: `Operators: retries or cancels the jobs matching \`filter\` (as in \`jobs\`), oldest first, at most \`limit\` per call (${BULK_LIMIT_MAX} by default and at most ${BULK_LIMIT_MAX}); jobs in a state the action does not apply to are left alone. Reports how many changed. A chosen job that another session holds for longer than JOB_ACTION_LOCK_TIMEOUT_MS (5 s by default) stops the call with CONFLICT, extensions.reason HELD: the step that waited changes nothing, and the error's extensions list the jobs the call changed before it (\`changed\`, \`cancelRequested\`).`,
    authScopes: { operator: true },
    args: {
      action: t.arg({ type: BulkJobAction, required: true }),
      filter: t.arg({ type: JobFilter, required: true }),
      limit: t.arg.int({ required: false, defaultValue: BULK_LIMIT_MAX }),
    },
    resolve: async (_root, args, context): Promise<BulkOutcome> => {
      const limit = args.limit ?? BULK_LIMIT_MAX;
      if (!Number.isInteger(limit) || limit < 1 || limit > BULK_LIMIT_MAX) {
        throw badInput(`limit must be from 1 to ${BULK_LIMIT_MAX}`, [{ field: "limit", message: "out of range" }]);
      }
      const selection = jobSelection(context, args.filter);
      const actor = requireViewer(context).id;
      try {
        if (args.action === "RETRY") {
          const { retried, limitReached } = await context.services.jobs.retrySelected(selection, limit, actor);
          return { action: "RETRY", changed: retried.map((change) => change.jobId), cancelRequested: [], limitReached };
        }
        const { cancelled, requested, limitReached } = await context.services.jobs.cancelSelected(selection, limit, actor);
        return { action: "CANCEL", changed: cancelled.map((change) => change.jobId), cancelRequested: requested, limitReached };
      } catch (error) {
        if (error instanceof JobsHeldError) {
          throw heldConflict(error, "it stopped there; what it changed before stays changed (extensions.changed, extensions.cancelRequested). Call again.", {
            changed: error.done.changed,
            cancelRequested: error.done.cancelRequested,
          });
        }
        throw error;
      }
    },
  }),
);
