/**
 * Gathers writes that arrive in the same turn of the event loop and sends them as one statement (one
 * round trip, one commit), in batches of at most `maxBatch`, one batch at a time: while a batch is
 * being written, new arrivals wait and go together in the next. Each caller gets its own item's
 * answer, or the batch's error.
 */
export class WriteBatcher<Item, Answer> {
  private pending: { item: Item; settle: (answer: Answer) => void; reject: (error: unknown) => void }[] = [];
  private flushing: Promise<void> | null = null;

  constructor(
    private readonly write: (items: Item[]) => Promise<Answer[]>,
    private readonly maxBatch = 500,
  ) {}

  add(item: Item): Promise<Answer> {
    return new Promise((settle, reject) => {
      this.pending.push({ item, settle, reject });
      this.flushing ??= this.flush();
    });
  }

  private async flush(): Promise<void> {
    // Let writes that arrive in the same tick join this batch.
    await new Promise<void>((resolve) => setImmediate(resolve));
    while (this.pending.length > 0) {
      const batch = this.pending.splice(0, this.maxBatch);
      try {
        const answers = await this.write(batch.map((entry) => entry.item));
        batch.forEach((entry, index) => entry.settle(answers[index]!));
      } catch (error) {
        for (const entry of batch) entry.reject(error);
      }
    }
    this.flushing = null;
  }
}
