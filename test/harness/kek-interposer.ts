import type { KekProvider } from "../../src/kms/provider.js";

type Calls = Pick<KekProvider, "describe" | "listVersions" | "wrap" | "unwrap">;

/**
 * A provider that passes every call to `inner` but the ones a test overrides (to count, delay or
 * refuse them): a fault or an observation at one KMS step, with the rest of the provider real.
 */
export function interposed(inner: KekProvider, overrides: Partial<Calls>): KekProvider {
  return {
    name: inner.name,
    describe: overrides.describe ?? ((r) => inner.describe(r)),
    listVersions: overrides.listVersions ?? ((r) => inner.listVersions(r)),
    wrap: overrides.wrap ?? ((r, d) => inner.wrap(r, d)),
    unwrap: overrides.unwrap ?? ((r, w) => inner.unwrap(r, w)),
  };
}
