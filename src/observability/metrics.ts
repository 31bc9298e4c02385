import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import { type Condition, ConditionType, isTrue } from "../api/conditions.js";

/**
 * prom-client's default gauges whose names end in `_total`, which Prometheus reserves for
 * counters (`promtool check metrics` refuses them). Each is the sum of the gauge of the same name
 * without the suffix (`sum(tde_nodejs_active_handles)`), so they are left out, not renamed.
 */
const DEFAULT_GAUGES_NAMED_LIKE_COUNTERS = [
  "nodejs_active_handles_total",
  "nodejs_active_requests_total",
  "nodejs_active_resources_total",
];

/** An object from an informer cache, as far as the object gauges read it. */
export interface CachedObject {
  metadata: { namespace?: string };
  status?: { conditions?: readonly Condition[] };
}

/** A gauge sample: its labels and its value. */
export interface GaugeSample<L extends string> {
  labels: Record<L, string>;
  value: number;
}

/** Cached objects by kind (informer lists carry no `kind` of their own). */
export type ObjectsByKind = Record<string, Iterable<CachedObject>>;

/**
 * R17, R21: the resources whose protector change waits (`RotationBlocked=True`), by kind and
 * namespace. Pure: the operator hands it the cached servers and databases at scrape time.
 */
export function rotationsBlocked(byKind: ObjectsByKind): GaugeSample<"kind" | "namespace">[] {
  const samples: GaugeSample<"kind" | "namespace">[] = [];
  for (const [kind, objects] of Object.entries(byKind)) {
    const perNamespace = new Map<string, number>();
    for (const o of objects) {
      if (!isTrue(o.status?.conditions, ConditionType.RotationBlocked)) continue;
      const namespace = o.metadata.namespace ?? "";
      perNamespace.set(namespace, (perNamespace.get(namespace) ?? 0) + 1);
    }
    for (const [namespace, value] of perNamespace) samples.push({ labels: { kind, namespace }, value });
  }
  return samples;
}

/**
 * R28: the operator's Prometheus metrics. One prefix (tde_), units in names, bounded labels:
 * never a key id, an error text or a UID. Object-state gauges are computed at scrape time from
 * the informer caches through `setStateSource`.
 */
export class Metrics {
  readonly registry = new Registry();

  readonly keyProbes = new Counter({
    name: "tde_key_probes_total",
    help: "Key-access probes (describe + wrap/unwrap round trip), by provider and result (ok or the R10 reason).",
    labelNames: ["provider", "result"] as const,
    registers: [this.registry],
  });

  readonly keyAccessible = new Gauge({
    name: "tde_key_accessible",
    help: "1 when the KeyProtector's key was reachable at the last probe, else 0.",
    labelNames: ["namespace", "keyprotector"] as const,
    registers: [this.registry],
  });

  readonly keyAccessLostSeconds = new Gauge({
    name: "tde_key_access_lost_seconds",
    help: "Seconds since access to the KeyProtector's key was lost (0 while accessible).",
    labelNames: ["namespace", "keyprotector"] as const,
    registers: [this.registry],
  });

  readonly keyExpiry = new Gauge({
    name: "tde_key_expiry_timestamp_seconds",
    help: "Expiry of the KeyProtector's current key version as a Unix timestamp (absent when it has none).",
    labelNames: ["namespace", "keyprotector"] as const,
    registers: [this.registry],
  });

