import type { Claim } from "./lifecycle.js";
import { runIsolatingDataErrors } from "./statement-batcher.js";
import { storableText } from "./storable-text.js";

export interface ProgressReport {
  stage: string;
  percent: number;
  bytesDone?: number | null;
  bytesTotal?: number | null;
}

/**
 * A report as it is stored and published: the stage cut to 200 characters (a NUL or a surrogate pair
 * the cut splits becomes U+FFFD, storableText), a whole percent from 0 to 100.
 */
export function storedReport(report: ProgressReport): Required<ProgressReport> {
  return {
    stage: storableText(report.stage.slice(0, 200)),
    percent: Math.max(0, Math.min(100, Number.isFinite(report.percent) ? Math.round(report.percent) : 0)),
    bytesDone: storableByteCount(report.bytesDone),
    bytesTotal: storableByteCount(report.bytesTotal),
  };
}

/**
 * A byte count as the bigint column takes it: a whole number from 0 up (rounded, capped at 2^53 - 1),
 * or null for none and for what is not a finite number. PostgreSQL refuses NaN or 1.5 as a bigint,
 * and would fail the progress of every job written in the same statement.
 */
function storableByteCount(value: number | null | undefined): number | null {
  if (typeof value !== "number" || !Number.isFinite(value)) return null;
  return Math.min(Number.MAX_SAFE_INTEGER, Math.max(0, Math.round(value)));
}

/** A stage a job entered, for its timeline: when it was reported, at what percent. */
export interface StageReached {
  stage: string;
  progress: number;
  at: Date;
}

/** What one write sends: each job's latest report, with each stage it entered since the last write. */
export interface ProgressBatch {
  latest: (Claim & Required<ProgressReport> & { stages: StageReached[] })[];
}

interface Pending {
  claim: Claim;
  latest: Required<ProgressReport>;
  stages: StageReached[];
  /** Settles once this entry is written: whether its claim was still valid. */
  written: Promise<boolean>;
  settle: (valid: boolean) => void;
  reject: (error: unknown) => void;
}

/**
 * Progress reports are not outcomes, so a handler never waits for their commit: reports of one job
 * coalesce (the latest wins, every new stage is kept for the timeline) and all jobs' reports go in
 * one statement per turn of the event loop, one write at a time. Each report's promise tells, once
 * written, whether its claim was still valid.
 */
export class ProgressWriter {
  private pending = new Map<string, Pending>();
  private inFlight: Pending[] = [];
  private readonly lastStage = new Map<string, string>();
  private flushing: Promise<void> | null = null;

  constructor(private readonly write: (batch: ProgressBatch) => Promise<Set<string>>) {}

  /** `latest` as storedReport makes it. */
  report(claim: Claim, latest: Required<ProgressReport>, at: Date): Promise<boolean> {
    let entry = this.pending.get(claim.token);
    if (!entry) {
      let settle!: (valid: boolean) => void;
      let reject!: (error: unknown) => void;
      const written = new Promise<boolean>((resolve, fail) => ((settle = resolve), (reject = fail)));
      written.catch(() => {});
      entry = { claim, latest, stages: [], written, settle, reject };
      this.pending.set(claim.token, entry);
    }
    entry.latest = latest;
    if (this.lastStage.get(claim.token) !== latest.stage) {
      this.lastStage.set(claim.token, latest.stage);
      entry.stages.push({ stage: latest.stage, progress: latest.percent, at });
    }
    this.flushing ??= this.flush();
    return entry.written;
  }

  /**
   * Resolves once every report made so far is written (outcomes are written after their job's
   * progress); reports made meanwhile are not waited for.
   */
  async drain(): Promise<void> {
    await Promise.allSettled([...this.inFlight, ...this.pending.values()].map((entry) => entry.written));
  }

  /** The attempt is over: nothing more will be reported under this claim. */
  forget(token: string): void {
    this.lastStage.delete(token);
  }

  private async flush(): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    while (this.pending.size > 0) {
      const entries = [...this.pending.values()];
      this.pending = new Map();
      this.inFlight = entries;
      const outcomes = await runIsolatingDataErrors(entries, async (part) => {
        const valid = await this.write({ latest: part.map((entry) => ({ ...entry.claim, ...entry.latest, stages: entry.stages })) });
        return part.map((entry) => valid.has(entry.claim.token));
      });
      entries.forEach((entry, index) => {
        const outcome = outcomes[index]!;
        if ("error" in outcome) return entry.reject(outcome.error);
        if (!outcome.answer) this.forget(entry.claim.token);
        entry.settle(outcome.answer);
      });
    }
    this.inFlight = [];
    this.flushing = null;
  }
}
