import { randomUUID } from "node:crypto";
import { Redis, type RedisOptions } from "ioredis";
import type { Logger } from "../logger.js";
import { reportPublishing, throttledErrorLog } from "./publish-report.js";
import { createRedisEventTarget } from "./redis-event-target.js";

/** Over Redis: an instance lost events (its publishes failed); every instance catches up. */
export const EVENTS_LOST_TOPIC = "conveyor:events-lost";

// The subscribing connection's return and the publishing one's come close together: one catch-up
// for both, or a stream started again after the first would be ended by the second.
const CATCH_UP_DELAY_MS = 250;
// Redis confirms a SUBSCRIBE in well under a millisecond; one that waits this long is read without it.
const SUBSCRIBE_WAIT_MS = 3000;

export interface RedisTransport {
  target: EventTarget;
  /** Settles once Redis confirmed the subscription to `topic`: at once while the subscribing connection is away, at most SUBSCRIBE_WAIT_MS later otherwise. */
  whenListening(topic: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * Events between instances over Redis pub/sub, two connections (one publishes, one subscribes),
 * and what an outage of either costs:
 * - while the subscribing connection is away, this instance hears nothing from the others: once it
 *   is back and Redis has confirmed its subscriptions again, `catchUp` is called (this instance
 *   re-reads what its subscribers follow, and ends its streams of every job's changes);
 * - while publishes fail, the events are lost for every instance: once publishing works again and
 *   the subscribing connection is up, every instance is told through Redis, and each catches up.
 * A Redis outage never stops the caller: a publish that fails is logged and counted, and ioredis
 * reconnects (and resubscribes) by itself when Redis returns.
 */
export function createRedisTransport(
  redisUrl: string,
  options: {
    logger: Logger;
    countPublishFailures: (failures: number) => number;
    /** Events may have been lost here: read again what is followed, and tell the streams of every job's changes. */
    catchUp: () => void;
    /** Redis confirmed the subscription to `topic` only after whenListening gave up waiting: read it again. */
    catchUpTopic: (topic: string) => void;
  },
): RedisTransport {
  const { logger } = options;
  const connection: RedisOptions = {
    lazyConnect: false,
    // Reconnect for ever, backing off to one attempt every 2 s.
    retryStrategy: (attempt) => Math.min(attempt * 100, 2000),
  };
  // Publishes wait through a short blip in the offline queue, then fail rather than pile up.
  const publishClient = new Redis(redisUrl, { ...connection, maxRetriesPerRequest: 2 });
  // A subscription waits as long as it takes: ioredis resubscribes on reconnect.
  const subscribeClient = new Redis(redisUrl, { ...connection, maxRetriesPerRequest: null });
  for (const [name, client] of [["publish", publishClient], ["subscribe", subscribeClient]] as const) {
    // Without a listener ioredis prints every failed reconnection attempt to stderr.
    client.on("error", throttledErrorLog(logger, { client: name }, "Redis connection error; reconnecting"));
  }

  const busId = randomUUID();
  /** When this instance's first publish failed since the others were last told, if one did. */
  let lostSince: number | null = null;
  let closed = false;
  let catchUpTimer: NodeJS.Timeout | null = null;
  const scheduleCatchUp = () => {
    if (closed) return;
    catchUpTimer ??= setTimeout(() => {
      catchUpTimer = null;
      void catchUpNow();
    }, CATCH_UP_DELAY_MS);
    catchUpTimer.unref();
  };
  const catchUpNow = async () => {
    // The subscribing connection's return schedules a catch-up of its own.
    if (subscribeClient.status !== "ready") return;
    if (lostSince !== null) {
      logger.info({ busId, eventsLostSince: new Date(lostSince).toISOString() }, "events may have been lost; every instance catches up");
      lostSince = null;
      target.dispatchEvent(new CustomEvent(EVENTS_LOST_TOPIC, { detail: busId }));
    }
    // ioredis sends the connection's SUBSCRIBEs again as it turns ready; a PING's reply (an error
    // reply too) comes after theirs. Re-read before Redis confirmed them, a change published in
    // between would reach nobody here.
    const connection = lostConnections;
    await subscribeClient.ping().catch(() => undefined);
    // Lost meanwhile, ioredis sends the PING again on the next connection: that one's return catches up.
    if (connection !== lostConnections || closed) return;
    options.catchUp();
  };

  /** Subscribing connections lost so far: a catch-up belongs to one connection. */
  let lostConnections = 0;
  /** The subscribing connection closed since it was last ready (or before it ever was). */
  let away = false;
  /** Waits for subscriptions (whenListening), which end when the subscribing connection is lost. */
  const waiting = new Set<() => void>();
  subscribeClient.on("close", () => {
    lostConnections += 1;
    away = true;
    for (const settle of [...waiting]) settle();
  });
  subscribeClient.on("ready", () => {
    if (!away) return;
    away = false;
    scheduleCatchUp();
  });

  /**
   * Settles once Redis confirms the subscription to `topic`; at once while the subscribing
   * connection is away, or when it is lost (its return catches up: the job's state is read again,
   * so a change made meanwhile is not missed); and after SUBSCRIBE_WAIT_MS if Redis does not answer
   * (it may be busy, or accept connections and say nothing): read now, and again once it confirms.
   */
  function whenListening(topic: string): Promise<void> {
    if (away) return Promise.resolve();
    const confirmed = redis.whenListening(topic);
    return new Promise<void>((resolve) => {
      const settle = () => {
        clearTimeout(timer);
        waiting.delete(settle);
        resolve();
      };
      const timer = setTimeout(() => {
        settle();
        // Redis is slow, not gone (no connection was lost): only this topic may have missed something.
        void confirmed.then(() => {
          if (!closed) options.catchUpTopic(topic);
        });
      }, SUBSCRIBE_WAIT_MS);
      timer.unref();
      waiting.add(settle);
      void confirmed.then(settle);
    });
  }

  // Once publishing works again (a publish goes through, or the publishing connection is back while
  // nothing more is published), the others are told.
  const report = reportPublishing(logger, "Redis publish", options.countPublishFailures, () => {
    if (lostSince !== null) scheduleCatchUp();
  });
  publishClient.on("ready", () => {
    if (lostSince !== null) scheduleCatchUp();
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
  const target = redis.target;
  target.addEventListener(EVENTS_LOST_TOPIC, (event) => {
    const from = (event as CustomEvent).detail;
    if (from === busId) return;
    logger.info({ from }, "another instance lost events; catching up");
    scheduleCatchUp();
  });

  return {
    target,
    whenListening,
    async close() {
      closed = true;
      if (catchUpTimer) clearTimeout(catchUpTimer);
      catchUpTimer = null;
      for (const settle of [...waiting]) settle();
      // QUIT waits for a connection that may never come back; an unready client is just dropped.
      await Promise.all(
        [publishClient, subscribeClient].map((client) => (client.status === "ready" ? client.quit().then(() => undefined, () => client.disconnect()) : client.disconnect())),
      );
    },
  };
}
