import { Repeater } from "@graphql-yoga/subscription";
import type { JobChange } from "../../events/messages.js";
import { requireViewer } from "../access.js";
import { builder } from "../builder.js";
import { badInput } from "../errors.js";
import { guardStream } from "../streams.js";
import { JobChangeEvent, JobUpdatesFilter, listenToJobUpdates } from "./job-subscriptions.js";

const MIN_BATCH_MS = 20;
const MAX_BATCH_MS = 10_000;

interface JobUpdateBatch {
  changes: JobChange[];
  coalesced: number;
  at: string;
}

const JobUpdateBatchType = builder.objectRef<JobUpdateBatch>("JobUpdateBatch").implement({
  description: "The jobs that changed during one interval, each in its latest state.",
  fields: (t) => ({
    changes: t.field({ type: [JobChangeEvent], resolve: (batch) => batch.changes }),
    coalesced: t.exposeInt("coalesced", {
      description: "Changes folded into a later change of the same job within the interval (or while the client was still reading the previous batch).",
    }),
    at: t.field({ type: "DateTime", resolve: (batch) => batch.at }),
  }),
});

builder.subscriptionField("jobUpdateBatches", (t) =>
  t.field({
    type: JobUpdateBatchType,
    description:
      "Operators: job changes for dashboards, at most one message per batchMs, each job in its latest state. At thousands of transitions per second this keeps a client from drowning: a slow client gets fewer, larger batches, never an unbounded backlog (one entry per changed job).",
    authScopes: { operator: true },
    args: {
      filter: t.arg({ type: JobUpdatesFilter, required: false }),
      batchMs: t.arg.int({ required: false, defaultValue: 250, description: `Interval between batches, ${MIN_BATCH_MS} to ${MAX_BATCH_MS} ms.` }),
    },
    subscribe: (_root, args, context) => {
      requireViewer(context);
      const batchMs = args.batchMs ?? 250;
      if (!Number.isInteger(batchMs) || batchMs < MIN_BATCH_MS || batchMs > MAX_BATCH_MS) {
        throw badInput(`batchMs must be ${MIN_BATCH_MS} to ${MAX_BATCH_MS}`, [{ field: "batchMs", message: "out of range" }]);
      }
      const filter = args.filter ?? {};
      return guardStream(batches((listener, interrupted) => listenToJobUpdates(context, filter, listener, interrupted), batchMs), context.services.logger);
    },
    resolve: (batch) => batch,
  }),
);

/**
 * Gathers the changes by job (latest wins) as they are published, and sends them at most once per
 * `intervalMs`, never while the previous batch is still being delivered: the pending set is
 * bounded by the number of distinct jobs, whatever the rate of changes or the speed of the client.
 * A batch goes out as soon as both allow it: a change after a quiet spell at once, and the changes
 * gathered during a slow delivery as soon as it ends (a fixed ticker made them wait for its next
 * tick, up to a whole interval more). Changes are folded in the bus's listener itself, with no
 * promise per change: at thousands of changes per second, an async iteration per change (a
 * queue's next(), a race with the stop) cost the engine more than the batches themselves.
 */
function batches(listen: (listener: (change: JobChange) => void, interrupted: (error: unknown) => void) => () => void, intervalMs: number): AsyncIterableIterator<JobUpdateBatch> {
  return new Repeater<JobUpdateBatch>(async (push, stop) => {
    let pending = new Map<string, JobChange>();
    let coalesced = 0;
    let delivering = false;
    let timer: NodeJS.Timeout | null = null;
    let lastSent = Number.NEGATIVE_INFINITY;
    const schedule = () => {
      if (timer || delivering || pending.size === 0) return;
      timer = setTimeout(flush, Math.max(0, Math.ceil(lastSent + intervalMs - performance.now())));
    };
    const flush = () => {
      timer = null;
      // Node's timers count whole milliseconds and can fire a fraction of one early.
      if (performance.now() < lastSent + intervalMs) return schedule();
      const batch = { changes: [...pending.values()], coalesced, at: new Date().toISOString() };
      pending = new Map();
      coalesced = 0;
      delivering = true;
      lastSent = performance.now();
      push(batch).finally(() => {
        delivering = false;
        schedule();
      });
    };
    const unlisten = listen(
      (change) => {
        if (pending.has(change.jobId)) coalesced++;
        pending.set(change.jobId, change);
        schedule();
      },
      (error) => {
        // What was gathered goes out first, then the error: the changes are real.
        if (timer) clearTimeout(timer);
        timer = null;
        if (pending.size > 0 && !delivering) void push({ changes: [...pending.values()], coalesced, at: new Date().toISOString() });
        pending = new Map();
        stop(error);
      },
    );
    try {
      await stop;
    } finally {
      if (timer) clearTimeout(timer);
      unlisten();
    }
  });
}
