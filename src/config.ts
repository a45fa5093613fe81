import { isIPv4 } from "node:net";
import { z } from "zod";

/** The longest delay a Node timer waits (2^31 − 1 ms, 24.8 days): a longer one fires after 1 ms. */
const MAX_TIMER_MS = 2_147_483_647;
/** An age PostgreSQL subtracts from now(): ten years, far inside its timestamps' range. */
const MAX_AGE_MS = 10 * 366 * 24 * 3600_000;
/** A delay or interval, as timers take it: 0 up to MAX_TIMER_MS unless said. */
const milliseconds = (fallback: number, range: { min?: number; max?: number } = {}) =>
  z.coerce
    .number()
    .int()
    .min(range.min ?? 0)
    .max(range.max ?? MAX_TIMER_MS)
    .default(fallback);
const fraction = (fallback: number) => z.coerce.number().min(0).max(1).default(fallback);
const optionalText = z
  .string()
  .optional()
  .transform((value) => (value === undefined || value.trim() === "" ? undefined : value.trim()));

const environmentSchema = z.object({
  NODE_ENV: z.enum(["development", "production", "test"]).default("development"),
  HOST: z.string().default("127.0.0.1"),
  PORT: z.coerce.number().int().min(0).max(65535).default(4000),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),

  DATABASE_URL: optionalText.pipe(z.string().url("DATABASE_URL must be a postgres:// URL").optional()),
  DATABASE_POOL_SIZE: z.coerce.number().int().min(2).max(200).default(20),
  // Open 2 connections (5 with a worker) at start-up, warmed, and keep them while idle (src/db/database.ts, KEPT_CONNECTIONS).
  DATABASE_KEEP_CONNECTIONS: z
    .enum(["true", "false", "1", "0"])
    .default("true")
    .transform((value) => value === "true" || value === "1"),
  EMBEDDED_POSTGRES_DIR: z.string().default(".data/postgres"),
  EMBEDDED_POSTGRES_PORT: z.coerce.number().int().min(1).max(65535).default(54329),
  REDIS_URL: optionalText.pipe(z.string().url("REDIS_URL must be a redis:// URL").optional()),
  // auto: Redis with REDIS_URL, else LISTEN/NOTIFY on an external database, else this process only.
  EVENTS_TRANSPORT: z.enum(["auto", "memory", "postgres", "redis"]).default("auto"),

  WORKER_ENABLED: z
    .enum(["true", "false", "1", "0"])
    .default("true")
    .transform((value) => value === "true" || value === "1"),
  WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(500).default(10),
  WORKER_DURABLE_COMMITS: z
    .enum(["true", "false", "1", "0"])
    .default("false")
    .transform((value) => value === "true" || value === "1"),
  WORKER_ASYNC_OUTCOMES: z
    .enum(["true", "false", "1", "0"])
    .default("false")
    .transform((value) => value === "true" || value === "1"),
  // Claimed ahead of free slots; sized from recent run and claim times unless set (WorkerPool.prefetchNow).
  WORKER_PREFETCH: z.coerce.number().int().min(0).max(1000).optional(),
  // Repeating timers: 0 would run them back to back.
  WORKER_POLL_INTERVAL_MS: milliseconds(1000, { min: 10 }),
  WORKER_HANDOFF_RESERVE_MS: milliseconds(100),
  WORKER_HEARTBEAT_INTERVAL_MS: milliseconds(15_000, { min: 100 }),
  WORKER_SHUTDOWN_GRACE_MS: milliseconds(10_000),
  JOB_TIMEOUT_MS: milliseconds(5 * 60_000),
  // At least twice the heartbeat interval (checked in loadConfig), or running jobs look stalled.
  STALLED_THRESHOLD_MS: milliseconds(5 * 60_000, { max: MAX_AGE_MS }),
  STALLED_CHECK_INTERVAL_MS: milliseconds(30_000),
  // How long a retry or cancel (of one job or in bulk) waits for a row another session holds before it gives up.
  // Under 100 ms, the worker's own short writes to a running job's row would refuse cancels under load.
  JOB_ACTION_LOCK_TIMEOUT_MS: z.coerce.number().int().min(100).max(600_000).default(5000),

  RETRY_INITIAL_DELAY_MS: milliseconds(1000),
  // At most 100: stalled recovery computes the backoff in SQL, where 1e300^99 is an overflow, not Infinity.
  RETRY_MULTIPLIER: z.coerce.number().min(1).max(100).default(2),
  RETRY_MAX_DELAY_MS: milliseconds(60_000),
  RETRY_JITTER: fraction(0.1),
  JOB_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(100).default(3),

  RETENTION_MAX_AGE_MS: milliseconds(7 * 24 * 3600_000, { max: MAX_AGE_MS }),
  RETENTION_INTERVAL_MS: milliseconds(3600_000),
  RETENTION_BATCH_SIZE: z.coerce.number().int().min(1).max(100_000).default(1000),
  // 0 keeps audit events for good: they are the record of who did what, and small.
  AUDIT_RETENTION_MAX_AGE_MS: milliseconds(0, { max: MAX_AGE_MS }),

  HEALTH_DEGRADED_SUCCESS_RATE: fraction(0.9),
  HEALTH_UNHEALTHY_SUCCESS_RATE: fraction(0.7),
  HEALTH_DEGRADED_STALLED: z.coerce.number().int().nonnegative().default(0),
  HEALTH_UNHEALTHY_STALLED: z.coerce.number().int().nonnegative().default(5),
  HEALTH_DEGRADED_QUEUED: z.coerce.number().int().nonnegative().default(100),
  HEALTH_DEGRADED_OLDEST_QUEUED_MS: milliseconds(10 * 60_000, { max: MAX_AGE_MS }),
  // Up to 7 days, as queueStats(windowSeconds) allows.
  HEALTH_WINDOW_MS: milliseconds(3600_000, { min: 1000, max: 7 * 24 * 3600_000 }),

  JWT_SECRET: optionalText,
  JWT_JWKS_URL: optionalText.pipe(z.string().url("JWT_JWKS_URL must be an https:// URL").optional()),
  JWT_ISSUER: optionalText,
  JWT_AUDIENCE: optionalText,
  JWT_MAX_LIFETIME_SECONDS: z.coerce.number().int().min(1).default(24 * 3600),

  GRAPHQL_MAX_DEPTH: z.coerce.number().int().min(1).default(15),
  GRAPHQL_MAX_COST: z.coerce.number().int().min(1).default(5000),
  GRAPHQL_MAX_ALIASES: z.coerce.number().int().min(0).default(30),
  GRAPHQL_MAX_SUBSCRIPTIONS_PER_SOCKET: z.coerce.number().int().min(1).default(1000),
  GRAPHQL_MAX_STREAMS_PER_CALLER: z.coerce.number().int().min(1).default(1000),
  GRAPHQL_MAX_SOCKETS_PER_CALLER: z.coerce.number().int().min(1).default(100),
  GRAPHQL_MAX_TOKENS: z.coerce.number().int().min(1).default(2000),
  GRAPHQL_MAX_DIRECTIVES: z.coerce.number().int().min(0).default(20),
  GRAPHQL_MAX_BODY_BYTES: z.coerce.number().int().min(1024).default(100_000),
  GRAPHQL_INTROSPECTION: z.enum(["true", "false"]).optional(),
  GRAPHIQL: z.enum(["true", "false"]).optional(),
  ALLOWED_ORIGINS: z.string().default(""),
  HEALTH_BROADCAST_INTERVAL_MS: milliseconds(5000, { min: 10 }),
  HEALTH_CACHE_MS: milliseconds(2000),
  FINISHED_JOB_CACHE_ENTRIES: z.coerce.number().int().nonnegative().default(10_000),
  FINISHED_JOB_CACHE_TTL_MS: milliseconds(60_000),
  // Uploads of createValidationRun: larger files are refused with 413 FILE_TOO_LARGE before they are read whole.
  VALIDATION_MAX_UPLOAD_BYTES: z.coerce.number().int().min(1024).default(50 * 1024 * 1024),
  VALIDATION_FINDINGS_PER_RULE: z.coerce.number().int().min(1).max(1000).default(100),
  // Unset leaves /metrics open: fine on loopback or a private scrape network, not on the internet.
  METRICS_TOKEN: optionalText,
});

