import { forEachEvent } from "../../events/event-bus.js";
import type { JobChange } from "../../events/messages.js";
import { loadAccessible, requireViewer } from "../access.js";
import { builder } from "../builder.js";
import { guardStream } from "../streams.js";
import { jobProgressStream } from "../job-progress-stream.js";
import { readEagerly } from "../eager-reader.js";
import { apiError } from "../errors.js";
import type { GraphQLError } from "graphql";
import type { GraphQLContext } from "../context.js";
import { JobType } from "./job.js";
import { JobStatusEnum, LocaleEnum } from "./scalars.js";
import { userMessage } from "../../jobs/error-categories.js";
import type { Locale } from "../../i18n/locale.js";

// Categories whose stored details can make the message precise (a file problem names its line).
const PRECISE_CATEGORIES = new Set(["FILE_ERROR", "VALIDATION_ERROR"]);

const ProgressError = builder.objectRef<{ category: string; jobId: string }>("JobProgressError").implement({
  description: "The category of a failure and what to tell the user.",
  fields: (t) => ({
    category: t.exposeString("category"),
    message: t.string({
      args: { locale: t.arg({ type: LocaleEnum, required: false }) },
      resolve: async (error, args, context) => {
        // Events stay small: the details behind a precise message are read only when asked for.
        const details = PRECISE_CATEGORIES.has(error.category) ? (await context.services.jobs.find(error.jobId))?.errorDetails : undefined;
        return userMessage(error.category, (args.locale as Locale | null) ?? context.locale, details);
      },
    }),
  }),
});

export const JobChangeEvent = builder.objectRef<JobChange>("JobChangeEvent").implement({
  description: "A job's state after a transition or a progress report. Small on purpose: select `job` for the rest.",
  fields: (t) => ({
    jobId: t.exposeID("jobId"),
    type: t.exposeString("type"),
    status: t.field({ type: JobStatusEnum, resolve: (change) => change.status }),
    previousStatus: t.field({ type: JobStatusEnum, nullable: true, resolve: (change) => change.previousStatus }),
    stage: t.exposeString("stage", { nullable: true }),
    progress: t.exposeInt("progress"),
    bytesDone: t.exposeFloat("bytesDone", { nullable: true }),
    bytesTotal: t.exposeFloat("bytesTotal", { nullable: true }),
    retryCount: t.exposeInt("retryCount"),
    at: t.field({ type: "DateTime", resolve: (change) => change.at }),
    error: t.field({
      type: ProgressError,
      nullable: true,
      resolve: (change) => (change.errorCode && change.status !== "PROCESSING" ? { category: change.errorCode, jobId: change.jobId } : null),
    }),
    job: t.field({
      type: JobType,
      nullable: true,
      description: "The job as it is now (null once deleted).",
      resolve: (change, _args, context) => context.services.prisma.processingJob.findUnique({ where: { id: change.jobId } }),
    }),
  }),
});

builder.subscriptionField("jobProgress", (t) =>
  t.field({
    type: JobChangeEvent,
    description: "A job's status, stage, percent and retries as they change; its first event is the current state; ends after a final state.",
    authScopes: { authenticated: true },
    args: { jobId: t.arg.id({ required: true }) },
    subscribe: async (_root, args, context) => {
      // Refused here, at subscribe time, before any event: not found, forbidden or malformed.
      const job = await loadAccessible(context, String(args.jobId), "Job", (id) => context.services.jobs.find(id));
      return jobProgressStream(context.services, job.id);
    },
    resolve: (change) => change,
  }),
);

export const JobUpdatesFilter = builder.inputType("JobUpdatesFilter", {
  fields: (t) => ({
    status: t.field({ type: [JobStatusEnum], required: false }),
    type: t.string({ required: false }),
    owner: t.string({ required: false }),
  }),
});

builder.subscriptionField("jobUpdates", (t) =>
  t.field({
    type: JobChangeEvent,
    description: "Operators: every job change, for dashboards.",
    authScopes: { operator: true },
    args: { filter: t.arg({ type: JobUpdatesFilter, required: false }) },
    subscribe: (_root, args, context) => {
      requireViewer(context);
      return jobUpdatesStream(context, args.filter ?? {});
    },
    resolve: (change) => change,
  }),
);

type JobUpdatesSelection = { status?: readonly string[] | null; type?: string | null; owner?: string | null };

/**
 * Every job change that `filter` lets through, read eagerly (see readEagerly) and masked like every
 * stream's errors; it fails with EVENTS_INTERRUPTED when changes may have been lost. Like
 * jobProgressStream, leaving is immediate.
 */
function jobUpdatesStream(context: GraphQLContext, filter: JobUpdatesSelection): AsyncIterableIterator<JobChange> {
  const changes = readEagerly<JobChange>((listener, end) => listenToJobUpdates(context, filter, listener, end), {
    limit: JOB_UPDATES_BACKLOG,
    tooSlow: `This subscriber fell more than ${JOB_UPDATES_BACKLOG} changes behind; jobUpdateBatches follows any rate`,
  });
  return guardStream(changes, context.services.logger);
}

/**
 * Calls `listener` with every job change that `filter` lets through, as it is published, and
 * `interrupted` with EVENTS_INTERRUPTED when changes may have been lost; returns what stops both.
 * For readers that gather changes themselves (jobUpdateBatches).
 */
export function listenToJobUpdates(
  context: GraphQLContext,
  filter: JobUpdatesSelection,
  listener: (change: JobChange) => void,
  interrupted: (error: GraphQLError) => void,
): () => void {
  const matches = changeFilter(filter);
  const stopListening = forEachEvent<JobChange>(context.services.events, "jobs:changed", (change) => matches(change) && listener(change), context.services.logger);
  const stopWatching = context.services.events.onInterrupted(() => interrupted(eventsInterrupted()));
  return () => {
    stopListening();
    stopWatching();
  };
}

/**
 * Changes of every job are not caught up after an outage of the events' connection (a job's own
 * topic is: its current state is published again), so such a stream ends rather than go on with a
 * silent gap. Retryable: subscribe again and read the jobs afresh.
 */
function eventsInterrupted(): GraphQLError {
  return apiError("EVENTS_INTERRUPTED", "Live job changes were interrupted and some may be missing: subscribe again and read the jobs afresh", { retryable: true });
}

function changeFilter(filter: JobUpdatesSelection): (change: JobChange) => boolean {
  return (change) =>
    (!filter.status?.length || filter.status.includes(change.status)) &&
    (!filter.type || change.type === filter.type) &&
    (!filter.owner || change.owner === filter.owner);
}

/** Changes are kept for a slow client up to this many; then its subscription ends. */
const JOB_UPDATES_BACKLOG = 10_000;

