import { createHash, timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { performance } from "node:perf_hooks";
import { getOperationAST, type ExecutionArgs, type ExecutionResult } from "graphql";
import type { Plugin } from "graphql-yoga";
import type pg from "pg";
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from "prom-client";
import type { QueueHealth } from "../jobs/health.js";
import type { Logger } from "../logger.js";
import { isAsyncIterable } from "../graphql/streams.js";

/** What the scrape reads at collection time, rather than counting on a hot path. */
export interface MetricsSources {
  /** Queue health (JobService.health(): cached for HEALTH_CACHE_MS, so scrapes never scan the table). */
  health(): Promise<QueueHealth>;
  workerPool: { stats(): { concurrency: number; busySlots: number; prefetched: number; abandonedHandlers: number } } | null;
  events: { readonly publishFailures: number };
  /** pg pools by the name they get as the `pool` label. */
  databasePools: Record<string, pg.Pool>;
  /** Open WebSocket connections and the subscriptions running on them. */
  connections(): { webSockets: number; subscriptions: number };
}

type Row = Readonly<Record<string, unknown>>;

const PROCESSING_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600];
const QUEUE_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 600, 1800, 3600];
const LATENCY_BUCKETS = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const REQUEST_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
const HEALTH_STATUSES = ["HEALTHY", "DEGRADED", "UNHEALTHY"] as const;
// Operation names come from clients: past this many distinct ones, the rest share one label value,
// so a client cannot grow the registry without bound.
const MAX_OPERATION_NAMES = 100;

/**
 * Conveyor's Prometheus metrics, in a registry of its own (several instances can share a process).
 * Engine counters come from the lifecycle's observer (`observeJobChanges`, called with the rows of
 * every committed transition); gauges are read at scrape time from the health aggregates, the
 * worker pool, the pg pools and the WebSocket server.
 */
export class ConveyorMetrics {
  readonly registry = new Registry();
  private sources: MetricsSources | null = null;
  private readonly tokenDigest: Buffer | null;
  private healthInFlight: Promise<QueueHealth | null> | null = null;
  private readonly operationNames = new Set<string>();

  /** Engine counts by job type, kept in plain numbers: the observer runs for every job. */
  private readonly byType = new Map<string, TypeCounts>();
  /** Transitions by from, then to: no string building per row. */
  private readonly transitions = new Map<string, Map<string, number>>();
  private readonly startLatency = new Buckets(LATENCY_BUCKETS);
  private readonly requestSeconds: Histogram<"operation" | "operation_type">;
  private readonly graphqlErrors: Counter<"operation" | "code">;
  private readonly sseSubscriptions: Gauge;
  private readonly cachedAnswers: Counter<"operation">;
  private readonly callerLimitRefusals: Counter<"limit">;
  /** The operation each HTTP request runs, for the request histogram's labels. */
  private readonly operations = new WeakMap<Request, { name: string; type: string }>();
  private healthErrors!: Counter;

