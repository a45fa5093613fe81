import type { Server, ServerResponse } from "node:http";
import { isLoopback, type Config } from "./config.js";
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
import { createDashboardHandler } from "./server/dashboard.js";
import { ConveyorMetrics } from "./server/metrics.js";
import type { JobRequest } from "./handlers/define-handler.js";
import { changeOf } from "./jobs/lifecycle.js";
import type { EnqueueResult, Queryable } from "./jobs/queue.js";
import type { Job } from "./jobs/types.js";
import type { JobChange } from "./events/messages.js";

export interface ConveyorOptions {
  config: Config;
  logger?: Logger;
  /** Handlers beyond the built-in ones. */
  handlers?: JobHandler<any, any>[];
  clock?: Clock;
  random?: () => number;
  /** Ends start-up while it waits for an unreachable database (a shutdown signal meanwhile). */
  signal?: AbortSignal;
  /** The built dashboard served at /dashboard; dist/dashboard unless given. */
  dashboardDirectory?: string;
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
  /** Prometheus metrics, served at /metrics; a registry of this instance's own. */
  metrics: ConveyorMetrics;
  /** Where the HTTP server listens, once started. */
  url: string | null;
  /**
   * Enqueues a job, exactly once per idempotency key. With `client` (a pg client inside your open
   * transaction) the job exists only if that transaction commits and nothing is published: call
   * `announce` after COMMIT. Workers wake at the commit either way. Invalid input throws
   * InvalidJobInputError (its `problems` name each field) or UnknownJobTypeError.
   */
  enqueue(request: JobRequest, options?: LibraryEnqueueOptions): Promise<EnqueueResult>;
  /** Many jobs in one statement, all refused when any is invalid; results in the order given. */
  enqueueMany(requests: JobRequest[], options?: LibraryEnqueueOptions): Promise<EnqueueResult[]>;
  /** Tells subscribers about jobs enqueued with `client`, once that transaction committed. */
  announce(created: EnqueueResult | Job | readonly (EnqueueResult | Job)[]): void;
  /**
   * Calls `listener` with every change of one job (or of every job when `jobId` is undefined) from
   * now on, from this process and, when events are shared (Redis, or NOTIFY on an external
   * database), from other instances. Returns the unsubscribe.
   */
  subscribe(jobId: string | undefined, listener: (change: JobChange) => void): () => void;
  /**
   * Starts the worker pool and maintenance, and serves the API on HOST/PORT unless `http` is false
   * (a service that embeds only the engine: `url` stays null).
   */
  start(options?: { http?: boolean }): Promise<void>;
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
    signal: options.signal,
  });
  // Without Redis, instances on one external database share events through LISTEN/NOTIFY. The
  // embedded database belongs to this one process (its folder is locked), so events stay here.
  const events = createEventBus(config.redisUrl, {
    logger,
    postgres: database.embedded ? undefined : { connectionString: database.url },
    currentState: async (jobIds) => {
      const rows = await Promise.all(jobIds.map((id) => jobs.find(id)));
      return rows.flatMap((row) => (row ? [changeOf(row, null)] : []));
    },
  });
  const metrics = new ConveyorMetrics({ token: config.metrics.token, logger });
  if (!config.metrics.token && !isLoopback(config.http.host)) {
    logger.warn({ host: config.http.host }, "METRICS_TOKEN is unset: /metrics is open to whoever reaches this port");
  }
  const lifecycle = new JobLifecycle({
    observe: metrics.observeJobChanges,
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
  const graphql = createGraphQLApp({ config, services, logger, verifyToken, metricsPlugin: metrics.graphqlPlugin() });
  metrics.attach({
    health: () => jobs.health(),
    workerPool,
    events,
    databasePools: { api: database.pool, worker: database.workerPool, outcome: database.outcomePool },
    connections: () => graphql.connections(),
  });
  // Open SSE responses, so shutdown can end them with a final `complete` rather than a reset.
  const eventStreams = new Set<ServerResponse>();
  const handleDashboard = createDashboardHandler({ config, directory: options.dashboardDirectory });
  let stopping: Promise<void> | null = null;
  const server = createHttpServer({
    pool: database.pool,
    maxBodyBytes: config.graphql.maxBodyBytes,
    stopping: () => stopping !== null,
    metrics: (request, response) => void metrics.handle(request, response),
    next: (request, response) => {
      if (String(request.headers.accept ?? "").includes("text/event-stream")) {
        eventStreams.add(response);
        response.once("close", () => eventStreams.delete(response));
      }
      if (handleDashboard(request, response) || handleResultExport(request, response, { jobs, verifyToken })) return;
      void graphql.yoga(request, response);
    },
  });
  graphql.attach(server);

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
    metrics,
    url: null,
    ...libraryApi(jobs, events, logger),
    async start(options = {}) {
      await events.ready();
      if (options.http !== false) {
        const address = await listen(server, config.http.port, config.http.host);
        conveyor.url = `http://${address.address.includes(":") ? `[${address.address}]` : address.address}:${address.port}`;
      }
      await workerPool?.start();
      maintenance.start();
      const started = { url: conveyor.url, embeddedDatabase: database.embedded, redis: Boolean(config.redisUrl), events: events.transport };
      logger.info(started, conveyor.url ? "Conveyor is listening" : "Conveyor started without its HTTP server");
    },
    stop() {
      stopping ??= (async () => {
        server.closeIdleConnections?.();
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        // WebSockets close with 1001 (going away); clients reconnect to another instance.
        await graphql.close();
        endEventStreams(eventStreams);
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

export interface LibraryEnqueueOptions {
  /** A client of your own pg pool, inside a transaction you opened and will commit or roll back. */
  client?: Queryable;
  /** Who asked, for the audit trail; the job's owner by default. */
  actor?: string;
}

/** The owner of a job enqueued without one: visible to operators, no user's. */
const DEFAULT_OWNER = "system";

// What an application embedding Conveyor calls; the GraphQL API uses the services directly.
function libraryApi(jobs: JobService, events: EventBus, logger: Logger) {
  const withOwner = (request: JobRequest) => ({ ...request, owner: request.owner ?? DEFAULT_OWNER });
  return {
    enqueue(request: JobRequest, options: LibraryEnqueueOptions = {}) {
      const input = withOwner(request);
      return options.client
        ? jobs.enqueue(input, options.actor ?? input.owner, options.client, false)
        : jobs.enqueue(input, options.actor ?? input.owner);
    },
    enqueueMany(requests: JobRequest[], options: LibraryEnqueueOptions = {}) {
      const inputs = requests.map(withOwner);
      // One actor for the batch: the first owner stands for all when none is given.
      const actor = options.actor ?? inputs[0]?.owner ?? DEFAULT_OWNER;
      return options.client ? jobs.enqueueMany(inputs, actor, options.client, false) : jobs.enqueueMany(inputs, actor);
    },
    announce(created: EnqueueResult | Job | readonly (EnqueueResult | Job)[]) {
      const list: readonly (EnqueueResult | Job)[] = Array.isArray(created) ? created : [created as EnqueueResult | Job];
      for (const item of list) {
        // An existing job (idempotency key already used) was announced when it was created.
        if ("created" in item && !item.created) continue;
        events.publishJobChange(changeOf("job" in item ? item.job : item, null));
      }
    },
    subscribe(jobId: string | undefined, listener: (change: JobChange) => void) {
      const iterator = jobId === undefined ? events.pubsub.subscribe("jobs:changed") : events.pubsub.subscribe("job:changed", jobId);
      let active = true;
      // The first next() registers the listener synchronously: whatever this process publishes
      // after subscribe() returns reaches it (e.g. the announce after a COMMIT).
      let pending = iterator.next();
      void (async () => {
        for (;;) {
          const step = await pending;
          if (step.done || !active) return;
          try {
            listener(step.value);
          } catch (error) {
            logger.error({ err: error, jobId: step.value.jobId }, "a job change listener threw");
          }
          pending = iterator.next();
        }
      })().catch((error: unknown) => logger.error({ err: error }, "job change subscription failed"));
      return () => {
        if (!active) return;
        active = false;
        void iterator.return?.(undefined);
      };
    },
  };
}

/**
 * Ends each open SSE stream the way graphql-sse ends one (a `complete` event, then the end of the
 * response), so a client sees a finished stream and resubscribes rather than an error. The
 * subscription behind it may still try to write: that write is dropped.
 */
function endEventStreams(streams: Set<ServerResponse>): void {
  for (const response of streams) {
    response.on("error", () => {});
    if (response.writableEnded) continue;
    if (response.headersSent) response.write("event: complete\ndata:\n\n");
    response.end();
  }
  streams.clear();
}
