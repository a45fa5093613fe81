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

/** How long a job's later changes wait for its creation, if that is lost on the way (a Redis outage). */
const CREATION_WAIT_MS = 1_000;

/**
 * Keeps each job's changes in the order they were committed, for this instance's listeners.
 *
 * Different actors publish one job's changes: the enqueuer its creation, a worker its claim, another
 * instance its outcome. Under load one overtakes another: the creation's commit wakes a worker
 * whose claim is published before the enqueuer has even heard back from its own commit. Two rules:
 * - a creation this instance is about to publish is expected (`expect`): a later change of that job
 *   waits for it on jobs:changed, so an operator sees QUEUED, PROCESSING, COMPLETED in that order;
 *   it waits at most CREATION_WAIT_MS, or until the enqueue says the job was not created;
 * - anything else older than a revision already delivered is dropped: a late "QUEUED" must not make
 *   a running job look queued again.
 */
export class ChangeOrder {
  /** Latest revision delivered, by topic and job. */
  private readonly revisions = new Map<string, number>();
  /** Deliveries on jobs:changed waiting for their job's creation, by job. */
  private readonly waiting = new Map<string, (() => void)[]>();

  constructor(private readonly capacity = REMEMBERED_KEYS) {}

  /**
   * These jobs are being created here and their creation is about to be published: until it is
   * delivered, their later changes wait on jobs:changed. (Not on a job's own topic: nobody can
   * follow a job before its id is known, and a jobProgress subscriber reads the job first, then drops
   * what is older. Held there, a claim would wait for a creation delivered to nobody.)
   */
  expect(jobIds: readonly string[]): void {
    const keys = jobIds.map((jobId) => keyOf("jobs:changed", jobId));
    for (const key of keys) if (!this.waiting.has(key)) this.waiting.set(key, []);
    setTimeout(() => keys.forEach((key) => this.release(key)), CREATION_WAIT_MS).unref();
  }

  /** These expected jobs were not created after all (a duplicate key, a failed statement). */
  abandon(jobIds: readonly string[]): void {
    for (const jobId of jobIds) this.release(keyOf("jobs:changed", jobId));
  }

  /** Wraps one listener of `topic` (a job's topic or jobs:changed) to receive its changes in order. */
  listener(topic: string, call: (event: Event) => void): (event: Event) => void {
    return (event: Event) => {
      const change = (event as CustomEvent<JobChange>).detail;
      const key = keyOf(topic, change.jobId);
      const held = this.waiting.size > 0 ? this.waiting.get(key) : undefined;
      if (held && change.revision > 1) {
        held.push(() => this.accepts(key, change) && call(event));
        return;
      }
      if (this.accepts(key, change)) call(event);
      // Every listener of the topic gets the creation in this same dispatch; what waited for it
      // follows once the dispatch is over (released earlier, a later revision delivered to the first
      // listener would make the creation look stale to the next).
      if (held) queueMicrotask(() => this.release(key));
    };
  }

  private release(key: string): void {
    const held = this.waiting.get(key);
    if (!held) return;
    this.waiting.delete(key);
    for (const deliver of held) deliver();
  }

  /** False when a later revision of this job was delivered on this topic already. */
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

/** A job's own topic, or its bare id on jobs:changed (no job topic is a bare id). */
function keyOf(topic: string, jobId: string): string {
  return topic === "jobs:changed" ? jobId : topic;
}
