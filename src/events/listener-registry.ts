import type pg from "pg";
import type { Logger } from "../logger.js";
import { JOB_TOPIC_PREFIX, UUID, jobIdOfTopic } from "./messages.js";
// How long a new listener on a topic of every job waits for the transactions that may have missed
// its registration; past this, a transaction left open elsewhere on the server must not hold it.
const IN_FLIGHT_WAIT_MS = 2000;
const IN_FLIGHT_POLL_MS = 2;
const RETRY_DELAY_MS = 1000;
const DEAD_ROWS_SWEEP_MS = 60_000;
// A topic nobody here follows any more costs only notifications this instance ignores, so its
// removal waits to share a statement with the others: in a run of 10,000 watched jobs, one
// statement per few subscriptions ending was a third of the server's statements.
const REMOVAL_DELAY_MS = 250;

/**
 * SQL: the registration `row` of event_listeners belongs to a backend that is still there. A pid is
 * reused once its backend is gone, so the backend must have started before the row was registered
 * (with a millisecond of slack: registered_at is stored to the millisecond). A backend another role
 * owns shows no start time to a role without pg_read_all_stats: it counts as there.
 */
function listenerAlive(row: string): string {
  return `EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = ${row}.listener_pid
    AND (a.backend_start IS NULL OR a.backend_start <= ${row}.registered_at + interval '1 millisecond'))`;
}

/**
 * Adds and removes the topics $2 and $3 for the LISTEN connection $1 of instance $5. A row of the
 * same topic and pid is taken over only when it is this instance's or its backend is gone (a new
 * connection that got a dead instance's pid), never from a live connection of another instance
 * that got this instance's old pid while a registration under it was still in flight. Registering a
 * job's topic takes a share lock on the job's row ($4) until it commits: a statement changing that
 * job either committed before (so the subscriber's first read of the job, made after this, sees its
 * change) or locks the row after, and then finds this registration (sql.ts, announceChanges).
 * Rows are locked in id order, as every batch that writes jobs locks them: in the order a scan
 * happened to meet them, a registration of several jobs deadlocked with a batch of their progress.
 */
const REGISTER = `WITH removed AS (DELETE FROM event_listeners WHERE listener_pid = $1 AND topic = ANY($3::text[])),
added AS (INSERT INTO event_listeners (topic, listener_pid, instance_id) SELECT unnest($2::text[]), $1, $5
  ON CONFLICT (topic, listener_pid) DO UPDATE SET instance_id = EXCLUDED.instance_id, registered_at = EXCLUDED.registered_at
  WHERE event_listeners.instance_id = EXCLUDED.instance_id OR NOT ${listenerAlive("event_listeners")}),
locked AS (SELECT id FROM processing_jobs WHERE id = ANY($4::uuid[]) ORDER BY id FOR SHARE)
SELECT (SELECT count(*) FROM locked) AS locked`;

/** deadlock_detected, serialization_failure: the statement can simply run again. */
const TRANSIENT_CODES = new Set(["40P01", "40001"]);

/** Transactions open now: a statement that began before a registration committed may not have seen it. */
const IN_FLIGHT = `SELECT pg_current_snapshot()::text AS snapshot`;
const STILL_IN_FLIGHT = `SELECT count(*)::int AS open FROM pg_snapshot_xip($1::pg_snapshot) AS x WHERE pg_xact_status(x) = 'in progress'`;

/**
 * $1, $2: the rows of a LISTEN connection this instance ($2) has replaced or is closing; its pid may
 * be another instance's connection's by now.
 */
const FORGET_LISTENER = `DELETE FROM event_listeners WHERE listener_pid = $1 AND instance_id = $2`;

/**
 * Rows of LISTEN connections that are gone (their instance stopped or lost its connection, or their
 * pid is another backend's now). Kept, a row whose pid was reused had every statement announce
 * that topic's changes (all of them, for jobs:changed) to nobody for as long as the new backend
 * lived. A row is deleted only as the sweep read it (same registered_at): one that REGISTER's
 * upsert holds is checked again once that commits, against its new registered_at, and kept.
 * (Compared with the backends again instead, the recheck of an anti-join found none and deleted the
 * registration just made; a subquery per row was right but took 76 ms for 20,000 live rows, where
 * this takes 11 ms for 22,000 rows, 2,000 of them deleted.)
 */
const DELETE_DEAD = `WITH gone AS (SELECT topic, listener_pid, registered_at FROM event_listeners l WHERE NOT ${listenerAlive("l")})
DELETE FROM event_listeners l USING gone
WHERE l.topic = gone.topic AND l.listener_pid = gone.listener_pid AND l.registered_at = gone.registered_at`;

