import { createPubSub, type PubSub } from "graphql-yoga";
import { setMaxListeners } from "node:events";
import { randomUUID } from "node:crypto";
import { Redis, type RedisOptions } from "ioredis";
import { environmentValue } from "../config.js";
import { createLogger, type Logger } from "../logger.js";
import { isTerminalStatus } from "../jobs/types.js";
import { ChangeOrder } from "./change-order.js";
import { JOB_TOPIC_PREFIX, type JobChange, type QueueHealthChange } from "./messages.js";
import { createPgEventTarget } from "./pg-event-target.js";
import { createRedisEventTarget } from "./redis-event-target.js";

export type { JobChange, QueueHealthChange } from "./messages.js";

/** Topics and their payloads. Events stay small; subscribers re-read whatever else they need. */
export type EventTopics = {
  "job:changed": [jobId: string, change: JobChange];
  "jobs:changed": [change: JobChange];
  "queue-health:changed": [change: QueueHealthChange];
  /** A job left a final state (retryJob): answers cached about it are stale on every instance. */
  "jobs:reopened": [jobId: string];
  /** Finished jobs were deleted (retention, cleanupJobs): how many. */
  "jobs:deleted": [count: number];
};

export interface EventBus {
  pubsub: PubSub<EventTopics>;
  /**
   * Calls `listener` with each event of one topic (`"job:changed:<job id>"`, `"jobs:changed"`…) as
   * it is published, with no queue in between; returns what stops it. For readers that keep their
   * own bounded backlog (src/graphql/eager-reader.ts): pubsub.subscribe's queue holds at most 1,024
   * events and throws at the publisher beyond that, which a burst of one batch's changes exceeds.
   */
  listen<T>(topic: string, listener: (payload: T) => void): () => void;
  /**
   * Settles once changes committed from now on reach this instance's listeners on `topic`, which
   * `listen` has just added: from another instance, that takes a round trip (a Redis SUBSCRIBE,
   * or the topic's registration in the database). Read a job's first state after it.
   */
  whenListening(topic: string): Promise<void>;
  /**
   * Calls `listener` each time events may have been lost here: the connection that brings them
   * (Redis, or the LISTEN connection) came back after an outage, or publishing works again after
   * failures. A job's own topic is caught up by itself (its current state is published again);
   * a stream of every job's changes is not, and must tell its reader. Returns what stops it.
   */
  onInterrupted(listener: () => void): () => void;
  /** On the job's topic and on jobs:changed; on jobs:reopened too when it left a final state. */
  publishJobChange(change: JobChange): void;
  /**
   * These jobs are being created here, and publishJobChange will announce them: until it does,
   * listeners here get none of their later changes (a worker's claim can overtake the creation).
   */
  expectCreations(jobIds: readonly string[]): void;
  /**
   * The statement is over: `notCreated` will never be announced (a duplicate key, a failure); the
   * creation of `created` is awaited at most a second longer.
   */
  settleCreations(created: readonly string[], notCreated: readonly string[]): void;
  publishJobsDeleted(count: number): void;
  /**
   * Live listeners in this process on one topic (`"job:changed:<job id>"`, `"jobs:changed"`…), or
   * on every topic: one per running subscription, so a leak shows here.
   */
  listenerCount(topic?: string): number;
  /**
   * Settles once the first attempt to listen is over (connected or not): events published before
   * that never reach this instance, so Conveyor starts serving only after it.
   */
  ready(): Promise<void>;
  /** Where events travel: this process only, PostgreSQL LISTEN/NOTIFY, or Redis. */
  readonly transport: "memory" | "postgres" | "redis";
  /** Publishes Redis or PostgreSQL refused or never received since start (always 0 in-process), for metrics. */
  readonly publishFailures: number;
  close(): Promise<void>;
}

// During an outage every publish fails; one line per interval says so without flooding the log.
const FAILURE_LOG_INTERVAL_MS = 10_000;

export interface EventBusOptions {
  logger?: Logger;
  /**
   * Without Redis, events between instances sharing this database go through LISTEN/NOTIFY
   * (src/events/pg-event-target.ts). Omitted, events stay in this process.
   */
  postgres?: {
    connectionString: string;
    /** This instance's id, set on its own connections (DatabaseOptions.instanceId). */
    instanceId?: string;
  };
  /**
   * The current state of these jobs. Events sent while Redis or the LISTEN connection was away are
   * lost; once it is back, every job someone here follows is re-published from this, so each
   * subscriber ends up with its job's current state (a terminal one ends its stream).
   */
  currentState?: (jobIds: string[]) => Promise<JobChange[]>;
}

