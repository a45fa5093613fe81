import { describe, expect, it } from "vitest";
import { DEFAULT_RETRY_POLICY, hasAttemptsLeft, retryDelayMs } from "../../src/jobs/retry-policy.js";

describe("retry policy", () => {
  const exact = () => 0.5; // 2 × 0.5 − 1 = 0: no jitter

  it("grows by the multiplier and stops at the maximum", () => {
    expect([0, 1, 2, 3, 4, 5, 6, 7].map((n) => retryDelayMs(n, DEFAULT_RETRY_POLICY, exact))).toEqual([
      1000, 2000, 4000, 8000, 16000, 32000, 60000, 60000,
    ]);
    expect(retryDelayMs(50, { initialDelayMs: 10, multiplier: 3, maxDelayMs: 500, jitter: 0 })).toBe(500);
  });

  it("keeps jitter within ± the configured fraction", () => {
    expect(retryDelayMs(0, DEFAULT_RETRY_POLICY, () => 0)).toBe(900);
    expect(retryDelayMs(0, DEFAULT_RETRY_POLICY, () => 0.999999)).toBe(1100);
    for (let i = 0; i < 1000; i++) {
      const delay = retryDelayMs(3, DEFAULT_RETRY_POLICY);
      expect(delay).toBeGreaterThanOrEqual(7200);
      expect(delay).toBeLessThanOrEqual(8800);
    }
  });

  it("never returns a negative delay, and treats odd retry numbers safely", () => {
    expect(retryDelayMs(-3, DEFAULT_RETRY_POLICY, exact)).toBe(1000);
    expect(retryDelayMs(0, { initialDelayMs: 0, multiplier: 2, maxDelayMs: 10, jitter: 1 }, () => 0)).toBe(0);
  });

  it("counts attempts: retryCount retries happened before the attempt that just failed", () => {
    expect(hasAttemptsLeft(0, 3)).toBe(true);
    expect(hasAttemptsLeft(1, 3)).toBe(true);
    expect(hasAttemptsLeft(2, 3)).toBe(false);
    expect(hasAttemptsLeft(0, 1)).toBe(false);
  });
});
