import type { AssessmentService } from "../assessments/assessment-service.js";
import type { PrismaClient } from "../generated/prisma/client.js";
import type { EventBus } from "../events/event-bus.js";
import type { HealthMonitor } from "../jobs/health-monitor.js";
import type { JobService } from "../jobs/job-service.js";
import type { Locale } from "../i18n/locale.js";
import type { Logger } from "../logger.js";
import type { Viewer } from "./auth.js";

/** Long-lived services, built once per process and shared by every request. */
export interface Services {
  prisma: PrismaClient;
  jobs: JobService;
  assessments: AssessmentService;
  events: EventBus;
  healthMonitor: HealthMonitor;
  logger: Logger;
}

/** Per request (HTTP) or per operation (WebSocket). */
export interface GraphQLContext {
  services: Services;
  viewer: Viewer | null;
  locale: Locale;
}
