import { randomUUID } from "node:crypto";
import pg from "pg";
import type { Logger } from "../logger.js";
import { NotificationListener } from "../jobs/notification-listener.js";
import { ListenerRegistry } from "./listener-registry.js";

export const EVENTS_CHANNEL = "conveyor_events";

/**
 * PostgreSQL refuses a NOTIFY payload of 8000 bytes or more; stay under it with room for the
 * envelope. Measured in UTF-8 bytes, as PostgreSQL counts.
 */
export const MAX_NOTIFY_BYTES = 7900;
// An outage must not grow memory without bound: past this many waiting events new ones are dropped.
const MAX_PENDING = 10_000;
// Up to this many topics listened to, a notification is searched for their names before it is parsed.
const FEW_TOPICS = 8;

/** One notification carries a batch: `[[topics, detail], …]`, topics sharing one detail once. */
type Entry = [topics: string[], detail: unknown];

/** A notification: the sending instance, then its batch. */
interface Envelope {
  from: string;
  entries: Entry[];
}

/**
 * An EventTarget over PostgreSQL LISTEN/NOTIFY, so instances sharing a database share events
 * without Redis. An event is delivered to this instance's listeners at once, as it is dispatched.
 *
 * Job changes (the topics `sentByStatements` names) reach other instances from the database itself:
 * the statement that changed the jobs notifies, as it commits, of the changes that some instance
 * listens to (src/jobs/sql.ts, announceChanges), so a change nobody elsewhere follows costs nothing
 * more. This target keeps the topics listened to here registered (ListenerRegistry); `whenListening`
 * tells when changes committed from then on will arrive. This instance's own connections carry its
 * id (`instanceId`): their statements leave its listeners out, and sign what they send with it.
 *
 * Other events are sent from here: those dispatched in the same tick are packed into as few
 * notifications as fit under the 8 kB limit and sent in one `SELECT pg_notify(…)` on a connection of
 * its own, one batch in flight at a time so the order holds; an event too big for one notification
 * is dropped and reported. Events of one publisher arrive in its order; events of one job published
 * by two instances may not, and carry their time (`at`) for that. Notifications sent while the
 * LISTEN connection is down are lost (`onReconnect` says when it is back), as are batches the
 * database refused: each event is a full state, so the next catches up.
 */
