import type { JobChange } from "../../events/messages.js";
import { changeOf } from "../../jobs/lifecycle.js";
import { TERMINAL_STATUSES } from "../../jobs/types.js";
import { loadAccessible, requireViewer } from "../access.js";
import { builder } from "../builder.js";
import type { GraphQLContext } from "../context.js";
import { guardStream } from "../streams.js";
import { JobType } from "./job.js";
import { JobStatusEnum, LocaleEnum } from "./scalars.js";
import { userMessage } from "../../jobs/error-categories.js";
import type { Locale } from "../../i18n/locale.js";

const ProgressError = builder.objectRef<{ category: string }>("JobProgressError").implement({
  description: "The category of a failure and what to tell the user.",
  fields: (t) => ({
    category: t.exposeString("category"),
    message: t.string({
      args: { locale: t.arg({ type: LocaleEnum, required: false }) },
      resolve: (error, args, context) => userMessage(error.category, (args.locale as Locale | null) ?? context.locale),
    }),
  }),
});

const JobChangeEvent = builder.objectRef<JobChange>("JobChangeEvent").implement({
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
      resolve: (change) => (change.errorCode && change.status !== "PROCESSING" ? { category: change.errorCode } : null),
    }),
    job: t.field({
      type: JobType,
      nullable: true,
      description: "The job as it is now (null once deleted).",
      resolve: (change, _args, context) => context.services.prisma.processingJob.findUnique({ where: { id: change.jobId } }),
    }),
  }),
});

const isTerminal = (status: string) => (TERMINAL_STATUSES as string[]).includes(status);

/**
 * The job's current state first (so a late subscriber misses nothing), then every change, ending
 * after a terminal state. Listening starts before the current state is read, so nothing falls
 * between the two.
 */
async function* jobProgressStream(context: GraphQLContext, jobId: string): AsyncGenerator<JobChange> {
  const changes = context.services.events.pubsub.subscribe("job:changed", jobId)[Symbol.asyncIterator]();
  let pending: Promise<IteratorResult<JobChange>> | null = changes.next();
  // It is awaited only after the snapshot; until then a failure must not count as unhandled,
  // which would take the whole process down.
  pending.catch(() => {});
  try {
    const row = await context.services.jobs.find(jobId);
    if (!row) return;
    const snapshot = changeOf(row, null);
    yield snapshot;
    if (isTerminal(snapshot.status)) return;
    while (pending) {
      const next: IteratorResult<JobChange> = await pending;
      if (next.done) return;
      pending = null;
      const change = next.value;
      // Changes committed before the snapshot was read are already in it.
      if (change.at >= snapshot.at && !(change.at === snapshot.at && change.status === snapshot.status && change.progress === snapshot.progress)) {
        yield change;
        if (isTerminal(change.status)) return;
      }
      pending = changes.next();
      pending.catch(() => {});
    }
  } finally {
    await changes.return?.();
  }
}

builder.subscriptionField("jobProgress", (t) =>
  t.field({
    type: JobChangeEvent,
    description: "A job's status, stage, percent and retries as they change; its first event is the current state; ends after a final state.",
    authScopes: { authenticated: true },
    args: { jobId: t.arg.id({ required: true }) },
    subscribe: async (_root, args, context) => {
      // Refused here, at subscribe time, before any event: not found, forbidden or malformed.
      const job = await loadAccessible(context, String(args.jobId), "Job", (id) => context.services.jobs.find(id));
      return guardStream(jobProgressStream(context, job.id), context.services.logger);
    },
    resolve: (change) => change,
  }),
);

const JobUpdatesFilter = builder.inputType("JobUpdatesFilter", {
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
      const filter = args.filter ?? {};
      const source = context.services.events.pubsub.subscribe("jobs:changed");
      const matches = (change: JobChange) =>
        (!filter.status?.length || filter.status.includes(change.status)) &&
        (!filter.type || change.type === filter.type) &&
        (!filter.owner || change.owner === filter.owner);
      return guardStream(filterStream(source, matches), context.services.logger);
    },
    resolve: (change) => change,
  }),
);

async function* filterStream<T>(source: AsyncIterable<T>, keep: (value: T) => boolean): AsyncGenerator<T> {
  for await (const value of source) if (keep(value)) yield value;
}
