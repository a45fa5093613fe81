import type { GraphQLResolveInfo } from "graphql";
import type { ProcessingJob } from "../../generated/prisma/client.js";
import type { Prisma } from "../../generated/prisma/client.js";
import { userMessage } from "../../jobs/error-categories.js";
import type { QueueStats } from "../../jobs/health.js";
import type { JobSelection } from "../../jobs/lifecycle.js";
import { isTerminalStatus, RUNNABLE_STATUSES, type JobStatus } from "../../jobs/types.js";
import type { Locale } from "../../i18n/locale.js";
import { loadAccessible, requireListableCursors, requireUuid, requireViewer } from "../access.js";
import { builder, PAGE_DEFAULT, PAGE_MAX } from "../builder.js";
import { once, type GraphQLContext } from "../context.js";
import { askedJobColumns } from "../job-columns.js";
import { badInput, forbidden } from "../errors.js";
import { JobPriorityEnum, JobStatusEnum, LocaleEnum } from "./scalars.js";

interface JobErrorShape {
  category: string;
  technicalMessage: string | null;
  details: unknown;
  recoverable: boolean | null;
}

const JobError = builder.objectRef<JobErrorShape>("JobError").implement({
  description: "Why a job failed: a category, a message for the user, and raw details for operators.",
  fields: (t) => ({
    category: t.exposeString("category", { description: "VALIDATION_ERROR, TIMEOUT, CANCELLED, STALLED, FILE_ERROR, NETWORK_ERROR, QUEUE_ERROR, WORKER_ERROR, PERMANENT_ERROR or RESULT_ERROR; text rather than an enum, so a new category never breaks an old client." }),
    message: t.string({
      description: "What to tell the user, in their language.",
      args: { locale: t.arg({ type: LocaleEnum, required: false }) },
      resolve: (error, args, context) => userMessage(error.category, (args.locale as Locale | null) ?? context.locale, error.details),
    }),
    recoverable: t.boolean({ nullable: true, resolve: (error) => error.recoverable }),
    technicalMessage: t.string({
      nullable: true,
      description: "The handler's own (redacted) message. Operators only; null for users.",
      resolve: (error, _args, context) => (context.viewer?.role === "operator" ? error.technicalMessage : null),
    }),
    details: t.field({
      type: "JSON",
      nullable: true,
      description: "Structured, redacted details. Operators only; null for users.",
      resolve: (error, _args, context) => (context.viewer?.role === "operator" ? error.details : null),
    }),
  }),
});

builder.prismaObject("JobEvent", {
  description: "One step in a job's history: a transition or a new stage.",
  fields: (t) => ({
    id: t.id({ resolve: (event) => String(event.id) }),
    fromStatus: t.field({ type: JobStatusEnum, nullable: true, resolve: (event) => event.fromStatus }),
    toStatus: t.field({ type: JobStatusEnum, resolve: (event) => event.toStatus }),
    attempt: t.exposeInt("attempt"),
    stage: t.exposeString("stage", { nullable: true }),
    progress: t.exposeInt("progress", { nullable: true }),
    message: t.exposeString("message", { nullable: true }),
    at: t.expose("at", { type: "DateTime" }),
  }),
});

