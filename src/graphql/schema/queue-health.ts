import { Repeater } from "@graphql-yoga/subscription";
import type { QueueHealthChange } from "../../events/messages.js";
import type { HealthStatus, QueueHealth, QueueStats } from "../../jobs/health.js";
import type { ThroughputBucket, ThroughputSeries } from "../../jobs/throughput-series.js";
import { builder } from "../builder.js";
import { badInput } from "../errors.js";
import { guardStream } from "../streams.js";

const HealthStatusEnum = builder.enumType("HealthStatus", { values: ["HEALTHY", "DEGRADED", "UNHEALTHY"] as const });

const StatusCounts = builder.objectRef<QueueStats["counts"]>("JobStatusCounts").implement({
  description: "Waiting and running jobs now; finished ones within the window.",
  fields: (t) => ({
    queued: t.exposeInt("queued"),
    processing: t.exposeInt("processing"),
    retrying: t.exposeInt("retrying"),
    completed: t.exposeInt("completed"),
    failed: t.exposeInt("failed"),
    validationFailed: t.exposeInt("validationFailed"),
    cancelled: t.exposeInt("cancelled"),
  }),
});

const TypeCount = builder.objectRef<QueueStats["byType"][number]>("JobTypeCount").implement({
  fields: (t) => ({ type: t.exposeString("type"), status: t.exposeString("status"), count: t.exposeInt("count") }),
});
const PriorityCount = builder.objectRef<QueueStats["byPriority"][number]>("JobPriorityCount").implement({
  fields: (t) => ({ priority: t.exposeString("priority"), status: t.exposeString("status"), count: t.exposeInt("count") }),
});
const CategoryCount = builder.objectRef<QueueStats["failuresByCategory"][number]>("ErrorCategoryCount").implement({
  fields: (t) => ({ category: t.exposeString("category"), count: t.exposeInt("count") }),
});
const Throughput = builder.objectRef<QueueStats["throughput"]>("Throughput").implement({
  description: "Jobs completed in the last hour, day and week.",
  fields: (t) => ({ lastHour: t.exposeInt("lastHour"), lastDay: t.exposeInt("lastDay"), lastWeek: t.exposeInt("lastWeek") }),
});

const QueueStatsType = builder.objectRef<QueueStats>("QueueStats").implement({
  fields: (t) => ({
    windowSeconds: t.int({ resolve: (stats) => Math.round(stats.windowMs / 1000) }),
    counts: t.field({ type: StatusCounts, resolve: (stats) => stats.counts }),
    byType: t.field({ type: [TypeCount], resolve: (stats) => stats.byType }),
    byPriority: t.field({ type: [PriorityCount], resolve: (stats) => stats.byPriority }),
    failuresByCategory: t.field({ type: [CategoryCount], resolve: (stats) => stats.failuresByCategory }),
    successRate: t.exposeFloat("successRate", { nullable: true, description: "0–1; null when nothing finished in the window." }),
    averageProcessingMs: t.exposeFloat("averageProcessingMs", { nullable: true }),
    averageQueueMs: t.exposeFloat("averageQueueMs", { nullable: true }),
    throughput: t.field({ type: Throughput, resolve: (stats) => stats.throughput }),
    stalled: t.exposeInt("stalled", { description: "Running jobs whose heartbeat stopped." }),
    oldestQueuedAgeMs: t.exposeFloat("oldestQueuedAgeMs", { nullable: true }),
  }),
});

const QueueHealthType = builder.objectRef<QueueHealth>("QueueHealth").implement({
  fields: (t) => ({
    status: t.field({ type: HealthStatusEnum, resolve: (health) => health.status }),
    reasons: t.exposeStringList("reasons", { description: "Every threshold crossed; empty when healthy." }),
    checkedAt: t.field({ type: "DateTime", resolve: (health) => health.checkedAt }),
    stats: t.field({ type: QueueStatsType, resolve: (health) => health }),
  }),
});

builder.queryField("queueHealth", (t) =>
  t.field({
    type: QueueHealthType,
    description: "Operators: HEALTHY, DEGRADED or UNHEALTHY, with the reasons and the figures behind them.",
    authScopes: { operator: true },
    resolve: (_root, _args, context) => context.services.jobs.health(),
  }),
);

