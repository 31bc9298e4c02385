import { sleep } from "./backoff.js";
import { isAlreadyExists, isConflict, isNotFound } from "./errors.js";
import type { KubeClient } from "./kube-client.js";
import type { KubeObject, ResourceKind } from "./resource.js";

export const LeaseKind: ResourceKind = {
  group: "coordination.k8s.io",
  version: "v1",
  plural: "leases",
  kind: "Lease",
};

interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}
type Lease = KubeObject & { spec?: LeaseSpec };

export interface LeaderElectorOptions {
  client: KubeClient;
  namespace: string;
  /** Lease name, e.g. "tde-operator". */
  name: string;
  /** This replica's identity, unique among replicas (e.g. the pod name). */
  identity: string;
  /** How long a lease holds without renewal before another replica may take it. Default 15 s. */
  leaseDurationMs?: number;
  /** A leader that cannot renew for this long steps down (must be < leaseDuration). Default 10 s. */
  renewDeadlineMs?: number;
  /** Interval between acquire and renew attempts. Default 2 s. */
  retryPeriodMs?: number;
  /** Give the lease up on `stop()` so another replica takes over at once. Default true. */
  releaseOnStop?: boolean;
  onStartedLeading?: () => void;
  /** Called once when leadership ends (lost, or released by `stop`). */
  onStoppedLeading?: () => void;
  /** Called when another identity is seen as leader. */
  onNewLeader?: (identity: string) => void;
  onError?: (err: unknown) => void;
}

/**
 * Leader election on a coordination.k8s.io/v1 Lease, as client-go does it: a lease is taken
 * only when its holder has not renewed it for leaseDuration as observed by this replica's own
 * clock (no clock-skew trust), and every write is guarded by resourceVersion, so two replicas
 * cannot both believe they lead for longer than the renew deadline allows. After leadership is
 * lost `run` returns; the process should then stop its controllers (or exit).
 */
export class LeaderElector {
  private readonly leaseMs: number;
  private readonly renewDeadlineMs: number;
  private readonly retryMs: number;
  private observed: { key: string; at: number } | undefined;
  private lease: Lease | undefined;
  private leading = false;
  private abort = new AbortController();
  private release_ = true;
  private lastLeader: string | undefined;

