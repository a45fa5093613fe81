import { createPubSub, type PubSub } from "graphql-yoga";
import { setMaxListeners } from "node:events";
import { environmentValue } from "../config.js";
import { createLogger, type Logger } from "../logger.js";
import { isTerminalStatus } from "../jobs/types.js";
import { ChangeOrder } from "./change-order.js";
import { JOB_TOPIC_PREFIX, jobIdOfTopic, jobTopic, type JobChange, type QueueHealthChange } from "./messages.js";
import { createPgEventTarget } from "./pg-event-target.js";
import { reportPublishing } from "./publish-report.js";
import { createRedisTransport } from "./redis-transport.js";

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

const RESYNC_RETRY_INITIAL_MS = 250;
const RESYNC_RETRY_MAX_MS = 5_000;

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
   * lost; once it is back, every job someone here follows is read again with this and given to its
   * listeners here, so each subscriber ends up with its job's current state (a terminal one ends
   * its stream).
   */
  currentState?: (jobIds: string[]) => Promise<JobChange[]>;
}

/**
 * In-process pub/sub; Redis pub/sub when a URL is given (src/events/redis-transport.ts); else
 * PostgreSQL LISTEN/NOTIFY when a database is given (src/events/pg-event-target.ts); so every
 * instance sees every event. After an outage of either, the transport calls for a catch-up: the
 * jobs followed here are read again, and streams of every job's changes are told (onInterrupted).
 */
export function createEventBus(redisUrl?: string, options: EventBusOptions = {}): EventBus {
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
    const redis = createRedisTransport(redisUrl, {
      logger,
      countPublishFailures: (count) => (publishFailures += count),
      catchUp: () => resync(),
      // A job's own topic is read again; a stream of every job's changes cannot be, and is told.
      catchUpTopic: (topic) => {
        const jobId = jobIdOfTopic(topic);
        if (jobId === null) resync();
        else readJobAgain(jobId);
      },
    });
    target = redis.target;
    whenListening = redis.whenListening;
    closeTarget = redis.close;
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
  const listenerThrew = (error: unknown) => logger.error({ err: error }, "an event listener threw");
  const order = new ChangeOrder(listenerThrew);
  const counted = countListeners(target, order, listenerThrew);
  const pubsub = createPubSub<EventTopics>({ eventTarget: counted.target as never });
  // After an outage the followed jobs are read again; a read that fails (the database may be away
  // too) is tried again, until it works or a newer catch-up or close takes over. Only the newest
  // catch-up's read is delivered: an older one finishing later would show older states again.
  let catchUps = 0;
  let retryTimer: NodeJS.Timeout | null = null;
  let closed = false;
  function resync(): void {
    interrupted();
    if (retryTimer) clearTimeout(retryTimer);
    retryTimer = null;
    void readFollowedJobsAgain(++catchUps, 0);
  }
  // To this instance's listeners of each job's own topic only: the other instances catch up by
  // themselves, and jobUpdates subscribers did not ask for a replay.
  const deliverStates = (changes: JobChange[]) => {
    for (const change of changes) counted.deliver(jobTopic(change.jobId), change);
  };
  /** One followed job read again and given to its listeners here, once (a failure is logged). */
  function readJobAgain(jobId: string): void {
    if (!options.currentState || closed || counted.count(jobTopic(jobId)) === 0) return;
    options.currentState([jobId]).then(
      (changes) => {
        if (!closed) deliverStates(changes);
      },
      (error: unknown) => logger.warn({ err: error, jobId }, "could not re-read a followed job"),
    );
  }
  async function readFollowedJobsAgain(catchUp: number, attempt: number): Promise<void> {
    const jobIds = counted.topics().flatMap((topic) => jobIdOfTopic(topic) ?? []);
    if (jobIds.length === 0 || !options.currentState || closed) return;
    try {
      const changes = await options.currentState(jobIds);
      if (catchUp !== catchUps || closed) return;
      deliverStates(changes);
    } catch (error) {
      if (catchUp !== catchUps || closed) return;
      const delay = Math.min(RESYNC_RETRY_INITIAL_MS * 2 ** attempt, RESYNC_RETRY_MAX_MS);
      logger.warn({ err: error, retryInMs: delay }, "could not re-read followed jobs after reconnecting; trying again");
      retryTimer = setTimeout(() => {
        retryTimer = null;
        void readFollowedJobsAgain(catchUp, attempt + 1);
      }, delay);
      retryTimer.unref();
    }
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
      closed = true;
      if (retryTimer) clearTimeout(retryTimer);
      await closeTarget();
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
function countListeners(
  inner: EventTarget,
  order: ChangeOrder,
  onListenerError: (error: unknown) => void,
): { target: EventTarget; count: (topic?: string) => number; topics: () => string[]; deliver: (topic: string, detail: unknown) => void } {
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
  /** To this process's listeners of `topic` only, as if the event had arrived (in order, through ChangeOrder). */
  const deliver = (topic: string, detail: unknown) => {
    const byListener = listeners.get(topic);
    if (!byListener) return;
    const event = new CustomEvent(topic, { detail });
    for (const { wrapped } of [...byListener.values()]) {
      try {
        wrapped(event);
      } catch (error) {
        onListenerError(error);
      }
    }
  };
  return { target, count, topics: () => [...listeners.keys()], deliver };
}
