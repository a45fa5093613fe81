import type { JobChange } from "./messages.js";

/**
 * Whether `change` is already covered by `latest`, the last state shown of the same job: an older
 * revision, or, within one revision (an attempt's progress), a report made before `latest` or the
 * same state again.
 */
export function isStale(change: JobChange, latest: JobChange): boolean {
  if (change.revision !== latest.revision) return change.revision < latest.revision;
  if (change.at !== latest.at) return change.at < latest.at;
  return change.status === latest.status && change.progress === latest.progress && change.stage === latest.stage;
}

/** How many jobs' latest revisions a ChangeOrder keeps: changes overtake each other within milliseconds. */
const REMEMBERED_KEYS = 50_000;

/** How long a job's later changes wait for its creation after the enqueue, if it is lost on the way (a Redis outage). */
const CREATION_WAIT_MS = 1_000;

/**
 * Keeps each job's changes in the order they were committed, for this instance's listeners.
 *
 * Different actors publish one job's changes: the enqueuer its creation, a worker its claim, another
 * instance its outcome. Under load one overtakes another: the creation's commit wakes a worker
 * whose claim is published before the enqueuer has even heard back from its own commit. Two rules:
 * - a creation this instance is about to publish is expected (`expect`): a later change of that job
 *   waits for it on jobs:changed, so an operator sees QUEUED, PROCESSING, COMPLETED in that order;
 *   it waits until the enqueue says the job was not created, or at most CREATION_WAIT_MS after the
 *   enqueue is over;
 * - anything else older than a revision already delivered is dropped: a late "QUEUED" must not make
 *   a running job look queued again.
 */
export class ChangeOrder {
  /** Latest revision delivered, by topic and job. */
  private readonly revisions = new Map<string, number>();
  /** Changes on jobs:changed waiting for their job's creation, by job. */
  private readonly waiting = new Map<string, Event[]>();
  /** The listeners of jobs:changed now, unwrapped: what waited goes to those present when it is released. */
  private readonly followers = new Set<(event: Event) => void>();

  constructor(
    /** Told of an error a listener threw while it got changes that had waited. */
    private readonly onListenerError: (error: unknown) => void,
    private readonly capacity = REMEMBERED_KEYS,
  ) {}

  /**
   * These jobs are being created here and their creation will be published: until it is
   * delivered, their later changes wait on jobs:changed (settle says for how long at most). Not on
   * a job's own topic: nobody can follow a job before its id is known, and a jobProgress subscriber
   * reads the job first, then drops what is older; held there, a claim would wait for a creation
   * delivered to nobody.
   */
  expect(jobIds: readonly string[]): void {
    for (const jobId of jobIds) if (!this.waiting.has(jobId)) this.waiting.set(jobId, []);
  }

  /**
   * The enqueue is over: the jobs not created release what waited for them now; the others' wait
   * ends when their creation arrives, or CREATION_WAIT_MS from now if it is lost on the way.
   */
  settle(created: readonly string[], notCreated: readonly string[]): void {
    // Nobody followed every job when these were expected (the usual case): nothing to time.
    if (this.waiting.size === 0) return;
    for (const jobId of notCreated) this.release(jobId);
    const awaited = created.filter((jobId) => this.waiting.has(jobId));
    if (awaited.length > 0) setTimeout(() => awaited.forEach((jobId) => this.release(jobId)), CREATION_WAIT_MS).unref();
  }

  /**
   * Wraps one listener of `topic` (a job's topic or jobs:changed) to receive its changes in order;
   * `stop` is called when it leaves.
   */
  listener(topic: string, call: (event: Event) => void): { wrapped: (event: Event) => void; stop: () => void } {
    if (topic !== "jobs:changed") {
      return {
        wrapped: (event) => {
          if (this.accepts(topic, (event as CustomEvent<JobChange>).detail)) call(event);
        },
        stop: () => {},
      };
    }
    this.followers.add(call);
    const wrapped = (event: Event) => {
      const change = (event as CustomEvent<JobChange>).detail;
      const held = this.waiting.size > 0 ? this.waiting.get(change.jobId) : undefined;
      if (held && change.revision > 1) {
        // One dispatch reaches every listener with the same event: it waits once.
        if (held.at(-1) !== event) held.push(event);
        return;
      }
      if (this.accepts(change.jobId, change)) call(event);
      // Every listener gets the creation in this same dispatch; what waited for it follows once the
      // dispatch is over (released earlier, a later revision delivered to the first listener would
      // make the creation look stale to the next).
      if (held) queueMicrotask(() => this.release(change.jobId));
    };
    return { wrapped, stop: () => this.followers.delete(call) };
  }

  private release(jobId: string): void {
    const held = this.waiting.get(jobId);
    if (!held) return;
    this.waiting.delete(jobId);
    for (const event of held) {
      if (!this.accepts(jobId, (event as CustomEvent<JobChange>).detail)) continue;
      for (const call of [...this.followers]) {
        try {
          call(event);
        } catch (error) {
          this.onListenerError(error);
        }
      }
    }
  }

  /** False when a later revision of this job was delivered under `key` (a topic, or a job's id on jobs:changed) already. */
  private accepts(key: string, change: JobChange): boolean {
    const known = this.revisions.get(key);
    if (known === undefined) {
      this.revisions.set(key, change.revision);
      // The first heard of is forgotten first.
      if (this.revisions.size > this.capacity) this.revisions.delete(this.revisions.keys().next().value!);
      return true;
    }
    if (change.revision < known) return false;
    if (change.revision > known) this.revisions.set(key, change.revision);
    return true;
  }
}
