import { type KeyProtector, type KeyProtectorStatus, Reason } from "../api/index.js";
import type { Metrics } from "../observability/metrics.js";
import {
  Controller,
  type ControllerOptions,
  type Informer,
  type KubeObject,
  type ObjectKey,
} from "../runtime/index.js";
import type { KeyProber } from "../watchdog/prober.js";
import type { ControllerContext } from "./context.js";
import { deletionBlockedMessage } from "./deletion-protection.js";
import { keyProtectorDependants, localKeyDependants } from "./dependants.js";
import { KeyProtectorReconciler, type KeyProtectorReconcilerDeps } from "./keyprotector-reconciler.js";
import type { Kube } from "./resources.js";
import { keyProtectorsOfLocalKey } from "./setup.js";
import type { SinglePointOfLossWatch } from "./single-point-of-loss.js";

/**
 * The KeyProtector controller with what it relies on (kubebuilder's SetupWithManager): the
 * reconciler's ports over the caches, its probe metrics, and its watches: its own spec and
 * deletion, the dependants that may release a deletion that waits (R33), its Local KEK Secret
 * (R7, R33), and the envelopes that start or end the service-managed key's single point of loss
 * (R7). Everything it reads is a cache: no API call.
 */

type Options = Pick<ControllerOptions, "concurrency" | "observer">;
type KP = Kube<KeyProtector>;

export interface KeyProtectorSetup {
  ctx: ControllerContext;
  /** Secrets labelled tde.dev/local-key=true: the Local provider's KEKs */
  localKeys: Informer<KubeObject>;
  prober: KeyProber;
  probeIntervalMs: number;
  /** the operator's namespace: a previous service-managed key may live there (R16) */
  operatorNamespace: string;
  /** R7: makes a Local KEK on first use (an existing one is left alone) */
  createLocalKey: NonNullable<KeyProtectorReconcilerDeps["createLocalKey"]>;
  singlePointOfLoss: SinglePointOfLossWatch;
}

export function setupKeyProtectorController(s: KeyProtectorSetup, options: Options): Controller {
  const { ctx, localKeys } = s;
  const { events, keyProtectors } = ctx;
  const reconciler = new KeyProtectorReconciler({
    keyProtectors,
    status: ctx.status,
    prober: s.prober,
    probeIntervalMs: s.probeIntervalMs,
    now: ctx.now,
    log: ctx.log,
    createLocalKey: s.createLocalKey,
    onAccessChange: (kp, accessible, reason, message) => {
      if (accessible) void events.normal(kp, "KeyAccessible", message);
      else void events.warning(kp, reason, message);
    },
    client: ctx.client,
    dependants: (kp) => keyProtectorDependants(kp, ctx.servers.store, ctx.databases.store, ctx.smk),
    keySecretBlocked: (kp) => keySecretBlocked(kp, ctx, localKeys),
    keySecretVersion: (kp) => keySecretVersion(kp, localKeys),
    warn: (kp, reason, message) => void events.warning(kp, reason, message),
    notice: (kp, reason, message) => void events.normal(kp, reason, message),
    singlePointOfLoss: (kp) => s.singlePointOfLoss.condition(kp),
    ...(ctx.metrics ? probeMetrics(ctx.metrics, ctx.now) : {}),
  });
  const deleting = (namespace: string | undefined) =>
    deletingKeyProtectors(keyProtectors, [namespace, ctx.smk.namespace, s.operatorNamespace]);
  return (
    new Controller({ name: "keyprotector", reconciler, ...options })
      .watchPrimary(
        keyProtectors,
        ({ type, old, obj }) =>
          type !== "update" ||
          old?.metadata.generation !== obj.metadata.generation ||
          Boolean(old?.metadata.deletionTimestamp) !== Boolean(obj.metadata.deletionTimestamp),
      )
      // R33: a KeyProtector whose deletion waits looks again when a dependant changes or goes,
      // and one whose Local KEK Secret's deletion waits shows it
      .watch(ctx.servers, (o) => deleting(o.metadata.namespace))
      .watch(ctx.databases, (o) => deleting(o.metadata.namespace))
      .watch(localKeys, (secret) => keyProtectorsOfLocalKey(secret, keyProtectors.store))
      // R7: a change of an envelope under the Local service-managed key may start or end its single point of loss
      .watch(ctx.envelopes, (secret) =>
        s.singlePointOfLoss.concerns(secret)
          ? [{ namespace: ctx.smk.namespace, name: ctx.smk.keyProtectorName }]
          : [],
      )
  );
}