  constructor(private readonly options: { token?: string; logger: Logger; defaultMetrics?: boolean }) {
    this.tokenDigest = options.token ? digest(options.token) : null;
    const registers = [this.registry];
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });

    const perType = (read: (counts: TypeCounts) => number) => () =>
      [...this.byType].map(([type, counts]) => ({ labels: { type }, value: read(counts) }));
    this.register("conveyor_job_claims_total", "Jobs claimed by a worker (each attempt), by type.", "counter", perType((c) => c.claims));
    this.register("conveyor_job_completions_total", "Jobs completed, by type.", "counter", perType((c) => c.completions));
    this.register(
      "conveyor_job_failures_total",
      "Attempts that ended without a result (retried ones included, stalled ones too), by type and error category.",
      "counter",
      () => [...this.byType].flatMap(([type, counts]) => [...counts.failures].map(([category, value]) => ({ labels: { type, category }, value }))),
    );
    this.register("conveyor_job_retries_total", "Attempts scheduled to run again (RETRYING), by type.", "counter", perType((c) => c.retries));
    this.register(
      "conveyor_job_stalled_recoveries_total",
      "Running jobs recovered after their heartbeat stopped (to RETRYING or FAILED), by type.",
      "counter",
      perType((c) => c.stalledRecoveries),
    );
    this.register("conveyor_job_transitions_total", "Committed status changes, including cancels, manual retries and hand-backs on shutdown.", "counter", () =>
      [...this.transitions].flatMap(([from, targets]) => [...targets].map(([to, value]) => ({ labels: { from, to }, value }))),
    );
    this.register(
      "conveyor_job_processing_seconds",
      "Duration of finished attempts, from claim to outcome, by type and the status the attempt ended in.",
      "histogram",
      () => [...this.byType].flatMap(([type, counts]) => [...counts.processing].flatMap(([status, buckets]) => buckets.samples("conveyor_job_processing_seconds", { type, status }))),
    );
    this.register(
      "conveyor_job_queue_seconds",
      "Time each attempt waited runnable before its claim (claim time minus the later of creation and run_at), by type.",
      "histogram",
      () => [...this.byType].flatMap(([type, counts]) => counts.queue.samples("conveyor_job_queue_seconds", { type })),
    );
    this.register(
      "conveyor_job_start_latency_seconds",
      "Enqueue to start of first attempts: claim time minus the later of creation and run_at (a prefetched job starts at its claim).",
      "histogram",
      () => this.startLatency.samples("conveyor_job_start_latency_seconds", {}),
    );
    this.requestSeconds = new Histogram({
      name: "conveyor_graphql_request_duration_seconds",
      help: "GraphQL over HTTP, from the request to its result (subscriptions: to their first response), by operation name and type.",
      labelNames: ["operation", "operation_type"],
      buckets: REQUEST_BUCKETS,
      registers,
    });
    this.graphqlErrors = new Counter({
      name: "conveyor_graphql_errors_total",
      help: "Errors in GraphQL results over HTTP, by operation name and extensions.code ('rejected': refused before execution).",
      labelNames: ["operation", "code"],
      registers,
    });
    this.sseSubscriptions = new Gauge({ name: "conveyor_sse_subscriptions", help: "Subscriptions streaming over SSE.", registers });
    this.callerLimitRefusals = new Counter({
      name: "conveyor_caller_limit_refusals_total",
      help: "WebSockets (limit 'sockets') and live subscriptions (limit 'streams') refused because their caller held the most allowed on this instance.",
      labelNames: ["limit"],
      registers,
    });
    this.cachedAnswers = new Counter({
      name: "conveyor_graphql_cached_answers_total",
      help: "Queries answered from the finished-job cache without running them, by operation.",
      labelNames: ["operation"],
      registers,
    });

    // Collected in this order: the pools are read before the health query takes a connection.
    this.runtimeGauges(registers);
    this.healthGauges(registers);
  }

  /** The scrape-time sources, once the service is built. */
  attach(sources: MetricsSources): void {
    this.sources = sources;
  }

  /**
   * The lifecycle's observer: one call per committed statement. Must stay cheap and never throw:
   * plain counters and buckets, no logging, no label objects; the registry reads them at scrape time.
   */
  readonly observeJobChanges = (rows: readonly Row[]): void => {
    for (const row of rows) {
      const to = row.status as string;
      const from = (row.from_status as string | null) ?? "NONE";
      // Progress reports: not a transition.
      if (to === from) continue;
      let targets = this.transitions.get(from);
      if (!targets) this.transitions.set(from, (targets = new Map()));
      targets.set(to, (targets.get(to) ?? 0) + 1);
      const counts = this.countsFor(row.type as string);
      if (to === "PROCESSING") {
        counts.claims++;
        const waited = secondsBetween(laterOf(row.created_at, row.run_at), row.started_at);
        if (waited !== null) {
          counts.queue.observe(waited);
          if (row.retry_count === 0) this.startLatency.observe(waited);
        }
        continue;
      }
      if (from !== "PROCESSING") continue;
      const processingMs = row.processing_time_ms;
      if (typeof processingMs === "number") {
        let buckets = counts.processing.get(to);
        if (!buckets) counts.processing.set(to, (buckets = new Buckets(PROCESSING_BUCKETS)));
        buckets.observe(processingMs / 1000);
      }
      if (to === "COMPLETED") {
        counts.completions++;
        continue;
      }
      // A hand-back on shutdown (back to QUEUED) is no failure.
      if (to === "QUEUED") continue;
      const category = (row.error_code as string | null) ?? "UNKNOWN";
      counts.failures.set(category, (counts.failures.get(category) ?? 0) + 1);
      if (to === "RETRYING") counts.retries++;
      if (category === "STALLED") counts.stalledRecoveries++;
    }
  };

  private countsFor(type: string): TypeCounts {
    let counts = this.byType.get(type);
    if (!counts) {
      counts = { claims: 0, completions: 0, retries: 0, stalledRecoveries: 0, failures: new Map(), queue: new Buckets(QUEUE_BUCKETS), processing: new Map() };
      this.byType.set(type, counts);
    }
    return counts;
  }

  /** A metric family read from the counts above at scrape time, formatted by the registry. */
  private register(name: string, help: string, type: "counter" | "histogram", values: () => MetricSample[]): void {
    // reset(): Registry.resetMetrics() calls it on every metric; engine counts only ever grow.
    const metric = { name, help, type, aggregator: "sum", reset: () => {}, get: async () => ({ name, help, type, aggregator: "sum", values: values() }) };
    this.registry.registerMetric(metric as unknown as Parameters<Registry["registerMetric"]>[0]);
  }

  /**
   * Request duration and errors by operation over HTTP, and SSE subscriptions. Operations over
   * WebSocket are counted by the conveyor_websocket_* gauges instead.
   */
  graphqlPlugin(): Plugin {
    const startedAt = new WeakMap<Request, number>();
    const operations = this.operations;
    const remember = (args: ExecutionArgs) => {
      const request = (args.contextValue as { request?: Request } | null)?.request;
      if (!request) return;
      const operation = getOperationAST(args.document, args.operationName);
      operations.set(request, { name: this.operationLabel(operation?.name?.value), type: operation?.operation ?? "unknown" });
    };
    return {
      onRequest: ({ request }) => {
        startedAt.set(request, performance.now());
      },
      onExecute: ({ args }) => remember(args),
      onSubscribe: ({ args }) => remember(args),
      onExecutionResult: ({ request, result, setResult }) => {
        const operation = operations.get(request) ?? { name: "rejected", type: "unknown" };
        const started = startedAt.get(request);
        if (started !== undefined) this.requestSeconds.observe({ operation: operation.name, operation_type: operation.type }, (performance.now() - started) / 1000);
        if (result === undefined) return;
        if (isAsyncIterable(result)) {
          setResult(countedStream(result, this.sseSubscriptions) as Parameters<typeof setResult>[0]);
          return;
        }
        for (const error of (result as ExecutionResult).errors ?? []) {
          const code = error.extensions?.code;
          this.graphqlErrors.inc({ operation: operation.name, code: typeof code === "string" ? code : "UNKNOWN" });
        }
      },
    };
  }

  /** A query answered from the finished-job cache (src/server/finished-job-cache.ts): it never executes. */
  readonly countCachedAnswer = (request: Request, operation: { name: string | undefined; type: string }): void => {
    const name = this.operationLabel(operation.name);
    this.operations.set(request, { name, type: operation.type });
    this.cachedAnswers.inc({ operation: name });
  };

  readonly countCallerLimitRefusal = (limit: "sockets" | "streams"): void => {
    this.callerLimitRefusals.inc({ limit });
  };

  /**
   * GET /metrics. With a token configured, only `Authorization: Bearer <token>` is answered; the
   * comparison takes the same time whatever the guess.
   */
  async handle(request: IncomingMessage, response: ServerResponse): Promise<void> {
    if (request.method !== "GET" && request.method !== "HEAD") {
      response.writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain; charset=utf-8" }).end("Method Not Allowed\n");
      return;
    }
    if (this.tokenDigest && !this.authorized(request.headers.authorization)) {
      response.writeHead(401, { "www-authenticate": 'Bearer realm="metrics"', "content-type": "text/plain; charset=utf-8" }).end("Unauthorized\n");
      return;
    }
    try {
      const body = await this.registry.metrics();
      response.writeHead(200, { "content-type": this.registry.contentType, "cache-control": "no-store" });
      response.end(request.method === "HEAD" ? undefined : body);
    } catch (error) {
      this.options.logger.error({ err: error }, "collecting metrics failed");
      if (!response.headersSent) response.writeHead(500, { "content-type": "text/plain; charset=utf-8" });
      response.end("Collecting metrics failed\n");
    }
  }

  private authorized(header: string | undefined): boolean {
    const match = /^Bearer\s+(.+)$/i.exec(header ?? "");
    return match !== null && timingSafeEqual(digest(match[1]!.trim()), this.tokenDigest!);
  }

  private operationLabel(name: string | undefined): string {
    if (!name) return "anonymous";
    if (this.operationNames.has(name)) return name;
    if (this.operationNames.size >= MAX_OPERATION_NAMES) return "other";
    this.operationNames.add(name);
    return name;
  }

  /** One health computation serves every gauge of a scrape. */
  private health(): Promise<QueueHealth | null> {
    const sources = this.sources;
    if (!sources) return Promise.resolve(null);
    this.healthInFlight ??= sources
      .health()
      .catch((error: unknown) => {
        this.healthErrors.inc();
        this.options.logger.warn({ err: error }, "queue health unavailable for metrics");
        return null;
      })
      .finally(() => {
        this.healthInFlight = null;
      });
    return this.healthInFlight;
  }

  private healthGauges(registers: Registry[]): void {
    const metrics = this;
    this.healthErrors = new Counter({ name: "conveyor_queue_health_errors_total", help: "Scrapes whose queue-health aggregates could not be read.", registers });
    new Gauge({
      name: "conveyor_jobs",
      help: "Jobs by type and status from the queue-health aggregates (HEALTH_CACHE_MS): waiting and running now, finished within HEALTH_WINDOW_MS.",
      labelNames: ["type", "status"],
      registers,
      async collect() {
        const health = await metrics.health();
        this.reset();
        for (const { type, status, count } of health?.byType ?? []) this.set({ type, status }, count);
      },
    });
    new Gauge({
      name: "conveyor_jobs_stalled",
      help: "Running jobs whose heartbeat is older than STALLED_THRESHOLD_MS.",
      registers,
      async collect() {
        const health = await metrics.health();
        this.reset();
        if (health) this.set(health.stalled);
      },
    });
    new Gauge({
      name: "conveyor_queue_oldest_waiting_seconds",
      help: "Age of the oldest runnable waiting job (0 when none waits).",
      registers,
      async collect() {
        const health = await metrics.health();
        this.reset();
        if (health) this.set((health.oldestQueuedAgeMs ?? 0) / 1000);
      },
    });
    new Gauge({
      name: "conveyor_queue_success_ratio",
      help: "Completed over finished jobs within HEALTH_WINDOW_MS (absent when none finished).",
      registers,
      async collect() {
        const health = await metrics.health();
        this.reset();
        if (health?.successRate !== null && health?.successRate !== undefined) this.set(health.successRate);
      },
    });
    new Gauge({
      name: "conveyor_queue_health",
      help: "Queue health status: 1 for the current one (HEALTHY, DEGRADED, UNHEALTHY), 0 for the others.",
      labelNames: ["status"],
      registers,
      async collect() {
        const health = await metrics.health();
        this.reset();
        if (health) for (const status of HEALTH_STATUSES) this.set({ status }, health.status === status ? 1 : 0);
      },
    });
  }

  private runtimeGauges(registers: Registry[]): void {
    const metrics = this;
    const worker = (pick: (stats: ReturnType<NonNullable<MetricsSources["workerPool"]>["stats"]>) => number) =>
      function (this: Gauge) {
        const stats = metrics.sources?.workerPool?.stats();
        this.set(stats ? pick(stats) : 0);
      };
    new Gauge({ name: "conveyor_worker_slots", help: "Slots of this instance's worker pool (WORKER_CONCURRENCY; 0 without a pool).", registers, collect: worker((s) => s.concurrency) });
    new Gauge({ name: "conveyor_worker_busy_slots", help: "Slots running a handler.", registers, collect: worker((s) => s.busySlots) });
    new Gauge({
      name: "conveyor_worker_saturation_ratio",
      help: "Busy slots over slots: 1 means every slot runs a handler and new work waits.",
      registers,
      collect: worker((s) => (s.concurrency > 0 ? s.busySlots / s.concurrency : 0)),
    });
    new Gauge({ name: "conveyor_worker_prefetched_jobs", help: "Jobs claimed ahead of a free slot (WORKER_PREFETCH), not started yet.", registers, collect: worker((s) => s.prefetched) });
    new Gauge({
      name: "conveyor_worker_abandoned_handlers",
      help: "Handlers that ignored their abort signal and still hold a slot.",
      registers,
      collect: worker((s) => s.abandonedHandlers),
    });

    let publishFailuresSeen = 0;
    new Counter({
      name: "conveyor_event_publish_failures_total",
      help: "Job events the event bus failed to publish (Redis unreachable): lost for subscribers on other instances.",
      registers,
      collect() {
        const total = metrics.sources?.events.publishFailures ?? 0;
        if (total > publishFailuresSeen) this.inc(total - publishFailuresSeen);
        publishFailuresSeen = total;
      },
    });

    const pools = (read: (pool: pg.Pool) => number) =>
      function (this: Gauge<"pool">) {
        this.reset();
        for (const [name, pool] of Object.entries(metrics.sources?.databasePools ?? {})) this.set({ pool: name }, read(pool));
      };
    new Gauge({ name: "conveyor_db_pool_connections", help: "Open connections of each pg pool.", labelNames: ["pool"], registers, collect: pools((p) => p.totalCount) });
    new Gauge({ name: "conveyor_db_pool_idle_connections", help: "Idle connections of each pg pool.", labelNames: ["pool"], registers, collect: pools((p) => p.idleCount) });
    new Gauge({
      name: "conveyor_db_pool_waiting_clients",
      help: "Queries waiting for a connection of each pg pool: above 0 for long, the pool is too small.",
      labelNames: ["pool"],
      registers,
      collect: pools((p) => p.waitingCount),
    });
    new Gauge({ name: "conveyor_db_pool_max_connections", help: "Connection limit of each pg pool.", labelNames: ["pool"], registers, collect: pools((p) => p.options.max ?? 10) });

    new Gauge({
      name: "conveyor_websocket_connections",
      help: "Open WebSocket connections.",
      registers,
      collect() {
        this.set(metrics.sources?.connections().webSockets ?? 0);
      },
    });
    new Gauge({
      name: "conveyor_websocket_subscriptions",
      help: "Subscriptions running over WebSocket.",
      registers,
      collect() {
        this.set(metrics.sources?.connections().subscriptions ?? 0);
      },
    });
  }
}

