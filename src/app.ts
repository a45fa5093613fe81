import { randomUUID } from "node:crypto";
import type { Server, ServerResponse } from "node:http";
import { isLoopback, type Config } from "./config.js";
import { openDatabase, type Database } from "./db/database.js";
import { createEventBus, forEachEvent, type EventBus } from "./events/event-bus.js";
import { createAssessmentHandler } from "./handlers/assessment-handler.js";
import { assessmentSnapshotReader } from "./assessments/assessment-snapshots.js";
import { HandlerRegistry, type JobHandler } from "./handlers/registry.js";
import { JobLifecycle } from "./jobs/lifecycle.js";
import { JobService } from "./jobs/job-service.js";
import { Maintenance } from "./jobs/maintenance.js";
import type { Clock } from "./jobs/types.js";
import { WorkerPool } from "./jobs/worker-pool.js";
import { warmConnections } from "./jobs/warm-connections.js";
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
import { FinishedJobCache } from "./server/finished-job-cache.js";
import type { JobRequest } from "./handlers/define-handler.js";
import { changeOf } from "./jobs/lifecycle.js";
import type { EnqueueResult, Queryable } from "./jobs/queue.js";
import type { Job } from "./jobs/types.js";
import { jobTopic, type JobChange } from "./events/messages.js";
import { createValidationRunHandler } from "./handlers/validation-run-handler.js";
import { FileStore } from "./validation-runs/file-store.js";
import { loadRuleSets } from "./validation-runs/rule-sets.js";
import { ValidationRunService } from "./validation-runs/validation-run-service.js";
import { createMultipartUploadRoute } from "./server/multipart-upload.js";

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
  /**
   * Tells this instance's subscribers about jobs enqueued with `client`, once that transaction
   * committed. (With events through PostgreSQL, the enqueue statement itself tells the instances
   * whose subscribers followed those jobs when it ran, as the transaction commits; a subscriber
   * here that did may hear of the creation twice.)
   */
  announce(created: EnqueueResult | Job | readonly (EnqueueResult | Job)[]): void;
  /**
   * Calls `listener` with every change of one job (or of every job when `jobId` is undefined) from
   * now on, from this process and, when events are shared (Redis, or NOTIFY on an external
   * database), from other instances. Returns the unsubscribe; its `listening` settles once changes
   * other instances commit from then on reach `listener` too.
   */
  subscribe(jobId: string | undefined, listener: (change: JobChange) => void): (() => void) & { listening: Promise<void> };
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
  // Before anything opens: a broken rule set definition stops start-up with its problems named.
  const ruleSets = loadRuleSets();
  // Without a URL the database is the embedded one, which belongs to this process alone.
  const transport = eventsTransport(config, !config.database.url);
  const instanceId = randomUUID();
  const database = await openDatabase({
    ...config.database,
    // Only events through PostgreSQL need it; PgBouncer may refuse the startup option it takes.
    instanceId: transport === "postgres" ? instanceId : undefined,
    logger,
    // Claims, completions and heartbeats run concurrently up to one per slot, plus a claim.
    workerConnections: Math.min(config.worker.concurrency + 2, config.database.poolSize),
    durableWorkerCommits: config.worker.durableCommits,
    asyncOutcomeCommits: config.worker.asyncOutcomes,
    signal: options.signal,
  });
  const events = createEventBus(transport === "redis" ? config.redisUrl : undefined, {
    logger,
    postgres: transport === "postgres" ? { connectionString: database.url, instanceId } : undefined,
    currentState: async (jobIds) => (await jobs.findMany(jobIds)).map((job) => changeOf(job, null)),
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
    actionLockTimeoutMs: config.worker.actionLockTimeoutMs,
  });

  const registry = new HandlerRegistry();
  registry.register(createAssessmentHandler(assessmentSnapshotReader(database.pool)));
  for (const handler of options.handlers ?? []) registry.register(handler);

  const maintenance = new Maintenance({
    pool: database.pool,
    lifecycle,
    logger,
    stalledThresholdMs: config.worker.stalledThresholdMs,
    stalledCheckIntervalMs: config.worker.stalledCheckIntervalMs,
    retention: config.retention,
    healthWindowMs: config.health.windowMs,
    clock,
    onDeleted: (count) => events.publishJobsDeleted(count),
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
        handoffReserveMs: config.worker.handoffReserveMs,
        heartbeatIntervalMs: config.worker.heartbeatIntervalMs,
        jobTimeoutMs: config.worker.jobTimeoutMs,
        shutdownGraceMs: config.worker.shutdownGraceMs,
        // Within the stalled threshold, with room to spare, so a write retried in vain still leaves
        // the job to recovery rather than to two workers.
        outcomeRetryWindowMs: Math.max(1000, Math.floor(config.worker.stalledThresholdMs / 2)),
      })
    : null;
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
    workers: workerPool,
  });
  const assessments = new AssessmentService({ prisma: database.prisma, pool: database.pool, jobs, events, logger });
  const files = new FileStore(database.pool);
  const validationRuns = new ValidationRunService({ prisma: database.prisma, pool: database.pool, jobs, events, logger, files, ruleSets });
  registry.register(createValidationRunHandler({ runs: validationRuns, findingsPerRule: config.validation.findingsPerRule }));
  const healthMonitor = new HealthMonitor(() => jobs.health(), config.health.broadcastIntervalMs, logger);
  const services: Services = { prisma: database.prisma, jobs, assessments, validationRuns, events, healthMonitor, logger };
  const verifyToken = createTokenVerifier(config.auth);
  const finishedJobCache = createFinishedJobCache(config, events, logger, metrics);
  const graphql = createGraphQLApp({
    config,
    services,
    logger,
    verifyToken,
    metricsPlugin: metrics.graphqlPlugin(),
    finishedJobCache: finishedJobCache?.cache,
    callerLimitRefused: metrics.countCallerLimitRefusal,
  });
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
    upload: createMultipartUploadRoute({
      yoga: graphql.yoga,
      files,
      verifyToken,
      maxFileBytes: config.validation.maxUploadBytes,
      maxFieldBytes: config.graphql.maxBodyBytes,
      logger,
    }),
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
    // A stop() while this runs wins: what start() has not brought up yet stays down (an embedding
    // application's stop() must leave no port listening and no timer running).
    async start(options = {}) {
      await Promise.all([events.ready(), warmConnections(database, { worker: workerPool !== null, logger })]);
      if (stopping) return;
      if (options.http !== false) {
        const address = await listen(server, config.http.port, config.http.host);
        if (stopping) {
          // stop() closed the server before it listened: close it again.
          server.close();
          return;
        }
        conveyor.url = `http://${address.address.includes(":") ? `[${address.address}]` : address.address}:${address.port}`;
      }
      await workerPool?.start();
      if (stopping) return;
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
        finishedJobCache?.stop();
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

/**
 * Where subscription events travel (EVENTS_TRANSPORT). auto: Redis when REDIS_URL is set; else,
 * on an external database, LISTEN/NOTIFY, since other instances may share it; else (the embedded
 * database belongs to this one process: its folder is locked) this process only. A lone instance
 * on an external database can say memory and save a NOTIFY per tick of changes.
 */
function eventsTransport(config: Config, embeddedDatabase: boolean): "memory" | "postgres" | "redis" {
  if (config.eventsTransport !== "auto") return config.eventsTransport;
  if (config.redisUrl) return "redis";
  return embeddedDatabase ? "memory" : "postgres";
}

/**
 * The finished-job cache of `job(id)` answers, told of every retry and deletion on any instance
 * through the event bus (FINISHED_JOB_CACHE_ENTRIES=0: none).
 */
function createFinishedJobCache(config: Config, events: EventBus, logger: Logger, metrics: ConveyorMetrics) {
  const { maxEntries, ttlMs } = config.graphql.finishedJobCache;
  if (maxEntries === 0) return null;
  const cache = new FinishedJobCache({ maxEntries, ttlMs, onHit: metrics.countCachedAnswer });
  const unsubscribes = [
    forEachEvent<string>(events, "jobs:reopened", (jobId) => cache.reopened(jobId), logger),
    forEachEvent(events, "jobs:deleted", () => cache.deleted(), logger),
  ];
  return { cache, stop: () => unsubscribes.forEach((unsubscribe) => unsubscribe()) };
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
      const topic = jobId === undefined ? "jobs:changed" : jobTopic(jobId);
      const unsubscribe = forEachEvent(events, topic, listener, logger);
      return Object.assign(unsubscribe, { listening: events.whenListening(topic) });
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
