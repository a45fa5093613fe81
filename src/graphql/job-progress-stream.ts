import { isStale } from "../events/change-order.js";
import { jobTopic, type JobChange } from "../events/messages.js";
import { changeOf } from "../jobs/lifecycle.js";
import { isTerminalStatus } from "../jobs/types.js";
import type { Services } from "./context.js";
import { readEagerly } from "./eager-reader.js";
import { maskStreamError } from "./streams.js";

const DONE: IteratorReturnResult<undefined> = { value: undefined, done: true };

/**
 * The job's current state first (so a late subscriber misses nothing), then every change, ending
 * after a terminal state. Listening starts before the current state is read, so nothing falls
 * between the two.
 *
 * A plain iterator rather than an async generator: a generator waiting for the next event queues
 * return() behind that event, so a client leaving a job that never changes again (scheduled for
 * later, deleted) would keep its listener and execution for good. Here leaving ends the pending
 * read at once and removes the listener. Nor a Repeater: see readEagerly.
 */
export function jobProgressStream(services: Pick<Services, "events" | "jobs" | "logger">, jobId: string): AsyncIterableIterator<JobChange> {
  return new JobProgressStream(services, jobId);
}

class JobProgressStream implements AsyncIterableIterator<JobChange> {
  // While the client is still reading, a newer percent of the same status and stage replaces the
  // one waiting (every status and stage still reaches it): a slow client skips to the latest
  // percent instead of backing up the bus.
  private readonly changes: AsyncIterableIterator<JobChange>;
  private started = false;
  private over = false;
  /** The state the client was last sent. */
  private latest: JobChange | null = null;
  /** Read when the stream started, sent before any change. */
  private readonly first: JobChange[] = [];
  /** The first read of the changes, made before the current state is read: it starts the listening. */
  private firstRead: Promise<IteratorResult<JobChange>> | null = null;

  constructor(
    private readonly services: Pick<Services, "events" | "jobs" | "logger">,
    private readonly jobId: string,
  ) {
    this.changes = readEagerly<JobChange>((listener) => services.events.listen(jobTopic(jobId), listener), {
      limit: 1000,
      merge: (waiting, change) => (waiting.status === change.status && waiting.stage === change.stage ? change : null),
      tooSlow: "This subscriber fell too far behind",
    });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  async next(): Promise<IteratorResult<JobChange>> {
    if (this.over && this.first.length === 0) return DONE;
    try {
      if (!this.started) {
        this.started = true;
        await this.readCurrentState();
      }
      for (;;) {
        const waiting = this.first.shift();
        if (waiting) return this.send(waiting);
        if (this.over) return DONE;
        const read = this.firstRead ?? this.changes.next();
        this.firstRead = null;
        const next = await read;
        if (this.over) return DONE;
        if (next.done) {
          this.over = true;
          return DONE;
        }
        if (!isStale(next.value, this.latest!)) return this.send(next.value);
      }
    } catch (error) {
      await this.return();
      throw maskStreamError(error, this.services.logger);
    }
  }

  async return(): Promise<IteratorResult<JobChange>> {
    this.over = true;
    this.first.length = 0;
    try {
      await this.changes.return?.();
    } catch {
      // Already ending its subscription, with the error its reads gave, if any.
    }
    return DONE;
  }

  async throw(error?: unknown): Promise<IteratorResult<JobChange>> {
    await this.return();
    throw error;
  }

  private async readCurrentState(): Promise<void> {
    const { events, jobs } = this.services;
    // Listening starts before the job is read; if it cannot, the current state is still sent
    // and the read fails after it. Until it is awaited, its failure must not count as unhandled,
    // which would take the whole process down.
    this.firstRead = this.changes.next();
    this.firstRead.catch(() => {});
    // Changes other instances commit after this are heard: the first read cannot miss them.
    await events.whenListening(jobTopic(this.jobId));
    const row = await jobs.find(this.jobId);
    if (this.over) return;
    if (!row) {
      await this.return();
      return;
    }
    const snapshot = changeOf(row, null);
    this.first.push(snapshot);
    if (isTerminalStatus(snapshot.status)) return;
    // Progress is published before it is written: one published just before this stream listened
    // may be newer than the job as read.
    const published = jobs.publishedProgress(this.jobId);
    if (published && !isStale(published, snapshot)) this.first.push(published);
  }

  private send(change: JobChange): IteratorResult<JobChange> {
    this.latest = change;
    if (isTerminalStatus(change.status)) {
      this.over = true;
      this.first.length = 0;
      void this.changes.return?.();
    }
    return { value: change, done: false };
  }
}
