import type { Redis } from "ioredis";

/**
 * An EventTarget over Redis pub/sub, like @graphql-yoga/redis-event-target except that no Redis
 * command's promise is left floating: that package ignores the promise `publish` returns, so a
 * publish rejected during a Redis outage was an unhandled rejection, which ends a Node process.
 * Failures go to the callbacks instead; ioredis reconnects (and resubscribes) by itself.
 * `whenListening(topic)` settles once Redis has confirmed the subscription to it.
 */
export function createRedisEventTarget(options: {
  publishClient: Redis;
  subscribeClient: Redis;
  onPublished?: () => void;
  onPublishError: (error: unknown, topic: string) => void;
  onSubscribeError: (error: unknown, topic: string) => void;
}): { target: EventTarget; whenListening(topic: string): Promise<void> } {
  const { publishClient, subscribeClient } = options;
  const callbacksForTopic = new Map<string, Set<EventListenerOrEventListenerObject>>();
  const subscribed = new Map<string, Promise<void>>();

  subscribeClient.on("message", (channel: string, message: string) => {
    const callbacks = callbacksForTopic.get(channel);
    if (!callbacks) return;
    let detail: unknown;
    try {
      detail = message === "" ? null : JSON.parse(message);
    } catch (error) {
      // Thrown from an ioredis event handler, this would be an uncaught exception.
      options.onSubscribeError(error, channel);
      return;
    }
    const event = new CustomEvent(channel, { detail });
    for (const callback of callbacks) {
      if (typeof callback === "function") callback(event);
      else callback.handleEvent(event);
    }
  });

  const target: EventTarget = {
    addEventListener(topic: string, listener: EventListenerOrEventListenerObject | null) {
      if (!listener) return;
      let callbacks = callbacksForTopic.get(topic);
      if (!callbacks) {
        callbacks = new Set();
        callbacksForTopic.set(topic, callbacks);
        const subscribing = subscribeClient.subscribe(topic).then(
          () => undefined,
          (error: unknown) => options.onSubscribeError(error, topic),
        );
        subscribed.set(topic, subscribing);
      }
      callbacks.add(listener);
    },
    removeEventListener(topic: string, listener: EventListenerOrEventListenerObject | null) {
      const callbacks = callbacksForTopic.get(topic);
      if (!callbacks || !listener) return;
      callbacks.delete(listener);
      if (callbacks.size > 0) return;
      callbacksForTopic.delete(topic);
      subscribed.delete(topic);
      subscribeClient.unsubscribe(topic).catch((error: unknown) => options.onSubscribeError(error, topic));
    },
    dispatchEvent(event: Event) {
      const detail = (event as CustomEvent).detail;
      publishClient.publish(event.type, detail === undefined ? "" : JSON.stringify(detail)).then(
        () => options.onPublished?.(),
        (error: unknown) => options.onPublishError(error, event.type),
      );
      return true;
    },
  };
  return { target, whenListening: (topic) => subscribed.get(topic) ?? Promise.resolve() };
}