builder.queryField("queueStats", (t) =>
  t.field({
    type: QueueStatsType,
    description: "Operators: queue figures over a window (default one hour, at most 7 days).",
    authScopes: { operator: true },
    args: { windowSeconds: t.arg.int({ required: false, defaultValue: 3600 }) },
    resolve: (_root, args, context) => {
      const seconds = args.windowSeconds ?? 3600;
      if (seconds < 1 || seconds > 7 * 24 * 3600) {
        throw badInput("windowSeconds must be from 1 to 604800 (7 days)", [{ field: "windowSeconds", message: "out of range" }]);
      }
      return context.services.jobs.stats(seconds * 1000);
    },
  }),
);

const ThroughputRangeEnum = builder.enumType("ThroughputRange", {
  values: {
    HOUR: { description: "The last hour in 5-minute buckets." },
    DAY: { description: "The last 24 hours in 1-hour buckets." },
    WEEK: { description: "The last 7 days in 6-hour buckets." },
  },
});

const ThroughputBucketType = builder.objectRef<ThroughputBucket>("ThroughputBucket").implement({
  fields: (t) => ({
    start: t.field({ type: "DateTime", resolve: (bucket) => bucket.start }),
    completed: t.exposeInt("completed"),
    failed: t.exposeInt("failed", { description: "FAILED and VALIDATION_FAILED jobs." }),
    successRate: t.float({
      nullable: true,
      description: "completed ÷ (completed + failed); null when nothing finished in the bucket.",
      resolve: (bucket) => (bucket.completed + bucket.failed === 0 ? null : bucket.completed / (bucket.completed + bucket.failed)),
    }),
  }),
});

const ThroughputSeriesType = builder.objectRef<ThroughputSeries>("ThroughputSeries").implement({
  description: "Jobs finished per time bucket, for charts.",
  fields: (t) => ({
    range: t.field({ type: ThroughputRangeEnum, resolve: (series) => series.range }),
    bucketSeconds: t.int({ resolve: (series) => series.bucketMs / 1000 }),
    buckets: t.field({ type: [ThroughputBucketType], description: "Oldest first, empty buckets included; the last ends now.", resolve: (series) => series.buckets }),
  }),
});

builder.queryField("queueThroughput", (t) =>
  t.field({
    type: ThroughputSeriesType,
    description:
      "Operators: completed and failed jobs per bucket over the last hour, day or week. Computed at most once per HEALTH_CACHE_MS like queueHealth, and at most every 10 s for DAY and every 60 s for WEEK.",
    authScopes: { operator: true },
    args: { range: t.arg({ type: ThroughputRangeEnum, required: true }) },
    resolve: (_root, args, context) => context.services.jobs.throughput(args.range),
  }),
);

const QueueHealthChangeType = builder.objectRef<QueueHealthChange>("QueueHealthChange").implement({
  fields: (t) => ({
    status: t.field({ type: HealthStatusEnum, resolve: (change) => change.status }),
    previousStatus: t.field({ type: HealthStatusEnum, nullable: true, resolve: (change) => change.previousStatus }),
    reasons: t.exposeStringList("reasons"),
    at: t.field({ type: "DateTime", resolve: (change) => change.at }),
  }),
});

builder.subscriptionField("queueHealthChanged", (t) =>
  t.field({
    type: QueueHealthChangeType,
    description: "Operators: the current health, then an event each time the status changes.",
    authScopes: { operator: true },
    subscribe: async (_root, _args, context) => {
      const { healthMonitor, jobs, logger } = context.services;
      const current = await jobs.health();
      const source = new Repeater<QueueHealthChange>(async (push, stop) => {
        await push(healthChange(current, null));
        let last = current.status;
        const unlisten = healthMonitor.listen((health) => {
          if (health.status === last) return;
          const event = healthChange(health, last);
          last = health.status;
          void push(event);
        });
        await stop;
        unlisten();
      });
      return guardStream(source, logger);
    },
    resolve: (change) => change,
  }),
);

/** A check's result as this subscriber's change, from the status it showed before. */
function healthChange(health: QueueHealth, previousStatus: HealthStatus | null): QueueHealthChange {
  return { status: health.status, previousStatus, reasons: health.reasons, at: health.checkedAt.toISOString() };
}
