import { getOperationAST, Kind, visit, type DocumentNode, type ExecutionResult } from "graphql";
import type { Plugin } from "graphql-yoga";
import type { GraphQLContext } from "../graphql/context.js";
import { isTerminalStatus } from "../jobs/types.js";

export interface FinishedJobCacheOptions {
  /** Answers kept at most (least recently used go first). */
  maxEntries: number;
  /** Their JSON text, in bytes, kept at most; an answer larger than a tenth of it is never kept. */
  maxBytes?: number;
  /** How long one answer is kept: the bound on staleness should an invalidation be lost (an event bus outage). */
  ttlMs: number;
  now?: () => number;
  /** Called for each answer served from the cache, with the request and the operation's name and type. */
  onHit?: (request: Request, operation: { name: string | undefined; type: string }) => void;
}

interface Entry {
  result: ExecutionResult;
  jobId: string;
  bytes: number;
  expiresAt: number;
  operation: { name: string | undefined; type: string };
}

/**
 * Answers to `job(id)` for jobs in a final state, served without running the operation again.
 *
 * A finished job never changes until retryJob reopens it or retention deletes it, so its answer can
 * be replayed. The key is everything the answer depends on: the document, operation name and
 * variables, the Authorization header (so who asks, their role and the token's validity were
 * checked when the answer was made; the entry ends when that token expires) and Accept-Language
 * (messages are localized). Only a lone `job` field is kept, without `assessment` (an assessment
 * lives on its own), and only an answer without errors. Invalidation: `reopened(jobId)` (every
 * instance hears of a retry through the event bus), `deleted()` after retention, and the TTL as
 * the bound should an event be lost.
 */
export class FinishedJobCache {
  private readonly entries = new Map<string, Entry>();
  private bytes = 0;
  private readonly maxBytes: number;
  private readonly keysByJob = new Map<string, Set<string>>();
  private readonly now: () => number;
  // An answer computed before an invalidation of its job must not be stored after it: every
  // request notes the sequence number at its start and every invalidation takes a new one.
  private sequence = 0;
  private readonly invalidatedAt = new Map<string, number>();
  private forgottenUpTo = 0;
  private readonly startedAt = new WeakMap<Request, { key: string; sequence: number }>();
  private readonly cacheableDocuments = new WeakMap<DocumentNode, boolean>();

  constructor(private readonly options: FinishedJobCacheOptions) {
    this.now = options.now ?? Date.now;
    this.maxBytes = options.maxBytes ?? DEFAULT_MAX_BYTES;
  }

  get size(): number {
    return this.entries.size;
  }

  /** The job left its final state (retryJob): its answers are dropped everywhere. */
  reopened(jobId: string): void {
    const sequence = ++this.sequence;
    this.invalidatedAt.delete(jobId);
    this.invalidatedAt.set(jobId, sequence);
    // The invalidations remembered are bounded; a request that began before the oldest one
    // forgotten is not stored at all.
    if (this.invalidatedAt.size > this.options.maxEntries) {
      const [oldestJob, oldestSequence] = this.invalidatedAt.entries().next().value!;
      this.invalidatedAt.delete(oldestJob);
      this.forgottenUpTo = oldestSequence;
    }
    for (const key of [...(this.keysByJob.get(jobId) ?? [])]) this.remove(key, jobId);
  }

  /** Finished jobs were deleted (retention, cleanupJobs): every answer is dropped. */
  deleted(): void {
    this.forgottenUpTo = ++this.sequence;
    this.invalidatedAt.clear();
    this.entries.clear();
    this.keysByJob.clear();
    this.bytes = 0;
  }