export const JobType = builder.prismaObject("ProcessingJob", {
  name: "Job",
  description: "A unit of background work and everything recorded about its life.",
  fields: (t) => ({
    id: t.exposeID("id"),
    type: t.exposeString("type", { description: "The handler that runs it." }),
    owner: t.exposeString("owner"),
    correlationId: t.exposeString("correlationId"),
    schemaVersion: t.exposeString("schemaVersion"),
    idempotencyKey: t.exposeString("idempotencyKey", { nullable: true }),
    status: t.field({ type: JobStatusEnum, resolve: (job) => job.status }),
    stage: t.exposeString("stage", { nullable: true }),
    progress: t.exposeInt("progress", { description: "0–100." }),
    bytesDone: t.float({ nullable: true, resolve: (job) => (job.bytesDone === null ? null : Number(job.bytesDone)) }),
    bytesTotal: t.float({ nullable: true, resolve: (job) => (job.bytesTotal === null ? null : Number(job.bytesTotal)) }),
    priority: t.field({ type: JobPriorityEnum, resolve: (job) => job.priority }),
    retryCount: t.exposeInt("retryCount", { description: "Retries so far; the current attempt is retryCount + 1." }),
    maxAttempts: t.exposeInt("maxAttempts"),
    runAt: t.expose("runAt", { type: "DateTime", description: "Not run before this time." }),
    lastRetryAt: t.expose("lastRetryAt", { type: "DateTime", nullable: true }),
    createdAt: t.expose("createdAt", { type: "DateTime" }),
    updatedAt: t.expose("updatedAt", { type: "DateTime" }),
    startedAt: t.expose("startedAt", { type: "DateTime", nullable: true, description: "Start of the latest attempt." }),
    completedAt: t.expose("completedAt", { type: "DateTime", nullable: true, description: "When it reached a final state." }),
    processingTimeMs: t.exposeInt("processingTimeMs", { nullable: true, description: "Duration of the latest attempt." }),
    cancelRequestedAt: t.expose("cancelRequestedAt", { type: "DateTime", nullable: true }),
    heartbeatAt: t.expose("heartbeatAt", { type: "DateTime", nullable: true }),
    lockedBy: t.string({
      nullable: true,
      description: "The worker running it. Operators only.",
      resolve: (job, _args, context) => (context.viewer?.role === "operator" ? job.lockedBy : null),
    }),
    payload: t.expose("payload", { type: "JSON" }),
    result: t.expose("result", { type: "JSON", nullable: true }),
    metadata: t.expose("metadata", { type: "JSON" }),
    error: t.field({
      type: JobError,
      nullable: true,
      resolve: (job) =>
        job.errorCode
          ? { category: job.errorCode, technicalMessage: job.errorMessage, details: job.errorDetails, recoverable: job.errorRecoverable }
          : null,
    }),
    queuePosition: t.int({
      nullable: true,
      description: "While waiting, 1 + the jobs claims will take before it: those before it in its own priority, and those of a higher priority due by the time it is due (now, or its runAt if later). Null otherwise.",
      resolve: (job, _args, context, info) => (isWaiting(job.status) ? positionOf(context, info, job.id) : null),
    }),
    estimatedStartAt: t.field({
      type: "DateTime",
      nullable: true,
      description: "From the last hour's throughput and the queue position; null once started or without history.",
      resolve: async (job, _args, context, info) => {
        if (!isWaiting(job.status)) return null;
        // Asked for together, so that every job's position joins the page's one batch.
        const [stats, position] = await Promise.all([recentStats(context, info), positionOf(context, info, job.id)]);
        return estimateStart(job, stats, position);
      },
    }),
    estimatedCompletionAt: t.field({
      type: "DateTime",
      nullable: true,
      description: "Start (or estimated start) plus the recent average processing time; null when finished or without history.",
      resolve: async (job, _args, context, info) => {
        if (isTerminalStatus(job.status)) return null;
        const [stats, position] = await Promise.all([recentStats(context, info), isWaiting(job.status) ? positionOf(context, info, job.id) : null]);
        if (stats.averageProcessingMs === null) return null;
        const start = job.status === "PROCESSING" ? job.startedAt : estimateStart(job, stats, position);
        return start ? new Date(start.getTime() + stats.averageProcessingMs) : null;
      },
    }),
    events: t.relation("events", {
      description: `The job's timeline, oldest first: the first \`first\` events (${EVENTS_DEFAULT} by default, ${EVENTS_MAX} at most).`,
      args: { first: t.arg.int({ required: false }) },
      query: (args) => ({ orderBy: { id: "asc" }, take: eventsLimit(args.first) }),
      // Every event is a row read and sent: the cost is per event, not per list.
      complexity: (args) => ({ field: 1, multiplier: Math.min(Math.max(args.first ?? EVENTS_DEFAULT, 0), EVENTS_MAX) }),
    }),
    assessment: t.relation("assessment", { nullable: true }),
  }),
});

function isWaiting(status: JobStatus): boolean {
  return (RUNNABLE_STATUSES as string[]).includes(status);
}

/** The last hour's figures, for estimates (JobService.recentStats: shared between requests too). */
function recentStats(context: GraphQLContext, info: GraphQLResolveInfo): Promise<QueueStats> {
  return once(context, info, "recent-stats", () => context.services.jobs.recentStats());
}

const EVENTS_DEFAULT = 100;
const EVENTS_MAX = 500;

function eventsLimit(first: number | null | undefined): number {
  if (first === null || first === undefined) return EVENTS_DEFAULT;
  if (!Number.isInteger(first) || first < 0 || first > EVENTS_MAX) {
    throw badInput(`events(first:) must be from 0 to ${EVENTS_MAX}`, [{ field: "first", message: `0 to ${EVENTS_MAX}` }]);
  }
  return first;
}

/**
 * One statement for the positions of every job a request (or a subscription event) asks about:
 * the ids asked for while the request resolves a page are collected, then read together once
 * the resolvers that asked are waiting.
 */
class QueuePositionBatch {
  private readonly positions = new Map<string, Promise<number | null>>();
  private pending: { id: string; resolve: (position: number | null) => void; reject: (error: unknown) => void }[] = [];

  constructor(private readonly load: (ids: string[]) => Promise<Map<string, number | null>>) {}

  get(id: string): Promise<number | null> {
    let position = this.positions.get(id);
    if (!position) {
      position = new Promise((resolve, reject) => {
        if (this.pending.length === 0) setImmediate(() => this.flush());
        this.pending.push({ id, resolve, reject });
      });
      this.positions.set(id, position);
    }
    return position;
  }

  private flush(): void {
    const batch = this.pending;
    this.pending = [];
    this.load(batch.map((entry) => entry.id)).then(
      (positions) => batch.forEach((entry) => entry.resolve(positions.get(entry.id) ?? null)),
      (error) => batch.forEach((entry) => entry.reject(error)),
    );
  }
}

