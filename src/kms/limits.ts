import type { KekProvider } from "./provider.js";

/**
 * Bounds on how hard the operator leans on a vault: at most `concurrency` calls in flight and, when
 * `ratePerSecond` > 0, no more calls per second than that (a token bucket with a one-second
 * burst). Calls wait their turn in arrival order; nothing is dropped.
 */
export interface KmsLimits {
  concurrency: number;
  ratePerSecond: number;
}

export function withLimits(
  inner: KekProvider,
  limits: KmsLimits,
  now: () => number = () => Date.now(),
): KekProvider {
  const concurrency = Math.max(1, Math.floor(limits.concurrency));
  const rate = Math.max(0, limits.ratePerSecond);
  let inFlight = 0;
  const waiting: (() => void)[] = [];
  let tokens = rate;
  let refilledAt = now();

  const takeToken = async (): Promise<void> => {
    if (rate === 0) return;
    for (;;) {
      const t = now();
      tokens = Math.min(rate, tokens + ((t - refilledAt) / 1000) * rate);
      refilledAt = t;
      if (tokens >= 1) {
        tokens -= 1;
        return;
      }
      await new Promise((r) => setTimeout(r, Math.ceil(((1 - tokens) / rate) * 1000)));
    }
  };

  const run = async <T>(call: () => Promise<T>): Promise<T> => {
    if (inFlight >= concurrency) await new Promise<void>((resolve) => waiting.push(resolve));
    else inFlight++;
    try {
      await takeToken();
      return await call();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else inFlight--;
    }
  };

  return {
    name: inner.name,
    describe: (ref) => run(() => inner.describe(ref)),
    listVersions: (ref) => run(() => inner.listVersions(ref)),
    wrap: (ref, dek) => run(() => inner.wrap(ref, dek)),
    unwrap: (ref, wrapped) => run(() => inner.unwrap(ref, wrapped)),
  };
}