interface MetricSample {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

interface TypeCounts {
  claims: number;
  completions: number;
  retries: number;
  stalledRecoveries: number;
  failures: Map<string, number>;
  queue: Buckets;
  processing: Map<string, Buckets>;
}

/** A histogram's counts in plain numbers; cumulative buckets, sum and count are made at scrape time. */
class Buckets {
  private readonly counts: Float64Array;
  private sum = 0;
  private count = 0;

  constructor(private readonly bounds: readonly number[]) {
    this.counts = new Float64Array(bounds.length);
  }

  observe(value: number): void {
    this.sum += value;
    this.count++;
    for (let index = 0; index < this.bounds.length; index++) {
      if (value <= this.bounds[index]!) {
        this.counts[index]!++;
        return;
      }
    }
  }

  samples(name: string, labels: Record<string, string>): MetricSample[] {
    let cumulative = 0;
    const samples: MetricSample[] = this.bounds.map((bound, index) => {
      cumulative += this.counts[index]!;
      return { metricName: `${name}_bucket`, labels: { ...labels, le: bound }, value: cumulative };
    });
    samples.push({ metricName: `${name}_bucket`, labels: { ...labels, le: "+Inf" }, value: this.count });
    samples.push({ metricName: `${name}_sum`, labels, value: this.sum });
    samples.push({ metricName: `${name}_count`, labels, value: this.count });
    return samples;
  }
}

function digest(text: string): Buffer {
  return createHash("sha256").update(text).digest();
}

function time(value: unknown): number | null {
  return value instanceof Date ? value.getTime() : null;
}

function laterOf(a: unknown, b: unknown): number | null {
  const first = time(a);
  const second = time(b);
  return first === null ? second : second === null ? first : Math.max(first, second);
}

/** Seconds from `from` (ms) to `to` (a Date); never negative, null without both. */
function secondsBetween(from: number | null, to: unknown): number | null {
  const end = time(to);
  return from === null || end === null ? null : Math.max(0, end - from) / 1000;
}

/**
 * The stream, counted in `gauge` until it ends, fails or is closed. A plain iterator rather than an
 * async generator: a generator would queue the client's return() behind the pending next(), so a
 * closed subscription would stay counted, and subscribed, until its next event.
 */
function countedStream<T>(source: AsyncIterable<T>, gauge: Gauge): AsyncIterableIterator<T> {
  const iterator = source[Symbol.asyncIterator]();
  let open = true;
  gauge.inc();
  const close = () => {
    if (!open) return;
    open = false;
    gauge.dec();
  };
  return {
    [Symbol.asyncIterator]() {
      return this;
    },
    async next() {
      try {
        const step = await iterator.next();
        if (step.done) close();
        return step;
      } catch (error) {
        close();
        throw error;
      }
    },
    async return(value?: unknown) {
      close();
      return iterator.return ? iterator.return(value) : { done: true as const, value: value as T };
    },
    async throw(error?: unknown) {
      close();
      if (iterator.throw) return iterator.throw(error);
      throw error;
    },
  };
}
