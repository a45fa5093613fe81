/**
 * Gathers what arrives in the same turn of the event loop and sends it as one statement (one round
 * trip; for writes, one commit), in batches of at most `maxBatch`. Each caller gets its own item's
 * answer, or the batch's error: a statement that fails fails every item it carried.
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

  /** Never rejects: the batch's error goes to its items. */
  private async send(batch: typeof this.pending): Promise<void> {
    try {
      const answers = await this.run(batch.map((entry) => entry.item));
      batch.forEach((entry, index) => entry.settle(answers[index]!));
    } catch (error) {
      for (const entry of batch) entry.reject(error);
    }
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
