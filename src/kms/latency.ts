/**
 * A KekProvider decorator that adds an artificial latency to every call and counts the calls.
 * Benchmarks give the Local provider the round trip of a vault in the same region (about 20 ms)
 * with it (`--local-kms-latency`), so KMS cost shows up in the figures as it would in production.
 */
import type { KekProvider, KeyDescription, KeyReference, KmsOperation, WrapResult } from "./provider.js";

export interface LatencyOptions {
  /** Added before every call, in milliseconds. */
  latencyMs: number;
  /** Injectable for tests. */
  sleep?: (ms: number) => Promise<void>;
}

/** Calls made so far, by operation; a wrap with a key id is DEK work, one without is a probe's round trip. */
export interface KmsCallCounts {
  describe: number;
  list: number;
  wrap: number;
  /** wraps pinned to an exact version (DEK creation and re-wraps) */
  pinnedWrap: number;
  unwrap: number;
}

const realSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class LatencyKekProvider implements KekProvider {
  readonly name: KekProvider["name"];
  readonly counts: KmsCallCounts = { describe: 0, list: 0, wrap: 0, pinnedWrap: 0, unwrap: 0 };
  private readonly sleep: (ms: number) => Promise<void>;

  constructor(
    private readonly inner: KekProvider,
    private readonly options: LatencyOptions,
  ) {
    if (!Number.isFinite(options.latencyMs) || options.latencyMs < 0)
      throw new Error(`a KMS latency must be a number of milliseconds >= 0, got ${options.latencyMs}`);
    this.name = inner.name;
    this.sleep = options.sleep ?? realSleep;
  }

  describe(ref: KeyReference): Promise<KeyDescription> {
    return this.delayed("describe", () => this.inner.describe(ref));
  }

  listVersions(ref: KeyReference): Promise<KeyDescription[]> {
    return this.delayed("list", () => this.inner.listVersions(ref));
  }

  wrap(ref: KeyReference, dek: Buffer): Promise<WrapResult> {
    if (ref.keyID) this.counts.pinnedWrap++;
    return this.delayed("wrap", () => this.inner.wrap(ref, dek));
  }

  unwrap(ref: KeyReference, wrapped: Buffer): Promise<Buffer> {
    return this.delayed("unwrap", () => this.inner.unwrap(ref, wrapped));
  }

  private async delayed<T>(operation: KmsOperation, call: () => Promise<T>): Promise<T> {
    this.counts[operation]++;
    if (this.options.latencyMs > 0) await this.sleep(this.options.latencyMs);
    return call();
  }
}

/** `inner` with `latencyMs` added to every call; `inner` itself when the latency is 0. */
export function withLatency(inner: KekProvider, latencyMs: number): KekProvider {
  return latencyMs > 0 ? new LatencyKekProvider(inner, { latencyMs }) : inner;
}