export function createPgEventTarget(options: {
  connectionString: string;
  logger: Logger;
  onPublished?: () => void;
  onPublishError: (error: unknown, events: number) => void;
  onReconnect?: () => void;
  sentByStatements?: (topic: string) => boolean;
  /** The id this instance's connections carry as conveyor.instance (DatabaseOptions.instanceId). */
  instanceId?: string;
}): { target: EventTarget; ready: Promise<void>; whenListening(topic: string): Promise<void>; close(): Promise<void> } {
  const { logger } = options;
  const sentByStatements = options.sentByStatements ?? (() => false);
  // Connections of its own rather than the API pool's: publishing and registering then never wait
  // behind API queries (nor they behind it); one batch in flight and one registration need two.
  const pool = new pg.Pool({ connectionString: options.connectionString, max: 2, application_name: "conveyor-events" });
  const instance = options.instanceId ?? randomUUID();
  pool.on("error", (error) => logger.warn({ err: error }, "idle event connection failed"));
  const registry = new ListenerRegistry(pool, instance, logger);
  const callbacksForTopic = new Map<string, Set<EventListenerOrEventListenerObject>>();
  let pending: Entry[] = [];
  let flushing: Promise<void> | null = null;
  let scheduled = false;
  let closed = false;

  // A listener that throws must not end a notification handler (an uncaught exception) nor a
  // publisher's call.
  const deliverSafely = (topic: string, detail: unknown) => {
    try {
      deliver(topic, detail);
    } catch (error) {
      logger.error({ err: error, topic }, "an event listener failed");
    }
  };
  const deliver = (topic: string, detail: unknown) => {
    const callbacks = callbacksForTopic.get(topic);
    if (!callbacks) return;
    const event = new CustomEvent(topic, { detail });
    for (const callback of [...callbacks]) {
      if (typeof callback === "function") callback(event);
      else callback.handleEvent(event);
    }
  };

  const opening = `{"from":${JSON.stringify(instance)},"entries":[`;
  const mayConcernThisInstance = (payload: string): boolean => {
    if (callbacksForTopic.size > FEW_TOPICS) return true;
    for (const topic of callbacksForTopic.keys()) if (payload.includes(JSON.stringify(topic))) return true;
    return false;
  };
  const listener = new NotificationListener(
    options.connectionString,
    [EVENTS_CHANNEL],
    (_channel, payload) => {
      // This instance's own batches come back too: recognised by their opening, not parsed. Nor is
      // a batch that names none of the few topics listened to here.
      if (payload.startsWith(opening) || !mayConcernThisInstance(payload)) return;
      let envelope: Envelope;
      try {
        envelope = JSON.parse(payload) as Envelope;
      } catch (error) {
        // Thrown from a pg event handler, this would be an uncaught exception.
        logger.warn({ err: error }, "unreadable event notification ignored");
        return;
      }
      if (envelope.from === instance) return;
      for (const [topics, detail] of envelope.entries ?? []) for (const topic of topics) deliverSafely(topic, detail);
    },
    logger,
    () => {
      logger.info("event notifications reconnected");
      // Once the topics are registered under the new connection: changes committed before that
      // reach nobody, so a re-read before it could miss them for good.
      void registry.whenAllListening().then(() => {
        if (!closed) options.onReconnect?.();
      });
    },
    (pid) => registry.connected(pid),
  );
  // A first connection that fails is retried by the listener itself (it reconnects on "end").
  const started = listener.start().catch((error: unknown) => logger.warn({ err: error }, "event notifications could not connect yet; retrying"));

  const envelopeBytes = Buffer.byteLength(opening) + 2;
  const pack = (entries: Entry[]): string[] => {
    const payloads: string[] = [];
    let parts: string[] = [];
    let bytes = envelopeBytes;
    for (const entry of entries) {
      const json = JSON.stringify(entry);
      const size = Buffer.byteLength(json);
      if (size + envelopeBytes > MAX_NOTIFY_BYTES) {
        logger.error({ topics: entry[0], bytes: size, limit: MAX_NOTIFY_BYTES }, "event too large for a PostgreSQL notification; dropped");
        options.onPublishError(new Error(`event of ${size} bytes exceeds the notification limit`), 1);
        continue;
      }
      if (bytes + size + 1 > MAX_NOTIFY_BYTES) {
        payloads.push(`${opening}${parts.join(",")}]}`);
        parts = [];
        bytes = envelopeBytes;
      }
      parts.push(json);
      bytes += size + 1;
    }
    if (parts.length > 0) payloads.push(`${opening}${parts.join(",")}]}`);
    return payloads;
  };

  const flush = async (): Promise<void> => {
    while (pending.length > 0 && !closed) {
      const batch = pending;
      pending = [];
      const payloads = pack(batch);
      if (payloads.length === 0) continue;
      try {
        // Outside a transaction each notification goes out when this statement commits; callers
        // publish only after their own change committed.
        // The payloads travel as one JSON array rather than a text[]: pg escapes every element of a
        // text array with regular expressions, which for 8 kB of JSON each cost more than the rest.
        await pool.query("SELECT pg_notify($1, payload) FROM json_array_elements_text($2::json) WITH ORDINALITY AS t(payload, n) ORDER BY n", [
          EVENTS_CHANNEL,
          JSON.stringify(payloads),
        ]);
        options.onPublished?.();
      } catch (error) {
        options.onPublishError(error, batch.reduce((sum, [topics]) => sum + topics.length, 0));
      }
    }
  };

  const schedule = () => {
    if (scheduled || flushing) return;
    scheduled = true;
    setImmediate(() => {
      scheduled = false;
      flushing = flush().finally(() => {
        flushing = null;
        if (pending.length > 0) schedule();
      });
    });
  };

  const target: EventTarget = {
    addEventListener(topic: string, callback: EventListenerOrEventListenerObject | null) {
      if (!callback) return;
      let callbacks = callbacksForTopic.get(topic);
      if (!callbacks) {
        callbacksForTopic.set(topic, (callbacks = new Set()));
        registry.add(topic);
      }
      callbacks.add(callback);
    },
    removeEventListener(topic: string, callback: EventListenerOrEventListenerObject | null) {
      const callbacks = callbacksForTopic.get(topic);
      if (!callbacks || !callback) return;
      callbacks.delete(callback);
      if (callbacks.size === 0) {
        callbacksForTopic.delete(topic);
        registry.remove(topic);
      }
    },
    dispatchEvent(event: Event) {
      if (closed) return true;
      const detail = (event as CustomEvent).detail ?? null;
      deliverSafely(event.type, detail);
      if (sentByStatements(event.type)) return true;
      const last = pending.at(-1);
      if (last && last[1] === detail) last[0].push(event.type);
      else if (pending.length >= MAX_PENDING) options.onPublishError(new Error("event backlog full"), 1);
      else pending.push([[event.type], detail]);
      schedule();
      return true;
    },
  };

  return {
    target,
    ready: started,
    whenListening: (topic) => registry.whenListening(topic),
    async close() {
      // Events already dispatched go out before the connection closes.
      while (scheduled || flushing) await (flushing ?? new Promise((resolve) => setImmediate(resolve)));
      closed = true;
      // A connection still being opened would be kept once open, after close: let it finish first
      // (briefly: an unreachable server must not hold up shutdown).
      await Promise.race([started, new Promise((resolve) => setTimeout(resolve, 2000).unref())]);
      await registry.close();
      await listener.close();
      await pool.end().catch(() => undefined);
    },
  };
}
