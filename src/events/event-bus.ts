import { createPubSub, type PubSub } from "graphql-yoga";
import { createRedisEventTarget } from "@graphql-yoga/redis-event-target";
import { setMaxListeners } from "node:events";
import { Redis } from "ioredis";
import type { JobChange, QueueHealthChange } from "./messages.js";

export type { JobChange, QueueHealthChange } from "./messages.js";

/** Topics and their payloads. Events stay small; subscribers re-read whatever else they need. */
export type EventTopics = {
  "job:changed": [jobId: string, change: JobChange];
  "jobs:changed": [change: JobChange];
  "queue-health:changed": [change: QueueHealthChange];
};

export interface EventBus {
  pubsub: PubSub<EventTopics>;
  publishJobChange(change: JobChange): void;
  close(): Promise<void>;
}

/** In-process pub/sub, or Redis pub/sub when a URL is given so every instance sees every event. */
export function createEventBus(redisUrl?: string): EventBus {
  let connections: Redis[] = [];
  let pubsub: PubSub<EventTopics>;
  if (redisUrl) {
    const publishClient = new Redis(redisUrl, { lazyConnect: false, maxRetriesPerRequest: 3 });
    const subscribeClient = new Redis(redisUrl, { lazyConnect: false, maxRetriesPerRequest: null });
    connections = [publishClient, subscribeClient];
    pubsub = createPubSub<EventTopics>({
      eventTarget: createRedisEventTarget({ publishClient, subscribeClient }),
    });
  } else {
    // One listener per subscription on a topic: thousands on one job is normal, not a leak.
    const eventTarget = new EventTarget();
    setMaxListeners(0, eventTarget);
    pubsub = createPubSub<EventTopics>({ eventTarget });
  }
  return {
    pubsub,
    publishJobChange(change) {
      pubsub.publish("job:changed", change.jobId, change);
      pubsub.publish("jobs:changed", change);
    },
    async close() {
      await Promise.all(connections.map((connection) => connection.quit().catch(() => connection.disconnect())));
    },
  };
}