  plugin(): Plugin<Record<string, unknown>, GraphQLContext> {
    return {
      onParams: ({ params, request, setResult }) => {
        if (params.extensions && Object.keys(params.extensions).length > 0) return;
        if (typeof params.query !== "string") return;
        const key = cacheKey(request, params.query, params.operationName, params.variables);
        const entry = this.entries.get(key);
        if (entry && entry.expiresAt > this.now()) {
          // Most recently used last: eviction takes the first.
          this.entries.delete(key);
          this.entries.set(key, entry);
          this.options.onHit?.(request, entry.operation);
          setResult(entry.result);
          return;
        }
        if (entry) this.remove(key, entry.jobId);
        this.startedAt.set(request, { key, sequence: this.sequence });
      },
      onExecute: ({ args }) => ({
        onExecuteDone: ({ result }) => {
          const context = args.contextValue as unknown as GraphQLContext & { request?: Request };
          const started = context.request ? this.startedAt.get(context.request) : undefined;
          if (!started || !this.cacheable(args.document, args.operationName)) return;
          const single = result as ExecutionResult;
          if (typeof (single as { [Symbol.asyncIterator]?: unknown })[Symbol.asyncIterator] === "function") return;
          if (single.errors?.length || !single.data) return;
          const [read, ...more] = context.jobsRead ?? [];
          if (!read || more.length > 0 || !isTerminalStatus(read.status)) return;
          if (started.sequence < this.forgottenUpTo || (this.invalidatedAt.get(read.id) ?? -1) > started.sequence) return;
          const tokenExpiresAt = context.viewer && "expiresAt" in context.viewer ? Number(context.viewer.expiresAt) * 1000 : Number.POSITIVE_INFINITY;
          // A key and a result of this size are what the entry holds (UTF-16 aside).
          const bytes = started.key.length + JSON.stringify(single).length;
          if (bytes > this.maxBytes / 10) return;
          const operation = getOperationAST(args.document, args.operationName);
          this.store(started.key, {
            result: single,
            jobId: read.id,
            bytes,
            expiresAt: Math.min(this.now() + this.options.ttlMs, tokenExpiresAt),
            operation: { name: operation?.name?.value, type: "query" },
          });
        },
      }),
    };
  }

  private store(key: string, entry: Entry): void {
    const previous = this.entries.get(key);
    if (previous) this.remove(key, previous.jobId);
    this.entries.set(key, entry);
    this.bytes += entry.bytes;
    let keys = this.keysByJob.get(entry.jobId);
    if (!keys) this.keysByJob.set(entry.jobId, (keys = new Set()));
    keys.add(key);
    while (this.entries.size > this.options.maxEntries || this.bytes > this.maxBytes) {
      const [oldestKey, oldest] = this.entries.entries().next().value!;
      this.remove(oldestKey, oldest.jobId);
    }
  }

  private remove(key: string, jobId: string): void {
    const entry = this.entries.get(key);
    if (!entry) return;
    this.bytes -= entry.bytes;
    this.entries.delete(key);
    const keys = this.keysByJob.get(jobId);
    keys?.delete(key);
    if (keys?.size === 0) this.keysByJob.delete(jobId);
  }

  /** A query whose only root field is `job`, selecting no `assessment` anywhere. */
  private cacheable(document: DocumentNode, operationName: string | null | undefined): boolean {
    let known = this.cacheableDocuments.get(document);
    if (known === undefined) {
      known = isLoneJobQuery(document, operationName);
      this.cacheableDocuments.set(document, known);
    }
    return known;
  }
}

const DEFAULT_MAX_BYTES = 64 * 1024 * 1024;

function isLoneJobQuery(document: DocumentNode, operationName: string | null | undefined): boolean {
  const operation = getOperationAST(document, operationName);
  if (operation?.operation !== "query") return false;
  const [only, ...others] = operation.selectionSet.selections;
  if (!only || others.length > 0 || only.kind !== Kind.FIELD || only.name.value !== "job") return false;
  let selectsAssessment = false;
  visit(document, {
    [Kind.FIELD]: (node) => {
      if (node.name.value === "assessment") selectsAssessment = true;
    },
  });
  return !selectsAssessment;
}

function cacheKey(request: Request, query: string, operationName: string | undefined, variables: Record<string, unknown> | undefined): string {
  const headers = request.headers;
  return JSON.stringify([headers.get("authorization"), headers.get("accept-language"), operationName ?? null, variables ?? null, query]);
}
