/**
 * Lets a test hold a handler between stages: `pass(id, n)` waits until `open(id)` was called n
 * times for that job (or its signal aborts), so a page can be checked at each stage without timing.
 */
export class StageGates {
  private readonly opened = new Map<string, number>();
  private readonly waiting = new Map<string, Set<() => void>>();
  private allOpen = false;

  async pass(id: string, times: number, signal: AbortSignal): Promise<void> {
    while (!this.allOpen && (this.opened.get(id) ?? 0) < times) {
      signal.throwIfAborted();
      await new Promise<void>((resolve) => {
        const wake = () => {
          this.waiting.get(id)?.delete(wake);
          signal.removeEventListener("abort", wake);
          resolve();
        };
        if (!this.waiting.has(id)) this.waiting.set(id, new Set());
        this.waiting.get(id)!.add(wake);
        signal.addEventListener("abort", wake, { once: true });
      });
    }
  }

  open(id: string): void {
    this.opened.set(id, (this.opened.get(id) ?? 0) + 1);
    for (const wake of [...(this.waiting.get(id) ?? [])]) wake();
  }

  /** Lets every handler through, for shutdown. */
  openAll(): void {
    this.allOpen = true;
    for (const waiters of this.waiting.values()) for (const wake of [...waiters]) wake();
  }
}