/**
 * KeyProtectors being deleted that a change in these namespaces may release: a dependant's own,
 * and those of the service-managed key and the operator (the service-managed key, a previous one).
 */
export function deletingKeyProtectors(
  keyProtectors: Informer<KP>,
  namespaces: readonly (string | undefined)[],
): ObjectKey[] {
  return [...new Set(namespaces)]
    .flatMap((ns) => (ns === undefined ? [] : keyProtectors.store.list(ns)))
    .filter((kp) => kp.metadata.deletionTimestamp)
    .map((kp) => ({ namespace: kp.metadata.namespace ?? "", name: kp.metadata.name ?? "" }));
}

/** R33: why the deletion of a Local KeyProtector's KEK Secret waits, when it does. */
export function keySecretBlocked(
  kp: KP,
  ctx: Pick<ControllerContext, "keyProtectors" | "envelopes">,
  localKeys: Informer<KubeObject>,
): string | undefined {
  if (kp.spec.provider !== "Local" || !kp.spec.local) return undefined;
  const secret = localKeys.store.get(kp.metadata.namespace ?? "", kp.spec.local.secretRef.name);
  if (!secret?.metadata?.deletionTimestamp) return undefined;
  return deletionBlockedMessage(
    `the Local KEK Secret ${secret.metadata.namespace}/${secret.metadata.name}`,
    localKeyDependants(secret, ctx.keyProtectors.store, ctx.envelopes.store),
    "Point this KeyProtector's dependants at another key (their DEKs are re-wrapped online), then delete this KeyProtector",
  );
}

/** R7: the resourceVersion of a Local KeyProtector's KEK Secret as cached ("" when absent; undefined for other providers). */
function keySecretVersion(kp: KP, localKeys: Informer<KubeObject>): string | undefined {
  if (kp.spec.provider !== "Local" || !kp.spec.local) return undefined;
  return (
    localKeys.store.get(kp.metadata.namespace ?? "", kp.spec.local.secretRef.name)?.metadata
      ?.resourceVersion ?? ""
  );
}

/** R28: a KeyProtector's key metrics after each probe, and none once it is gone (they would go stale). */
function probeMetrics(
  metrics: Metrics,
  now: () => Date,
): Pick<KeyProtectorReconcilerDeps, "onGone" | "onProbed"> {
  return {
    onGone: (key) => {
      const labels = { namespace: key.namespace, keyprotector: key.name };
      metrics.keyAccessible.remove(labels);
      metrics.keyAccessLostSeconds.remove(labels);
      metrics.keyExpiry.remove(labels);
    },
    onProbed: (kp, st: KeyProtectorStatus) => {
      const labels = { namespace: kp.metadata.namespace ?? "", keyprotector: kp.metadata.name ?? "" };
      const accessible = st.conditions?.find((c) => c.type === "Accessible");
      if (accessible?.reason === Reason.KeySecretNotFound) {
        // R7: waiting for the Secret of a key never resolved is no loss of access (no alert)
        metrics.keyAccessible.remove(labels);
        metrics.keyAccessLostSeconds.remove(labels);
        return;
      }
      const ok = accessible?.status === "True";
      metrics.keyAccessible.set(labels, ok ? 1 : 0);
      metrics.keyAccessLostSeconds.set(
        labels,
        st.keyAccessLostSince ? (now().getTime() - Date.parse(st.keyAccessLostSince)) / 1000 : 0,
      );
      if (st.expiresOn) metrics.keyExpiry.set(labels, Date.parse(st.expiresOn) / 1000);
    },
  };
}
