/**
 * Serves a value computed at most once per `ttlMs`: callers in that time share one result, and
 * callers arriving while it is being computed share that computation. Past the ttl the stale value
 * is still served while one refresh runs, so no caller waits on the aggregate except the first.
 * A ttl of 0 disables caching.
 */
export class SharedComputation<T> {
  private value: { result: T; at: number } | null = null;
  private running: Promise<T> | null = null;

  constructor(
    private readonly compute: () => Promise<T>,
    private readonly ttlMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  get(): Promise<T> {
    if (this.ttlMs <= 0) return this.compute();
    const cached = this.value;
    if (cached && this.now() - cached.at < this.ttlMs) return Promise.resolve(cached.result);
    const refresh = this.refresh();
    return cached ? Promise.resolve(cached.result) : refresh;
  }

  private refresh(): Promise<T> {
    this.running ??= this.compute()
      .then((result) => {
        this.value = { result, at: this.now() };
        return result;
      })
      .finally(() => {
        this.running = null;
      });
    // A failed background refresh leaves the stale value in place; the next call tries again.
    this.running.catch(() => {});
    return this.running;
  }
}
