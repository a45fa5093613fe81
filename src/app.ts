import type { Server } from "node:http";
import type { Config } from "./config.js";
import { openDatabase, type Database } from "./db/database.js";
import { createEventBus, type EventBus } from "./events/event-bus.js";
import { createAssessmentHandler } from "./handlers/assessment-handler.js";
import { HandlerRegistry, type JobHandler } from "./handlers/registry.js";
import { JobLifecycle } from "./jobs/lifecycle.js";
import { JobService } from "./jobs/job-service.js";
import { Maintenance } from "./jobs/maintenance.js";
import type { Clock } from "./jobs/types.js";
import { WorkerPool } from "./jobs/worker-pool.js";
import { createLogger, type Logger } from "./logger.js";
import { createHttpServer, listen } from "./server/http-server.js";
import { AssessmentService } from "./assessments/assessment-service.js";
import { createTokenVerifier } from "./graphql/auth.js";
import type { Services } from "./graphql/context.js";
import { HealthMonitor } from "./jobs/health-monitor.js";
import { createGraphQLApp, type GraphQLApp } from "./server/graphql-app.js";
import { handleResultExport } from "./server/result-export.js";

export interface ConveyorOptions {
  config: Config;
  logger?: Logger;
  /** Handlers beyond the built-in ones. */
  handlers?: JobHandler<any, any>[];
  clock?: Clock;
  random?: () => number;
}

export interface Conveyor {
  config: Config;
  logger: Logger;
  database: Database;
  events: EventBus;
  registry: HandlerRegistry;
  lifecycle: JobLifecycle;
  jobs: JobService;
  services: Services;
  graphql: GraphQLApp;
  workerPool: WorkerPool | null;
  maintenance: Maintenance;
  server: Server;
  /** Where the HTTP server listens, once started. */
  url: string | null;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Builds the whole service (database, engine, HTTP server) without starting the pool or listening. */
export async function createConveyor(options: ConveyorOptions): Promise<Conveyor> {
  const { config, clock } = options;
  const logger = options.logger ?? createLogger(config.logLevel);
  const database = await openDatabase({
    ...config.database,
    logger,
    // Claims, completions and heartbeats run concurrently up to one per slot, plus a claim.
    workerConnections: Math.min(config.worker.concurrency + 2, config.database.poolSize),
    durableWorkerCommits: config.worker.durableCommits,
    asyncOutcomeCommits: config.worker.asyncOutcomes,
  });
  const events = createEventBus(config.redisUrl, { logger });
  const lifecycle = new JobLifecycle({
    pool: database.pool,
    workerPool: database.workerPool,
    outcomePool: database.outcomePool,
    logger,
    publish: (change) => events.publishJobChange(change),
    retryPolicy: config.retry,
    clock,
    random: options.random,
  });

  const registry = new HandlerRegistry();
  registry.register(
    createAssessmentHandler(async (id) =>
      database.prisma.assessment.findUnique({ where: { id }, select: { id: true, owner: true, kind: true, answers: true } }),
    ),
  );
  for (const handler of options.handlers ?? []) registry.register(handler);

  const maintenance = new Maintenance({
    pool: database.pool,
    lifecycle,
    logger,
    stalledThresholdMs: config.worker.stalledThresholdMs,
    stalledCheckIntervalMs: config.worker.stalledCheckIntervalMs,
    retention: config.retention,
    clock,
  });
  const jobs = new JobService({
    pool: database.pool,
    lifecycle,
    registry,
    events,
    maintenance,
    thresholds: { ...config.health, stalledThresholdMs: config.worker.stalledThresholdMs },
    defaultMaxAttempts: config.retry.maxAttempts,
    healthCacheMs: config.health.cacheMs,
    clock,
  });
  const workerPool = config.worker.enabled
    ? new WorkerPool({
        lifecycle,
        registry,
        logger,
        connectionString: database.url,
        concurrency: config.worker.concurrency,
        prefetch: config.worker.prefetch,
        pollIntervalMs: config.worker.pollIntervalMs,
        heartbeatIntervalMs: config.worker.heartbeatIntervalMs,
        jobTimeoutMs: config.worker.jobTimeoutMs,
        shutdownGraceMs: config.worker.shutdownGraceMs,
        // Within the stalled threshold, with room to spare, so a write retried in vain still leaves
        // the job to recovery rather than to two workers.
        outcomeRetryWindowMs: Math.max(1000, Math.floor(config.worker.stalledThresholdMs / 2)),
      })
    : null;
  const assessments = new AssessmentService({ prisma: database.prisma, pool: database.pool, jobs, events, logger });
  const healthMonitor = new HealthMonitor(() => jobs.health(), config.health.broadcastIntervalMs, logger);
  const services: Services = { prisma: database.prisma, jobs, assessments, events, healthMonitor, logger };
  const verifyToken = createTokenVerifier(config.auth);
  const graphql = createGraphQLApp({ config, services, logger, verifyToken });
  const server = createHttpServer({
    pool: database.pool,
    maxBodyBytes: config.graphql.maxBodyBytes,
    next: (request, response) => {
      if (!handleResultExport(request, response, { jobs, verifyToken })) void graphql.yoga(request, response);
    },
  });
  graphql.attach(server);

  let stopping: Promise<void> | null = null;
  const conveyor: Conveyor = {
    config,
    logger,
    database,
    events,
    registry,
    lifecycle,
    jobs,
    services,
    graphql,
    workerPool,
    maintenance,
    server,
    url: null,
    async start() {
      const address = await listen(server, config.http.port, config.http.host);
      conveyor.url = `http://${address.address.includes(":") ? `[${address.address}]` : address.address}:${address.port}`;
      await workerPool?.start();
      maintenance.start();
      logger.info({ url: conveyor.url, embeddedDatabase: database.embedded, redis: Boolean(config.redisUrl) }, "Conveyor is listening");
    },
    stop() {
      stopping ??= (async () => {
        server.closeIdleConnections?.();
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        await graphql.close();
        healthMonitor.stop();
        await workerPool?.stop();
        await maintenance.stop();
        server.closeAllConnections?.();
        await closed;
        await events.close();
        await database.close();
        logger.info("Conveyor stopped");
      })();
      return stopping;
    },
  };
  return conveyor;
}
