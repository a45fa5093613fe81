/**
 * Gathers what arrives in the same turn of the event loop and sends it as one statement (one round
 * trip; for writes, one commit), in batches of at most `maxBatch`, one batch at a time: while a batch
 * is in flight, new arrivals wait and go together in the next. Each caller gets its own item's
 * answer, or the batch's error.
 */
export class StatementBatcher<Item, Answer> {
  private pending: { item: Item; settle: (answer: Answer) => void; reject: (error: unknown) => void }[] = [];
  private flushing: Promise<void> | null = null;

  constructor(
    private readonly run: (items: Item[]) => Promise<Answer[]>,
    private readonly maxBatch = 500,
  ) {}

  add(item: Item): Promise<Answer> {
    return new Promise((settle, reject) => {
      this.pending.push({ item, settle, reject });
      this.flushing ??= this.flush();
    });
  }

  private async flush(): Promise<void> {
    // Let what arrives in the same tick join this batch.
    await new Promise<void>((resolve) => setImmediate(resolve));
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, this.maxBatch);
      try {
        const answers = await this.run(batch.map((entry) => entry.item));
        batch.forEach((entry, index) => entry.settle(answers[index]!));
      } catch (error) {
        for (const entry of batch) entry.reject(error);
      }
    }
    this.flushing = null;
  }
}
