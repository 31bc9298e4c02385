/** Capped exponential backoff: base · 2^(attempt), at most `max`, optionally with jitter. */
export interface BackoffPolicy {
  readonly baseMs: number;
  readonly maxMs: number;
  /** Fraction of random extra delay, 0..1. Default 0. */
  readonly jitter?: number;
}

export function backoffDelay(
  policy: BackoffPolicy,
  attempt: number,
  random: () => number = Math.random,
): number {
  const exp = policy.baseMs * 2 ** Math.max(0, Math.min(attempt, 52));
  const capped = Math.min(exp, policy.maxMs);
  const jitter = policy.jitter ?? 0;
  return Math.min(policy.maxMs, Math.round(capped * (1 + jitter * random())));
}

/** Resolves after `ms`, or early (without rejecting) when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}