async function positionOf(context: GraphQLContext, info: GraphQLResolveInfo, jobId: string): Promise<number | null> {
  const batch = await once(context, info, "queue-positions", async () => new QueuePositionBatch((ids) => context.services.jobs.queuePositions(ids)));
  return batch.get(jobId);
}

function estimateStart(job: Pick<ProcessingJob, "runAt">, stats: QueueStats, position: number | null): Date | null {
  if (position === null) return null;
  const perSecond = stats.throughput.lastHour / 3600;
  const waitMs = perSecond > 0 ? ((position - 1) / perSecond) * 1000 : stats.averageQueueMs;
  if (waitMs === null) return null;
  return new Date(Math.max(job.runAt.getTime(), Date.now() + waitMs));
}

builder.queryField("job", (t) =>
  t.prismaField({
    type: "ProcessingJob",
    args: { id: t.arg.id({ required: true }) },
    authScopes: { authenticated: true },
    resolve: async (query, _root, args, context) => {
      // Without a relation to include, the row alone answers: the jobs layer reads it with a
      // prepared statement at a fraction of the client's CPU (JobService.findRecord).
      const rowAlone = !("include" in query) && !("select" in query);
      const job = await loadAccessible(context, String(args.id), "Job", (id) =>
        rowAlone ? context.services.jobs.findRecord(id) : context.services.prisma.processingJob.findUnique({ ...query, where: { id } }),
      );
      (context.jobsRead ??= []).push({ id: job.id, status: job.status });
      return job;
    },
  }),
);

export const JobFilter = builder.inputType("JobFilter", {
  fields: (t) => ({
    status: t.field({ type: [JobStatusEnum], required: false }),
    type: t.string({ required: false }),
    assessmentId: t.id({ required: false }),
    owner: t.string({ required: false, description: "Operators only; users always see their own jobs." }),
    createdAfter: t.field({ type: "DateTime", required: false }),
    createdBefore: t.field({ type: "DateTime", required: false }),
  }),
});

builder.queryField("jobs", (t) =>
  t.prismaConnection({
    type: "ProcessingJob",
    cursor: "id",
    description: "Jobs, newest first. Users see their own; operators see all and may filter by owner.",
    authScopes: { authenticated: true },
    defaultSize: PAGE_DEFAULT,
    maxSize: PAGE_MAX,
    args: { filter: t.arg({ type: JobFilter, required: false }) },
    resolve: async (query, _root, args, context, info) => {
      const selection = jobSelection(context, args.filter);
      await requireListableCursors(args, async (id) => {
        const job = await context.services.prisma.processingJob.findUnique({ where: { id }, select: { owner: true } });
        return job !== null && (selection.owner === undefined || job.owner === selection.owner);
      });
      const where: Prisma.ProcessingJobWhereInput = {
        owner: selection.owner,
        status: selection.statuses?.length ? { in: [...selection.statuses] } : undefined,
        type: selection.type,
        assessmentId: selection.assessmentId,
        createdAt: selection.createdAfter || selection.createdBefore ? { gte: selection.createdAfter, lt: selection.createdBefore } : undefined,
      };
      return findJobPage(context, query, info, where);
    },
  }),
);

/**
 * A page of a connection of jobs, newest first, reading only the columns its fields ask for
 * (job-columns.ts). The rows lack the columns left out, which none of the asked fields reads.
 */
export function findJobPage(context: GraphQLContext, query: object, info: GraphQLResolveInfo, where: Prisma.ProcessingJobWhereInput): Promise<ProcessingJob[]> {
  const orderBy: Prisma.ProcessingJobOrderByWithRelationInput[] = [{ createdAt: "desc" }, { id: "desc" }];
  const columns = "select" in query ? undefined : askedJobColumns(info);
  if (!columns) return context.services.prisma.processingJob.findMany({ ...query, where, orderBy });
  // The relations Pothos includes keep their arguments as a select's entries.
  const { include, ...rest } = query as { include?: Prisma.ProcessingJobInclude };
  const select: Prisma.ProcessingJobSelect = { ...include };
  for (const column of columns) select[column] = true;
  return context.services.prisma.processingJob.findMany({ ...rest, select, where, orderBy }) as Promise<ProcessingJob[]>;
}

/**
 * The jobs a JobFilter chooses for the caller: users only ever their own (another owner is
 * FORBIDDEN), operators anyone's; shared by the jobs list and the bulk actions, so both read a
 * filter the same way.
 */
export function jobSelection(context: GraphQLContext, filter: typeof JobFilter.$inferInput | null | undefined): JobSelection {
  const viewer = requireViewer(context);
  const given = filter ?? {};
  if (given.owner && viewer.role !== "operator" && given.owner !== viewer.id) throw forbidden("other users' jobs");
  return {
    owner: viewer.role === "operator" ? (given.owner ?? undefined) : viewer.id,
    statuses: given.status?.length ? given.status : undefined,
    type: given.type ?? undefined,
    assessmentId: given.assessmentId ? requireUuid(String(given.assessmentId), "filter.assessmentId") : undefined,
    createdAfter: given.createdAfter ?? undefined,
    createdBefore: given.createdBefore ?? undefined,
  };
}
