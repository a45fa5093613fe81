export interface RetryPolicy {
  initialDelayMs: number;
  multiplier: number;
  maxDelayMs: number;
  /** Fraction of the delay added or removed at random, so retries of many jobs spread out. */
  jitter: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { initialDelayMs: 1000, multiplier: 2, maxDelayMs: 60_000, jitter: 0.1 };

/**
 * Delay before retry number `retryNumber` (0 for the first retry):
 * min(initial × multiplier^n, max) ± jitter. `random` returns [0, 1) and is injectable for tests.
 */
export function retryDelayMs(retryNumber: number, policy: RetryPolicy = DEFAULT_RETRY_POLICY, random: () => number = Math.random): number {
  const exponent = Math.max(0, Math.floor(retryNumber));
  const base = Math.min(policy.initialDelayMs * policy.multiplier ** exponent, policy.maxDelayMs);
  const spread = base * policy.jitter * (2 * random() - 1);
  return Math.max(0, Math.round(base + spread));
}

/** Attempts left after the attempt that just failed (retryCount retries happened before it). */
export function hasAttemptsLeft(retryCount: number, maxAttempts: number): boolean {
  return retryCount + 1 < maxAttempts;
}