/**
 * Keeps event_listeners in step with the topics this instance listens to, so that the statements
 * that change jobs notify it of the changes it follows, and only of those (sql.ts,
 * announceChanges). Topics are added and removed in batches, one statement at a time, keyed by the
 * backend pid of the instance's LISTEN connection: when that connection is replaced, every topic is
 * registered again under the new one, and rows of connections that are gone are swept away by
 * whichever instance looks next.
 *
 * `whenListening(topic)` settles once a change committed from then on reaches this instance: for a
 * job's own topic, once the registration (which locks the job's row) has committed; for a topic of
 * every job (jobs:changed), once the transactions open at that moment have ended too.
 */
export class ListenerRegistry {
  private listenerPid: number | null = null;
  /** Topics this instance listens to. */
  private readonly wanted = new Set<string>();
  /** Topics registered under `listenerPid`, as committed. */
  private readonly registered = new Set<string>();
  /** Topics the statement in flight deletes: registered until it commits, but not to be counted on. */
  private removing = new Set<string>();
  /** What the next statement adds and removes: kept as listeners come and go, never recomputed. */
  private toAdd = new Set<string>();
  private toRemove = new Set<string>();
  private readonly waiters = new Map<string, { promise: Promise<void>; resolve: () => void; reject: (error: unknown) => void }>();
  private flushing: Promise<void> | null = null;
  private again = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private removalTimer: NodeJS.Timeout | undefined;
  private readonly sweepTimer: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly pool: pg.Pool,
    private readonly instanceId: string,
    private readonly logger: Logger,
  ) {
    this.sweepTimer = setInterval(() => void this.sweep(), DEAD_ROWS_SWEEP_MS);
    this.sweepTimer.unref();
  }

  /**
   * The LISTEN connection is (again) up as backend `pid`: everything is registered under it.
   * Settles once gone listeners' rows and the previous connection's are deleted (nobody needs to wait).
   */
  connected(pid: number): Promise<void> {
    const previous = this.listenerPid;
    this.listenerPid = pid;
    this.registered.clear();
    this.toRemove.clear();
    this.toAdd = new Set(this.wanted);
    const cleanedUp = this.sweep()
      .then(async () => {
        if (previous !== null && previous !== pid) await this.pool.query(FORGET_LISTENER, [previous, this.instanceId]);
      })
      .catch((error: unknown) => this.logger.warn({ err: error }, "removing an old listener's topics failed"));
    this.schedule();
    return cleanedUp;
  }

  add(topic: string): void {
    this.wanted.add(topic);
    if (this.isRegistered(topic)) this.toRemove.delete(topic);
    else this.toAdd.add(topic);
    this.schedule();
  }

  remove(topic: string): void {
    this.wanted.delete(topic);
    if (this.registered.has(topic)) this.toRemove.add(topic);
    else this.toAdd.delete(topic);
    // Nobody here waits for it any more.
    this.waiters.get(topic)?.resolve();
    this.waiters.delete(topic);
    // The next registration takes it along; failing that, the timer.
    this.removalTimer ??= setTimeout(() => {
      this.removalTimer = undefined;
      this.schedule();
    }, REMOVAL_DELAY_MS);
    this.removalTimer.unref();
  }

  whenListening(topic: string): Promise<void> {
    if (this.isRegistered(topic) || !this.wanted.has(topic)) return Promise.resolve();
    let waiter = this.waiters.get(topic);
    if (!waiter) {
      let resolve!: () => void;
      let reject!: (error: unknown) => void;
      const promise = new Promise<void>((ok, fail) => ((resolve = ok), (reject = fail)));
      promise.catch(() => {});
      waiter = { promise, resolve, reject };
      this.waiters.set(topic, waiter);
    }
    return waiter.promise;
  }

  /**
   * Settles once every topic listened to now is registered under the current LISTEN connection
   * (registrations that fail are retried until they succeed or this closes). A re-read of the
   * followed jobs after a reconnection must wait for it: a change committed before the new
   * connection's registration is sent to nobody, and one read before it would miss it.
   */
  async whenAllListening(): Promise<void> {
    const topics = [...this.wanted];
    while (!this.closed) {
      try {
        await Promise.all(topics.map((topic) => this.whenListening(topic)));
        return;
      } catch {
        await new Promise((resolve) => setTimeout(resolve, RETRY_DELAY_MS).unref());
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.sweepTimer);
    clearTimeout(this.retryTimer);
    clearTimeout(this.removalTimer);
    await this.flushing;
    if (this.listenerPid !== null) {
      await this.pool.query(FORGET_LISTENER, [this.listenerPid, this.instanceId]).catch(() => undefined);
    }
    for (const waiter of this.waiters.values()) waiter.reject(new Error("the event bus closed"));
    this.waiters.clear();
  }

  /**
   * Registered and staying so: a topic the statement in flight deletes is not, even if a listener
   * came back meanwhile (the next statement registers it again), or whenListening would settle
   * while changes to it are not sent here.
   */
  private isRegistered(topic: string): boolean {
    return this.registered.has(topic) && !this.removing.has(topic);
  }

  private schedule(): void {
    if (this.closed || this.listenerPid === null) return;
    if (this.flushing) {
      this.again = true;
      return;
    }
    this.flushing = this.flush().finally(() => {
      this.flushing = null;
      if (this.again) {
        this.again = false;
        this.schedule();
      }
    });
  }

  private async flush(): Promise<void> {
    // Let the listeners added in this tick (a burst of subscriptions) share one statement.
    await new Promise((resolve) => setImmediate(resolve));
    const pid = this.listenerPid;
    if (pid === null || this.closed || (this.toAdd.size === 0 && this.toRemove.size === 0)) return;
    const added = [...this.toAdd];
    const removed = [...this.toRemove];
    this.toAdd = new Set();
    this.toRemove = new Set();
    this.removing = new Set(removed);
    const jobIds = added.flatMap((topic) => {
      const jobId = jobIdOfTopic(topic);
      return jobId !== null && UUID.test(jobId) ? [jobId] : [];
    });
    try {
      await this.pool.query(REGISTER, [pid, added, removed, jobIds, this.instanceId]);
      this.removing = new Set();
      if (added.some((topic) => !topic.startsWith(JOB_TOPIC_PREFIX))) await this.waitForOpenTransactions();
    } catch (error) {
      this.removing = new Set();
      // A deadlock or serialization failure is the database asking for another try: the waiters
      // keep waiting for it. Anything else fails them, and is retried later for whoever listens.
      const transient = TRANSIENT_CODES.has((error as { code?: string }).code ?? "");
      this.logger.warn({ err: error, retryInMs: transient ? 0 : RETRY_DELAY_MS }, "registering the event topics listened to failed; retrying");
      for (const topic of added) {
        if (!transient) {
          this.waiters.get(topic)?.reject(error);
          this.waiters.delete(topic);
        }
        if (this.wanted.has(topic) && !this.registered.has(topic)) this.toAdd.add(topic);
      }
      for (const topic of removed) if (!this.wanted.has(topic) && this.registered.has(topic)) this.toRemove.add(topic);
      clearTimeout(this.retryTimer);
      this.retryTimer = setTimeout(() => this.schedule(), transient ? 0 : RETRY_DELAY_MS);
      this.retryTimer.unref();
      return;
    }
    // A reconnection meanwhile registered everything again under its own pid.
    if (pid !== this.listenerPid) return;
    // Listeners that came or went while the statement ran are caught up by the next one.
    for (const topic of removed) {
      this.registered.delete(topic);
      if (this.wanted.has(topic)) this.toAdd.add(topic);
    }
    for (const topic of added) {
      this.registered.add(topic);
      if (!this.wanted.has(topic)) this.toRemove.add(topic);
      this.waiters.get(topic)?.resolve();
      this.waiters.delete(topic);
    }
    // Removals meanwhile have their timer.
    if (this.toAdd.size > 0) this.again = true;
  }

  /**
   * A statement that changes jobs reads event_listeners once its rows are locked; one that began
   * before the registration committed may have read it already. Waiting for the transactions open
   * now to end means none of them can still commit a change this instance was not told of.
   */
  private async waitForOpenTransactions(): Promise<void> {
    const { rows } = await this.pool.query<{ snapshot: string }>(IN_FLIGHT);
    const deadline = Date.now() + IN_FLIGHT_WAIT_MS;
    while (Date.now() < deadline) {
      const open = await this.pool.query<{ open: number }>(STILL_IN_FLIGHT, [rows[0]!.snapshot]);
      if (open.rows[0]!.open === 0) return;
      await new Promise((resolve) => setTimeout(resolve, IN_FLIGHT_POLL_MS));
    }
    this.logger.debug("transactions still open after a new listener registered; not waiting longer");
  }

  /** Deletes the rows of LISTEN connections that are gone (DELETE_DEAD); also run every minute and on connecting. */
  async sweep(): Promise<void> {
    if (this.closed) return;
    await this.pool.query(DELETE_DEAD).catch((error: unknown) => this.logger.warn({ err: error }, "sweeping the topics of gone listeners failed"));
  }
}
