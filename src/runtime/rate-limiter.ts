import { type BackoffPolicy, backoffDelay } from "./backoff.js";

/**
 * Per-key exponential backoff for failed work: the n-th consecutive failure of a key waits
 * base · 2^(n-1), capped. `forget` (on success) resets the key.
 */
export class ExponentialRateLimiter {
  private readonly failures = new Map<string, number>();

  constructor(readonly policy: BackoffPolicy = { baseMs: 1_000, maxMs: 300_000 }) {}

  /** Records one more failure of `key` and returns how long to wait before retrying it. */
  when(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    return backoffDelay(this.policy, n);
  }

  numFailures(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  forget(key: string): void {
    this.failures.delete(key);
  }
}
