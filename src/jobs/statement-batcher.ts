/**
 * Gathers what arrives in the same turn of the event loop and sends it as one statement (one round
 * trip; for writes, one commit), in batches of at most `maxBatch`. Each caller gets its own item's
 * answer, or the error: a statement that fails on one item's data fails that item alone
 * (runIsolatingDataErrors), any other failure every item it carried.
 *
 * `oneAtATime` (writes): while a batch is in flight, new arrivals wait and go together in the next,
 * so that a burst becomes a few large commits. Otherwise (reads), every turn's batch is sent at
 * once: a slow statement then holds up only the items it carries, as separate queries would.
 */
export class StatementBatcher<Item, Answer> {
  private pending: { item: Item; settle: (answer: Answer) => void; reject: (error: unknown) => void }[] = [];
  private flushing: Promise<void> | null = null;
  private readonly maxBatch: number;
  private readonly oneAtATime: boolean;

  constructor(
    private readonly run: (items: Item[]) => Promise<Answer[]>,
    options: { maxBatch?: number; oneAtATime?: boolean } = {},
  ) {
    this.maxBatch = options.maxBatch ?? 500;
    this.oneAtATime = options.oneAtATime ?? true;
  }

  add(item: Item): Promise<Answer> {
    return new Promise((settle, reject) => {
      this.pending.push({ item, settle, reject });
      this.flushing ??= this.flush();
    });
  }

  private async flush(): Promise<void> {
    // Let what arrives in the same tick join this batch.
    await new Promise<void>((resolve) => setImmediate(resolve));
    if (!this.oneAtATime) {
      while (this.pending.length > 0) void this.send(this.pending.splice(0, this.maxBatch));
      this.flushing = null;
      return;
    }
    while (this.pending.length > 0) await this.send(this.pending.splice(0, this.maxBatch));
    this.flushing = null;
  }

  /** Never rejects: each item's error goes to its caller. */
  private async send(batch: typeof this.pending): Promise<void> {
    const outcomes = await runIsolatingDataErrors(batch.map((entry) => entry.item), this.run);
    batch.forEach((entry, index) => {
      const outcome = outcomes[index]!;
      if ("error" in outcome) entry.reject(outcome.error);
      else entry.settle(outcome.answer);
    });
  }
}

/**
 * A statement's failure that comes from what some item it carried holds (SQLSTATE classes 22, data
 * exception; 23, integrity constraint violation; 54, program limit exceeded), rather than from the
 * connection, the database or the moment, which would fail each item alike.
 */
export function isDataError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null | undefined)?.code;
  return typeof code === "string" && /^(22|23|54)/.test(code);
}

type Outcome<Answer> = { answer: Answer } | { error: unknown };

/**
 * Runs `items` as one statement. When it fails on the data of some item (isDataError), each half
 * runs on its own, and so on down to single items, so that the items at fault fail alone: one bad
 * item among n costs about 2·log2(n) statements more, once. Without this, the other items' callers
 * retry together and meet the bad item again in their next batch. A statement that failed wrote
 * nothing, so its items may run again.
 */
export async function runIsolatingDataErrors<Item, Answer>(items: Item[], run: (items: Item[]) => Promise<Answer[]>): Promise<Outcome<Answer>[]> {
  try {
    const answers = await run(items);
    return items.map((_, index) => ({ answer: answers[index]! }));
  } catch (error) {
    if (items.length === 1 || !isDataError(error)) return items.map(() => ({ error }));
    const middle = Math.ceil(items.length / 2);
    return [...(await runIsolatingDataErrors(items.slice(0, middle), run)), ...(await runIsolatingDataErrors(items.slice(middle), run))];
  }
}

/**
 * Reads by id that arrive in the same turn share one statement: `load` answers the rows it found,
 * keyed by id; an id it did not find reads as null.
 */
export function batchedReadsById<Row>(load: (ids: string[]) => Promise<Map<string, Row>>): (id: string) => Promise<Row | null> {
  const reads = new StatementBatcher<string, Row | null>(
    async (ids) => {
      const found = await load(ids);
      return ids.map((id) => found.get(id) ?? null);
    },
    { oneAtATime: false },
  );
  return (id) => reads.add(id);
}