  readonly kmsDuration = new Histogram({
    name: "tde_kms_operation_duration_seconds",
    help: "Latency of KMS operations by provider, operation (describe, wrap, unwrap, list) and result.",
    labelNames: ["provider", "operation", "result"] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  readonly reconciles = new Counter({
    name: "tde_reconcile_total",
    help: "Reconciles by controller and result (success, requeue, error, terminal).",
    labelNames: ["controller", "result"] as const,
    registers: [this.registry],
  });

  readonly reconcileDuration = new Histogram({
    name: "tde_reconcile_duration_seconds",
    help: "Reconcile latency by controller.",
    labelNames: ["controller"] as const,
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });

  readonly workqueueDepth = new Gauge({
    name: "tde_workqueue_depth",
    help: "Keys waiting in the controller's work queue.",
    labelNames: ["controller"] as const,
    registers: [this.registry],
  });

  readonly rotations = new Counter({
    name: "tde_rotations_total",
    help: "DEK re-wraps under a new protector, by kind and result.",
    labelNames: ["kind", "result"] as const,
    registers: [this.registry],
  });

  readonly stateTransitions = new Counter({
    name: "tde_state_transitions_total",
    help: "Resource state changes (R12), by kind, from and to.",
    labelNames: ["kind", "from", "to"] as const,
    registers: [this.registry],
  });

  private stateSource: () => Array<{ kind: string; state: string; count: number }> = () => [];

  readonly resources = new Gauge({
    name: "tde_resources",
    help: "Resources by kind and state, from the informer caches at scrape time.",
    labelNames: ["kind", "state"] as const,
    registers: [this.registry],
    collect: () => {
      this.resources.reset();
      for (const { kind, state, count } of this.stateSource()) this.resources.set({ kind, state }, count);
    },
  });

  private envelopeLossSource: () => Array<{ kind: string; reason: string; count: number }> = () => [];

  readonly envelopesLost = new Gauge({
    name: "tde_envelopes_lost",
    help: "Servers and databases whose recorded DEK's envelope Secret is missing, unreadable or replaced (R2), by kind and reason, from the informer caches at scrape time.",
    labelNames: ["kind", "reason"] as const,
    registers: [this.registry],
    collect: () => {
      this.envelopesLost.reset();
      for (const { kind, reason, count } of this.envelopeLossSource())
        this.envelopesLost.set({ kind, reason }, count);
    },
  });

  private blockedSource: () => ObjectsByKind = () => ({});

  readonly rotationsBlocked = new Gauge({
    name: "tde_rotations_blocked",
    help: "Resources whose protector change waits (RotationBlocked=True: an older key still in use, R17, or a secondary that cannot use the new key, R21), by kind and namespace, from the informer caches at scrape time.",
    labelNames: ["kind", "namespace"] as const,
    registers: [this.registry],
    collect: () => {
      this.rotationsBlocked.reset();
      for (const { labels, value } of rotationsBlocked(this.blockedSource()))
        this.rotationsBlocked.set(labels, value);
    },
  });

  private singlePointOfLossSource: () => Array<{ kind: string; count: number }> = () => [];

  readonly serviceManagedSinglePointOfLoss = new Gauge({
    name: "tde_service_managed_single_point_of_loss",
    help: "DEKs wrapped only by the Local service-managed key (R7), lost if its Secret or namespace is deleted, by owner kind, from the informer caches at scrape time; 0 once each has a second wrap under a key kept elsewhere, or the service-managed key is in a vault.",
    labelNames: ["kind"] as const,
    registers: [this.registry],
    collect: () => {
      this.serviceManagedSinglePointOfLoss.reset();
      for (const { kind, count } of this.singlePointOfLossSource())
        this.serviceManagedSinglePointOfLoss.set({ kind }, count);
    },
  });

  /** R19-R21: whether the last read of a remote cluster (geo-replication) answered; labelled by cluster name only. */
  readonly remoteClusterUp = new Gauge({
    name: "tde_remote_cluster_up",
    help: "1 when the last read of a remote cluster's API server (a geo-replication peer named by its kubeconfig Secret) answered, 0 when it failed (unreachable, refused, no or a bad kubeconfig Secret).",
    labelNames: ["cluster"] as const,
    registers: [this.registry],
  });

  readonly remoteClusterLastSuccess = new Gauge({
    name: "tde_remote_cluster_last_success_timestamp_seconds",
    help: "When a read of the remote cluster last answered (Unix time, seconds).",
    labelNames: ["cluster"] as const,
    registers: [this.registry],
  });

  constructor(options: { defaultMetrics?: boolean } = {}) {
    // counters an alert takes the increase() of exist from the start: a series first seen at 1
    // would show no increase, and TDERotationFailed could never fire on a single failure
    for (const kind of ["EncryptedServer", "EncryptedDatabase"])
      for (const result of ["success", "error"]) this.rotations.inc({ kind, result }, 0);
    if (options.defaultMetrics ?? true) {
      collectDefaultMetrics({ register: this.registry, prefix: "tde_" });
      for (const name of DEFAULT_GAUGES_NAMED_LIKE_COUNTERS) this.registry.removeSingleMetric(`tde_${name}`);
    }
  }

  setStateSource(source: () => Array<{ kind: string; state: string; count: number }>): void {
    this.stateSource = source;
  }

  setEnvelopeLossSource(source: () => Array<{ kind: string; reason: string; count: number }>): void {
    this.envelopeLossSource = source;
  }

  /** R7: the DEKs on the Local service-managed key alone, by kind, counted at scrape time. */
  setSinglePointOfLossSource(source: () => Array<{ kind: string; count: number }>): void {
    this.singlePointOfLossSource = source;
  }

  /** The cached servers and databases `tde_rotations_blocked` is counted from at scrape time. */
  setRotationSource(source: () => ObjectsByKind): void {
    this.blockedSource = source;
  }
}