// ioredis resubscribes as it turns ready; give that a moment before re-publishing.
const RESYNC_DELAY_MS = 250;
/** Over Redis: an instance lost events (its publishes failed, or its connection was away); every instance catches up. */
const EVENTS_LOST_TOPIC = "conveyor:events-lost";

/**
 * In-process pub/sub; Redis pub/sub when a URL is given; else PostgreSQL LISTEN/NOTIFY when a
 * database is given; so every instance sees every event.
 * A Redis outage never stops the caller: a publish that fails is logged and counted, its event is
 * lost (subscribers on other instances miss it; each event is a full state, so the next one
 * catches them up), and ioredis reconnects and resubscribes by itself when Redis returns.
 */
export function createEventBus(redisUrl?: string, options: EventBusOptions = {}): EventBus {
  let connections: Redis[] = [];
  let target: EventTarget;
  let publishFailures = 0;
  let closeTarget: () => Promise<void> = async () => {};
  let ready: Promise<void> = Promise.resolve();
  let whenListening: (topic: string) => Promise<void> = () => Promise.resolve();
  const transport = redisUrl ? "redis" : options.postgres ? "postgres" : "memory";
  const logger = (options.logger ?? createLogger(environmentValue("LOG_LEVEL"))).child({ component: "events" });
  const interruptionListeners = new Set<() => void>();
  const interrupted = () => {
    for (const listener of [...interruptionListeners]) {
      try {
        listener();
      } catch (error) {
        logger.error({ err: error }, "an interruption listener threw");
      }
    }
  };
  if (redisUrl) {
    const connection: RedisOptions = {
      lazyConnect: false,
      // Reconnect for ever, backing off to one attempt every 2 s.
      retryStrategy: (attempt) => Math.min(attempt * 100, 2000),
    };
    // Publishes wait through a short blip in the offline queue, then fail rather than pile up.
    const publishClient = new Redis(redisUrl, { ...connection, maxRetriesPerRequest: 2 });
    // A subscription waits as long as it takes: ioredis resubscribes on reconnect.
    const subscribeClient = new Redis(redisUrl, { ...connection, maxRetriesPerRequest: null });
    connections = [publishClient, subscribeClient];
    // Events that fail to reach Redis are lost for every instance, not only this one: once Redis is
    // back (or takes publishes again), every instance is told to catch up (resync) and to end its
    // streams of every job's changes, through Redis itself.
    const busId = randomUUID();
    let lostSince: number | null = null;
    const catchUpEverywhere = () => {
      logger.info({ busId, eventsLostSince: lostSince === null ? undefined : new Date(lostSince).toISOString() }, "events may have been lost; every instance catches up");
      lostSince = null;
      resync();
      target.dispatchEvent(new CustomEvent(EVENTS_LOST_TOPIC, { detail: busId }));
    };
    // The subscribing connection's return and the publishing one's come close together: one
    // catch-up for both, or a stream started again after the first would be ended by the second.
    let catchUpTimer: NodeJS.Timeout | null = null;
    const scheduleCatchUp = () => {
      catchUpTimer ??= setTimeout(() => {
        catchUpTimer = null;
        catchUpEverywhere();
      }, RESYNC_DELAY_MS);
      catchUpTimer.unref();
    };
    let connectedBefore = false;
    let awayAtStart = false;
    subscribeClient.on("ready", () => {
      if (connectedBefore) scheduleCatchUp();
      // Redis was away from the start: subscriptions made meanwhile did not wait for it (see
      // whenListening) and catch up now; other instances lost nothing of this one's but what its
      // failed publishes say (and then they are told).
      else if (awayAtStart && lostSince !== null) scheduleCatchUp();
      else if (awayAtStart) setTimeout(resync, RESYNC_DELAY_MS).unref();
      connectedBefore = true;
    });
    // Settles when the subscribing connection is lost; a new one for the next connection.
    let connectionLost!: () => void;
    const nextLoss = () => new Promise<void>((resolve) => (connectionLost = resolve));
    let lost = nextLoss();
    subscribeClient.on("close", () => {
      if (!connectedBefore) awayAtStart = true;
      connectionLost();
      lost = nextLoss();
    });
    for (const [name, client] of [["publish", publishClient], ["subscribe", subscribeClient]] as const) {
      let lastErrorLog = 0;
      // Without a listener ioredis prints every failed reconnection attempt to stderr.
      client.on("error", (error: unknown) => {
        if (Date.now() - lastErrorLog < FAILURE_LOG_INTERVAL_MS) return;
        lastErrorLog = Date.now();
        logger.warn({ err: error, client: name }, "Redis connection error; reconnecting");
      });
    }
    // After a reconnection's catch-up, the first publish that works again has nothing more to tell;
    // while the subscribing connection is still away, its return will catch up.
    const report = reportPublishing(logger, "Redis publish", (count) => (publishFailures += count), () => {
      if (lostSince !== null && subscribeClient.status === "ready") scheduleCatchUp();
    });
    const redis = createRedisEventTarget({
      publishClient,
      subscribeClient,
      onPublished: report.published,
      onPublishError: (error, topic) => {
        lostSince ??= Date.now();
        report.failed(error, 1, { topic });
      },
      onSubscribeError: (error, topic) => logger.error({ err: error, topic }, "Redis subscribe or unsubscribe failed"),
    });
    target = redis.target;
    closeTarget = async () => {
      if (catchUpTimer) clearTimeout(catchUpTimer);
      catchUpTimer = null;
    };
    target.addEventListener(EVENTS_LOST_TOPIC, (event) => {
      const from = (event as CustomEvent).detail;
      if (from === busId) return;
      logger.info({ from }, "another instance lost events; catching up");
      resync();
    });
    // Redis confirms a SUBSCRIBE only once it is back: a subscriber's first read of its job waited
    // for the whole outage. While the connection is away the read need not wait: the job's state
    // is published again when it returns (resync), so a change made meanwhile is not missed.
    whenListening = (topic) => (subscribeClient.status === "ready" ? Promise.race([redis.whenListening(topic), lost]) : Promise.resolve());
  } else if (options.postgres) {
    // Job changes do not travel through these publishes (they come from the statements): a failed
    // one loses no change of a job, and interrupts nobody's stream.
    const report = reportPublishing(logger, "event notification", (count) => (publishFailures += count));
    const pgTarget = createPgEventTarget({
      connectionString: options.postgres.connectionString,
      logger,
      onPublished: report.published,
      onPublishError: (error, events) => report.failed(error, events),
      onReconnect: () => resync(),
      // Job changes travel from the statements that make them (src/jobs/sql.ts, announceChanges).
      sentByStatements: (topic) => topic.startsWith(JOB_TOPIC_PREFIX) || topic === "jobs:changed" || topic === "jobs:reopened",
      instanceId: options.postgres.instanceId,
    });
    target = pgTarget.target;
    whenListening = pgTarget.whenListening;
    closeTarget = pgTarget.close;
    ready = pgTarget.ready;
  } else {
    // One listener per subscription on a topic: thousands on one job is normal, not a leak.
    target = new EventTarget();
    setMaxListeners(0, target);
  }
  const order = new ChangeOrder((error) => logger.error({ err: error }, "an event listener threw"));
  const counted = countListeners(target, order);
  const pubsub = createPubSub<EventTopics>({ eventTarget: counted.target as never });
  function resync(): void {
    interrupted();
    const jobIds = counted.topics().flatMap((topic) => (topic.startsWith(JOB_TOPIC_PREFIX) ? [topic.slice(JOB_TOPIC_PREFIX.length)] : []));
    if (jobIds.length === 0 || !options.currentState) return;
    options.currentState(jobIds).then(
      // Only to the job's own topic: jobUpdates subscribers did not ask for a replay.
      (changes) => changes.forEach((change) => pubsub.publish("job:changed", change.jobId, change)),
      (error: unknown) => logger.warn({ err: error }, "could not re-read followed jobs after reconnecting"),
    );
  }
  return {
    pubsub,
    listen<T>(topic: string, listener: (payload: T) => void) {
      const callback = (event: Event) => listener((event as CustomEvent<T>).detail);
      counted.target.addEventListener(topic, callback);
      return () => counted.target.removeEventListener(topic, callback);
    },
    whenListening: (topic) => whenListening(topic),
    onInterrupted(listener) {
      interruptionListeners.add(listener);
      return () => interruptionListeners.delete(listener);
    },
    publishJobChange(change) {
      pubsub.publish("job:changed", change.jobId, change);
      pubsub.publish("jobs:changed", change);
      if (change.previousStatus && isTerminalStatus(change.previousStatus)) pubsub.publish("jobs:reopened", change.jobId);
    },
    expectCreations(jobIds) {
      // Only jobs:changed can have listeners for a job not created yet.
      if (counted.count("jobs:changed") > 0) order.expect(jobIds);
    },
    settleCreations(created, notCreated) {
      order.settle(created, notCreated);
    },
    publishJobsDeleted(count) {
      pubsub.publish("jobs:deleted", count);
    },
    listenerCount: counted.count,
    ready: () => ready,
    transport,
    get publishFailures() {
      return publishFailures;
    },
    async close() {
      await closeTarget();
      // QUIT waits for a connection that may never come back; an unready client is just dropped.
      await Promise.all(
        connections.map((connection) => (connection.status === "ready" ? connection.quit().then(() => undefined, () => connection.disconnect()) : connection.disconnect())),
      );
    },
  };
}