/** Every variable Conveyor reads; the README's Configuration table must list each (test/unit/config-table.test.ts). */
export const CONFIG_VARIABLES = Object.keys(environmentSchema.shape) as (keyof typeof environmentSchema.shape)[];

type Variables = typeof environmentSchema.shape;

/**
 * One variable, validated, for code that runs before a Config exists (module-level setup, a
 * logger made without one); an invalid value gives the default, since loadConfig reports it anyway.
 */
export function environmentValue<K extends keyof Variables>(name: K, environment: NodeJS.ProcessEnv = process.env): z.output<Variables[K]> {
  const schema: z.ZodType = environmentSchema.shape[name];
  const parsed = schema.safeParse(environment[name]);
  return (parsed.success ? parsed.data : schema.parse(undefined)) as z.output<Variables[K]>;
}

// A fixed secret is convenient on a laptop and dangerous anywhere else: loadConfig accepts it only
// on a loopback HOST outside production.
export const DEVELOPMENT_JWT_SECRET = "conveyor-development-secret-do-not-use-in-production";

export type Config = ReturnType<typeof loadConfig>;

export class ConfigError extends Error {
  override name = "ConfigError";
}

/** Reads and validates the environment once; every problem is reported together, by variable name. */
export function loadConfig(environment: NodeJS.ProcessEnv = process.env) {
  const parsed = environmentSchema.safeParse(environment);
  const problems = parsed.success ? [] : parsed.error.issues.map((issue) => `  ${issue.path.join(".")}: ${issue.message}`);
  problems.push(...secretProblems(environment));
  if (parsed.success && parsed.data.EVENTS_TRANSPORT === "redis" && !parsed.data.REDIS_URL) problems.push("  EVENTS_TRANSPORT: redis needs REDIS_URL");
  if (parsed.success && parsed.data.STALLED_THRESHOLD_MS < 2 * parsed.data.WORKER_HEARTBEAT_INTERVAL_MS) {
    problems.push(
      `  STALLED_THRESHOLD_MS: must be at least twice WORKER_HEARTBEAT_INTERVAL_MS (${parsed.data.WORKER_HEARTBEAT_INTERVAL_MS}), or jobs still running are recovered as stalled`,
    );
  }
  if (!parsed.success || problems.length > 0) throw new ConfigError(`Invalid configuration:\n${problems.join("\n")}`);
  const env = parsed.data;
  const production = env.NODE_ENV === "production";
  return {
    environment: env.NODE_ENV,
    http: { host: env.HOST, port: env.PORT },
    logLevel: env.LOG_LEVEL,
    database: {
      url: env.DATABASE_URL,
      poolSize: env.DATABASE_POOL_SIZE,
      keepConnections: env.DATABASE_KEEP_CONNECTIONS,
      embeddedDirectory: env.EMBEDDED_POSTGRES_DIR,
      embeddedPort: env.EMBEDDED_POSTGRES_PORT,
    },
    redisUrl: env.REDIS_URL,
    eventsTransport: env.EVENTS_TRANSPORT,
    worker: {
      enabled: env.WORKER_ENABLED,
      concurrency: env.WORKER_CONCURRENCY,
      // Enough that a claim serves several jobs even with one slot (refilled at half); more made
      // claims slower at high concurrency (bench/throughput.ts: 100 ahead of 50 slots lost a third).
      prefetch: env.WORKER_PREFETCH ?? ("auto" as const),
      durableCommits: env.WORKER_DURABLE_COMMITS,
      asyncOutcomes: env.WORKER_ASYNC_OUTCOMES,
      pollIntervalMs: env.WORKER_POLL_INTERVAL_MS,
      handoffReserveMs: env.WORKER_HANDOFF_RESERVE_MS,
      heartbeatIntervalMs: env.WORKER_HEARTBEAT_INTERVAL_MS,
      shutdownGraceMs: env.WORKER_SHUTDOWN_GRACE_MS,
      jobTimeoutMs: env.JOB_TIMEOUT_MS,
      stalledThresholdMs: env.STALLED_THRESHOLD_MS,
      stalledCheckIntervalMs: env.STALLED_CHECK_INTERVAL_MS,
      actionLockTimeoutMs: env.JOB_ACTION_LOCK_TIMEOUT_MS,
    },
    retry: {
      initialDelayMs: env.RETRY_INITIAL_DELAY_MS,
      multiplier: env.RETRY_MULTIPLIER,
      maxDelayMs: env.RETRY_MAX_DELAY_MS,
      jitter: env.RETRY_JITTER,
      maxAttempts: env.JOB_MAX_ATTEMPTS,
    },
    retention: {
      maxAgeMs: env.RETENTION_MAX_AGE_MS,
      intervalMs: env.RETENTION_INTERVAL_MS,
      batchSize: env.RETENTION_BATCH_SIZE,
      auditMaxAgeMs: env.AUDIT_RETENTION_MAX_AGE_MS,
    },
    health: {
      degradedSuccessRate: env.HEALTH_DEGRADED_SUCCESS_RATE,
      unhealthySuccessRate: env.HEALTH_UNHEALTHY_SUCCESS_RATE,
      degradedStalled: env.HEALTH_DEGRADED_STALLED,
      unhealthyStalled: env.HEALTH_UNHEALTHY_STALLED,
      degradedQueued: env.HEALTH_DEGRADED_QUEUED,
      degradedOldestQueuedMs: env.HEALTH_DEGRADED_OLDEST_QUEUED_MS,
      windowMs: env.HEALTH_WINDOW_MS,
      broadcastIntervalMs: env.HEALTH_BROADCAST_INTERVAL_MS,
      cacheMs: env.HEALTH_CACHE_MS,
    },
    auth: {
      secret: env.JWT_SECRET ?? (env.JWT_JWKS_URL ? undefined : DEVELOPMENT_JWT_SECRET),
      jwksUrl: env.JWT_JWKS_URL,
      issuer: env.JWT_ISSUER,
      audience: env.JWT_AUDIENCE,
      maxLifetimeSeconds: env.JWT_MAX_LIFETIME_SECONDS,
    },
    graphql: {
      maxDepth: env.GRAPHQL_MAX_DEPTH,
      maxCost: env.GRAPHQL_MAX_COST,
      maxAliases: env.GRAPHQL_MAX_ALIASES,
      maxTokens: env.GRAPHQL_MAX_TOKENS,
      maxDirectives: env.GRAPHQL_MAX_DIRECTIVES,
      maxBodyBytes: env.GRAPHQL_MAX_BODY_BYTES,
      maxSubscriptionsPerSocket: env.GRAPHQL_MAX_SUBSCRIPTIONS_PER_SOCKET,
      maxStreamsPerCaller: env.GRAPHQL_MAX_STREAMS_PER_CALLER,
      maxSocketsPerCaller: env.GRAPHQL_MAX_SOCKETS_PER_CALLER,
      introspection: env.GRAPHQL_INTROSPECTION ? env.GRAPHQL_INTROSPECTION === "true" : !production,
      graphiql: env.GRAPHIQL ? env.GRAPHIQL === "true" : !production,
      // Field suggestions ("did you mean …") reveal the schema; hidden in production.
      hideSuggestions: production,
      allowedOrigins: env.ALLOWED_ORIGINS.split(",").map((origin) => origin.trim()).filter(Boolean),
      finishedJobCache: { maxEntries: env.FINISHED_JOB_CACHE_ENTRIES, ttlMs: env.FINISHED_JOB_CACHE_TTL_MS },
    },
    metrics: { token: env.METRICS_TOKEN },
    validation: { maxUploadBytes: env.VALIDATION_MAX_UPLOAD_BYTES, findingsPerRule: env.VALIDATION_FINDINGS_PER_RULE },
  };
}

