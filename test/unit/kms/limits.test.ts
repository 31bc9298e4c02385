import { describe, expect, it } from "vitest";
import { withLimits } from "../../../src/kms/limits.js";
import type { KekProvider } from "../../../src/kms/provider.js";

function slowProvider(ms: number) {
  let inFlight = 0;
  let peak = 0;
  const provider: KekProvider = {
    name: "Local",
    describe: async () => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await new Promise((r) => setTimeout(r, ms));
      inFlight--;
      return {} as never;
    },
    listVersions: async () => [],
    wrap: async () => ({}) as never,
    unwrap: async () => Buffer.alloc(0),
  };
  return { provider, peak: () => peak };
}

describe("KMS limits", () => {
  it("never has more calls in flight than the concurrency bound, and runs them all", async () => {
    const slow = slowProvider(20);
    const limited = withLimits(slow.provider, { concurrency: 3, ratePerSecond: 0 });
    const ref = { provider: "Local" as const, namespace: "n", keyName: "k" };
    await Promise.all(Array.from({ length: 12 }, () => limited.describe(ref)));
    expect(slow.peak()).toBe(3);
  });

  it("spreads calls past the burst over time at the configured rate", async () => {
    const slow = slowProvider(0);
    const limited = withLimits(slow.provider, { concurrency: 100, ratePerSecond: 20 });
    const ref = { provider: "Local" as const, namespace: "n", keyName: "k" };
    const started = Date.now();
    await Promise.all(Array.from({ length: 30 }, () => limited.describe(ref)));
    // 20 from the burst, 10 more at 20/s: about half a second
    expect(Date.now() - started).toBeGreaterThanOrEqual(400);
  });
});