/**
 * Calls `listener` with each event of `topic` as it is published (EventBus.listen), from now on, and
 * logs what it throws; returns the unsubscribe. Whatever this process publishes after the call
 * reaches it (e.g. the announce after a COMMIT), and no burst can overflow a queue in between.
 */
export function forEachEvent<T>(bus: Pick<EventBus, "listen">, topic: string, listener: (event: T) => void, logger: Logger): () => void {
  return bus.listen<T>(topic, (event) => {
    try {
      listener(event);
    } catch (error) {
      logger.error({ err: error }, "an event listener threw");
    }
  });
}

/**
 * Wraps an event target to keep the live listeners of each topic, and to drop a job change that a
 * later one of the same job overtook on its way here (ChangeOrder), whichever instance sent it.
 */
function countListeners(inner: EventTarget, order: ChangeOrder): { target: EventTarget; count: (topic?: string) => number; topics: () => string[] } {
  const listeners = new Map<string, Map<EventListenerOrEventListenerObject, { wrapped: EventListener; stop: () => void }>>();
  const ordered = (topic: string, listener: EventListenerOrEventListenerObject): { wrapped: EventListener; stop: () => void } => {
    const call = (event: Event) => (typeof listener === "function" ? listener(event) : listener.handleEvent(event));
    return topic.startsWith(JOB_TOPIC_PREFIX) || topic === "jobs:changed" ? order.listener(topic, call) : { wrapped: call, stop: () => {} };
  };
  const target: EventTarget = {
    addEventListener(topic, listener, options) {
      if (!listener) return;
      let byListener = listeners.get(topic);
      if (!byListener) listeners.set(topic, (byListener = new Map()));
      if (byListener.has(listener)) return;
      const entry = ordered(topic, listener);
      byListener.set(listener, entry);
      inner.addEventListener(topic, entry.wrapped, options);
    },
    removeEventListener(topic, listener, options) {
      const byListener = listeners.get(topic);
      const entry = listener ? byListener?.get(listener) : undefined;
      if (!byListener || !listener || !entry) return;
      byListener.delete(listener);
      if (byListener.size === 0) listeners.delete(topic);
      entry.stop();
      inner.removeEventListener(topic, entry.wrapped, options);
    },
    dispatchEvent: (event) => inner.dispatchEvent(event),
  };
  const count = (topic?: string) => {
    if (topic !== undefined) return listeners.get(topic)?.size ?? 0;
    let total = 0;
    for (const byListener of listeners.values()) total += byListener.size;
    return total;
  };
  return { target, count, topics: () => [...listeners.keys()] };
}

/**
 * Logs publish failures without flooding: the first of an outage at once, then at most one line per
 * FAILURE_LOG_INTERVAL_MS with the count since, and one line when publishing works again.
 */
function reportPublishing(logger: Logger, what: string, count: (failures: number) => number, recovered: () => void = () => {}) {
  let failing = false;
  let lastFailureLog = 0;
  let failuresSinceLog = 0;
  return {
    published() {
      if (!failing) return;
      failing = false;
      logger.info({ publishFailures: count(0) }, `${what} recovered`);
      recovered();
    },
    failed(error: unknown, events: number, context: Record<string, unknown> = {}) {
      const publishFailures = count(events);
      failuresSinceLog += events;
      if (failing && Date.now() - lastFailureLog < FAILURE_LOG_INTERVAL_MS) return;
      failing = true;
      lastFailureLog = Date.now();
      logger.error({ err: error, ...context, failures: failuresSinceLog, publishFailures }, `${what} failed; event lost, jobs keep running`);
      failuresSinceLog = 0;
    },
  };
}
