import type { Logger } from "../logger.js";
import type { QueueHealth } from "./health.js";

/**
 * Computes queue health on a timer while anybody listens, and tells every listener each check's
 * status: each listener drops what it already shows. Only the changes of the monitor's own last
 * status would miss a listener that joined between a change and its reversal (it read the new
 * status when it joined, and the monitor, still at the old one, saw nothing change): that
 * listener kept the passing status until the next real change. Every instance reads the same
 * database, so each computes the same answer locally rather than broadcasting it.
 */
export class HealthMonitor {
  private listeners = new Set<(health: QueueHealth) => void>();
  private timer: NodeJS.Timeout | undefined;
  private checking = false;

  constructor(
    private readonly check: () => Promise<QueueHealth>,
    private readonly intervalMs: number,
    private readonly logger: Logger,
  ) {}

  /** Registers a listener; returns the function that removes it. */
  listen(listener: (health: QueueHealth) => void): () => void {
    this.listeners.add(listener);
    if (!this.timer && this.intervalMs > 0) {
      this.timer = setInterval(() => void this.tick(), this.intervalMs);
      this.timer.unref();
    }
    return () => {
      this.listeners.delete(listener);
      if (this.listeners.size === 0) this.stop();
    };
  }

  /** Checks now; tells every listener the result. */
  async tick(): Promise<QueueHealth | null> {
    if (this.checking) return null;
    this.checking = true;
    try {
      const health = await this.check();
      for (const listener of this.listeners) listener(health);
      return health;
    } catch (error) {
      this.logger.warn({ err: error }, "queue health check failed");
      return null;
    } finally {
      this.checking = false;
    }
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }
}