  constructor(private readonly options: LeaderElectorOptions) {
    this.leaseMs = options.leaseDurationMs ?? 15_000;
    this.renewDeadlineMs = options.renewDeadlineMs ?? 10_000;
    this.retryMs = options.retryPeriodMs ?? 2_000;
    if (this.renewDeadlineMs >= this.leaseMs)
      throw new Error("renewDeadline must be shorter than leaseDuration");
    if (this.retryMs >= this.renewDeadlineMs)
      throw new Error("retryPeriod must be shorter than renewDeadline");
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** Acquires, then renews until leadership is lost or `stop` is called. */
  async run(): Promise<void> {
    const signal = this.abort.signal;
    while (!signal.aborted && !this.leading) {
      if (await this.tryAcquireOrRenew()) break;
      await sleep(jittered(this.retryMs), signal);
    }
    if (signal.aborted) return;
    this.leading = true;
    this.safe(() => this.options.onStartedLeading?.());
    let lastRenew = Date.now();
    while (!signal.aborted) {
      await sleep(this.retryMs, signal);
      if (signal.aborted) break;
      if (await this.tryAcquireOrRenew()) {
        lastRenew = Date.now();
      } else if (Date.now() - lastRenew >= this.renewDeadlineMs || this.heldByOther()) {
        break;
      }
    }
    if (signal.aborted && this.release_) await this.release();
    this.stopLeading();
  }

  /**
   * Stops campaigning or leading. A leader releases the lease (so another replica takes over at
   * once) unless `releaseOnStop: false` or `{ release: false }`, which behaves like a crash: the
   * lease is simply no longer renewed and expires.
   */
  stop(options: { release?: boolean } = {}): void {
    this.release_ = options.release ?? this.options.releaseOnStop ?? true;
    this.abort.abort();
  }

  private async tryAcquireOrRenew(): Promise<boolean> {
    const { client, namespace, name, identity } = this.options;
    const now = new Date();
    try {
      let lease: Lease;
      try {
        lease = await client.get<Lease>(LeaseKind, namespace, name);
      } catch (err) {
        if (!isNotFound(err)) throw err;
        this.lease = await client.create<Lease>(LeaseKind, namespace, {
          apiVersion: "coordination.k8s.io/v1",
          kind: "Lease",
          metadata: { name, namespace },
          spec: this.spec(now, { leaseTransitions: 0, acquireTime: microTime(now) }),
        });
        this.observe(this.lease);
        return true;
      }
      this.observe(lease);
      const spec = lease.spec ?? {};
      const holder = spec.holderIdentity ?? "";
      if (holder !== "" && holder !== identity && !this.expired(spec)) {
        this.lease = lease;
        return false;
      }
      const takingOver = holder !== identity;
      const next: Lease = {
        ...lease,
        spec: this.spec(now, {
          acquireTime: takingOver ? microTime(now) : (spec.acquireTime ?? microTime(now)),
          leaseTransitions: (spec.leaseTransitions ?? 0) + (takingOver && holder !== "" ? 1 : 0),
        }),
      };
      this.lease = await client.replace<Lease>(LeaseKind, namespace, name, next);
      this.observe(this.lease);
      return true;
    } catch (err) {
      if (!isConflict(err) && !isAlreadyExists(err)) this.options.onError?.(err);
      return false;
    }
  }

  private spec(now: Date, extra: Pick<LeaseSpec, "acquireTime" | "leaseTransitions">): LeaseSpec {
    return {
      holderIdentity: this.options.identity,
      leaseDurationSeconds: Math.ceil(this.leaseMs / 1000),
      renewTime: microTime(now),
      ...extra,
    };
  }

  /** Remembers when (by our clock) the lease record last changed. */
  private observe(lease: Lease): void {
    const s = lease.spec ?? {};
    const key = `${s.holderIdentity}|${s.renewTime}|${s.leaseDurationSeconds}`;
    if (this.observed?.key !== key) this.observed = { key, at: Date.now() };
    const holder = s.holderIdentity ?? "";
    if (holder && holder !== this.lastLeader) {
      this.lastLeader = holder;
      if (holder !== this.options.identity) this.safe(() => this.options.onNewLeader?.(holder));
    }
  }

  private expired(spec: LeaseSpec): boolean {
    const duration = (spec.leaseDurationSeconds ?? Math.ceil(this.leaseMs / 1000)) * 1000;
    return !this.observed || this.observed.at + duration <= Date.now();
  }

  private heldByOther(): boolean {
    const holder = this.lease?.spec?.holderIdentity;
    return holder !== undefined && holder !== "" && holder !== this.options.identity;
  }

  private async release(): Promise<void> {
    const lease = this.lease;
    if (!lease || lease.spec?.holderIdentity !== this.options.identity) return;
    try {
      await this.options.client.replace<Lease>(LeaseKind, this.options.namespace, this.options.name, {
        ...lease,
        spec: {
          ...lease.spec,
          holderIdentity: "",
          leaseDurationSeconds: 1,
          renewTime: microTime(new Date()),
        },
      });
    } catch (err) {
      this.options.onError?.(err);
    }
  }

  private stopLeading(): void {
    if (!this.leading) return;
    this.leading = false;
    this.safe(() => this.options.onStoppedLeading?.());
  }

  private safe(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.options.onError?.(err);
    }
  }
}

/** RFC 3339 with microseconds, as Lease MicroTime fields are written. */
function microTime(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}

function jittered(ms: number): number {
  return Math.round(ms * (1 + 0.2 * Math.random()));
}
