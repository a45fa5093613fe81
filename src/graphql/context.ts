import type { GraphQLResolveInfo } from "graphql";
import type { AssessmentService } from "../assessments/assessment-service.js";
import type { PrismaClient } from "../generated/prisma/client.js";
import type { EventBus } from "../events/event-bus.js";
import type { HealthMonitor } from "../jobs/health-monitor.js";
import type { JobService } from "../jobs/job-service.js";
import type { JobStatus } from "../jobs/types.js";
import type { Locale } from "../i18n/locale.js";
import type { Logger } from "../logger.js";
import type { UploadRegistry } from "../validation-runs/upload-registry.js";
import type { ValidationRunService } from "../validation-runs/validation-run-service.js";
import type { Viewer } from "./auth.js";

/** Long-lived services, built once per process and shared by every request. */
export interface Services {
  prisma: PrismaClient;
  jobs: JobService;
  assessments: AssessmentService;
  validationRuns: ValidationRunService;
  events: EventBus;
  healthMonitor: HealthMonitor;
  logger: Logger;
}

/** Per request (HTTP) or per operation (WebSocket). */
export interface GraphQLContext {
  services: Services;
  viewer: Viewer | null;
  locale: Locale;
  /** Values computed once per request, however many fields need them (see `once`). */
  cache: Map<string, Promise<unknown>>;
  /** Jobs the request read by id, for the finished-job cache (src/server/finished-job-cache.ts). */
  jobsRead?: { id: string; status: JobStatus }[];
  /** The files of a multipart request (src/server/multipart-upload.ts); null otherwise. */
  uploads: UploadRegistry | null;
}

// A subscription keeps one context for its whole life but executes once per event, with the
// event as its root value: values are cached per event there, so every event sees fresh ones.
// One published event object reaches every subscriber, whoever they are, so within an event the
// cache is per caller (identity, role, language): a value computed with one caller's rights or
// language never answers another's.
const perEvent = new WeakMap<object, Map<string, Map<string, Promise<unknown>>>>();

/** `compute()` the first time `key` is asked for in this execution; the same promise afterwards. */
export function once<T>(context: GraphQLContext, info: GraphQLResolveInfo, key: string, compute: () => Promise<T>): Promise<T> {
  let cache = context.cache;
  if (info.operation.operation === "subscription" && typeof info.rootValue === "object" && info.rootValue !== null) {
    let callers = perEvent.get(info.rootValue);
    if (!callers) perEvent.set(info.rootValue, (callers = new Map()));
    const caller = JSON.stringify([context.viewer?.id ?? null, context.viewer?.role ?? null, context.locale]);
    cache = callers.get(caller) ?? new Map();
    callers.set(caller, cache);
  }
  let value = cache.get(key) as Promise<T> | undefined;
  if (!value) cache.set(key, (value = compute()));
  return value;
}
