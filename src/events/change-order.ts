import { jobTopic, type JobChange } from "./messages.js";

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
 *   waits for it, per topic and listener, so an operator sees QUEUED, PROCESSING, COMPLETED in that
 *   order; it waits at most CREATION_WAIT_MS, or until the enqueue says the job was not created;
 * - anything else older than a revision already delivered is dropped: a late "QUEUED" must not make
 *   a running job look queued again.
 */
export class ChangeOrder {
  /** Latest revision delivered, by topic and job. */
  private readonly revisions = new Map<string, number>();
  /** Changes waiting for their job's creation, by topic and job. */
  private readonly waiting = new Map<string, (() => void)[]>();

  constructor(private readonly capacity = REMEMBERED_KEYS) {}

  /**
   * These jobs are being created here and their creation is about to be published: until it is
   * delivered, their later changes wait.
   */
  expect(jobIds: readonly string[]): void {
    const keys = jobIds.flatMap(keysOf);
    for (const key of keys) if (!this.waiting.has(key)) this.waiting.set(key, []);
    setTimeout(() => keys.forEach((key) => this.release(key)), CREATION_WAIT_MS).unref();
  }

  /** These expected jobs were not created after all (a duplicate key, a failed statement). */
  abandon(jobIds: readonly string[]): void {
    for (const key of jobIds.flatMap(keysOf)) this.release(key);
  }

  /** Wraps one listener of `topic` (a job's topic or jobs:changed) to receive its changes in order. */
  listener(topic: string, call: (event: Event) => void): (event: Event) => void {
    return (event: Event) => {
      const change = (event as CustomEvent<JobChange>).detail;
      const key = keyOf(topic, change.jobId);
      const deliver = () => {
        if (this.accepts(key, change)) call(event);
      };
      const held = this.waiting.get(key);
      if (!held) return deliver();
      if (change.revision > 1) {
        held.push(deliver);
        return;
      }
      deliver();
      // Every listener of the topic gets the creation in this same dispatch; what waited for it
      // follows once the dispatch is over (released earlier, a later revision delivered to the first
      // listener would make the creation look stale to the next).
      queueMicrotask(() => this.release(key));
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
    if (known !== undefined && change.revision < known) return false;
    if (known !== change.revision) {
      // Re-inserted, so the Map's order stays that of the latest change.
      this.revisions.delete(key);
      this.revisions.set(key, change.revision);
      if (this.revisions.size > this.capacity) this.revisions.delete(this.revisions.keys().next().value!);
    }
    return true;
  }
}

function keysOf(jobId: string): string[] {
  return [jobTopic(jobId), keyOf("jobs:changed", jobId)];
}

function keyOf(topic: string, jobId: string): string {
  return topic === "jobs:changed" ? `${topic} ${jobId}` : topic;
}
