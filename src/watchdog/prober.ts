import type { KeyDescription, KeyReference, KmsRegistry } from "../kms/provider.js";
import { isKeyAccessError } from "../kms/provider.js";
import {
  type AccessProof,
  checkRequirements,
  type KeyRequirements,
  type Permission,
  proveAccess,
  type UnmetRequirement,
} from "../kms/requirements.js";

/** What one probe of a key found: its description, the R5 requirements it misses, and a real round trip. */
export interface ProbeOutcome {
  at: Date;
  /** absent when even `get` failed */
  description?: KeyDescription;
  unmet: UnmetRequirement[];
  access: AccessProof;
}

export type ProbeFailureReason = Exclude<AccessProof, { ok: true }>["reason"];

export interface ProberOptions {
  /** A probe result is reused for this long by every KeyProtector naming the same key. */
  intervalMs: number;
  now?: () => Date;
  /** told of every real probe (for tde_key_probes_total) */
  onProbe?: (ref: KeyReference, outcome: ProbeOutcome) => void;
}

/**
 * R10: one probe per distinct key per interval, however many resources depend on it. A probe is
 * a describe plus a real wrap/unwrap round trip (so revoked permissions are seen, not only
 * deleted keys). Concurrent callers for the same key share one probe in flight.
 */
export class KeyProber {
  private readonly results = new Map<string, ProbeOutcome>();
  private readonly inFlight = new Map<string, Promise<ProbeOutcome>>();
  private readonly now: () => Date;

  constructor(
    private readonly kms: KmsRegistry,
    private readonly options: ProberOptions,
  ) {
    this.now = options.now ?? (() => new Date());
  }

  /** The distinct-key identity: the same vault key through the same identity is one key. */
  static identity(ref: KeyReference): string {
    const scoped = ref.provider === "Local" || ref.identity?.type === "ClientSecret";
    return JSON.stringify([
      ref.provider,
      ref.provider === "AzureKeyVault" ? (ref.vaultURL ?? "").replace(/\/+$/, "").toLowerCase() : "",
      scoped ? ref.namespace : "",
      ref.keyName,
      ref.keyVersion ?? "",
      ref.identity ?? null,
    ]);
  }

  /** The last probe of this key if it is younger than the interval (no KMS call), else a new one. */
  async probe(ref: KeyReference, requirements: KeyRequirements, options: { force?: boolean } = {}) {
    const id = KeyProber.identity(ref);
    const cached = this.results.get(id);
    if (!options.force && cached && this.now().getTime() - cached.at.getTime() < this.options.intervalMs) {
      return {
        ...cached,
        unmet: cached.description ? checkRequirements(cached.description, requirements, this.now()) : [],
      };
    }
    let running = this.inFlight.get(id);
    if (!running) {
      running = this.run(ref).finally(() => this.inFlight.delete(id));
      this.inFlight.set(id, running);
    }
    const outcome = await running;
    return {
      ...outcome,
      unmet: outcome.description ? checkRequirements(outcome.description, requirements, this.now()) : [],
    };
  }

  /** The age of the last probe of this key, for scheduling the next one. */
  lastProbe(ref: KeyReference): Date | undefined {
    return this.results.get(KeyProber.identity(ref))?.at;
  }

  forget(ref: KeyReference): void {
    this.results.delete(KeyProber.identity(ref));
  }

  private async run(ref: KeyReference): Promise<ProbeOutcome> {
    const provider = this.kms.providerFor(ref);
    let description: KeyDescription | undefined;
    let access: AccessProof;
    try {
      description = await provider.describe(ref);
      access = await proveAccess(provider, ref, this.now, description);
    } catch (error) {
      const permissions: Permission[] = [];
      access = isKeyAccessError(error)
        ? {
            ok: false,
            permissions,
            failedAt: "get",
            reason: error.reason,
            message: error.message,
            ...(error.retryAfterMs === undefined ? {} : { retryAfterMs: error.retryAfterMs }),
          }
        : { ok: false, permissions, failedAt: "get", reason: "Error", message: (error as Error).message };
    }
    const outcome: ProbeOutcome = {
      at: this.now(),
      unmet: [],
      access,
      ...(description ? { description } : {}),
    };
    this.results.set(KeyProber.identity(ref), outcome);
    this.options.onProbe?.(ref, outcome);
    return outcome;
  }
}