/**
 * The development secret is published in this repository, so whoever can reach a server that
 * verifies with it can mint an operator token. It is only tolerated on loopback outside production.
 * Reads the raw environment, so that these problems join the schema's in one message.
 */
function secretProblems(environment: NodeJS.ProcessEnv): string[] {
  const present = (name: string) => (environment[name]?.trim() ?? "") !== "";
  const secret = environment.JWT_SECRET?.trim() ?? "";
  if (secret !== "") return secret.length < 32 ? ["  JWT_SECRET: must be at least 32 characters"] : [];
  if (present("JWT_JWKS_URL")) return [];
  const host = environment.HOST ?? "127.0.0.1";
  if (environment.NODE_ENV === "production") {
    return ["  JWT_SECRET: JWT_SECRET or JWT_JWKS_URL must be set when NODE_ENV=production"];
  }
  if (!isLoopback(host)) {
    return [
      `  JWT_SECRET: JWT_SECRET or JWT_JWKS_URL must be set when HOST (${JSON.stringify(host)}) is not a loopback address; without either, tokens are signed with the public development secret`,
    ];
  }
  return [];
}

/** 127.0.0.0/8, ::1 (also IPv4-mapped) and localhost: reachable from this machine only. */
export function isLoopback(host: string): boolean {
  const bare = host.trim().toLowerCase().replace(/^\[(.*)\]$/, "$1");
  if (bare === "localhost" || bare === "::1" || bare === "0:0:0:0:0:0:0:1") return true;
  const ipv4 = bare.replace(/^::ffff:/, "");
  return isIPv4(ipv4) && ipv4.startsWith("127.");
}
