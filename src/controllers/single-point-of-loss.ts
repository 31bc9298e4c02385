/**
 * R7: the Local service-managed key is a single point of loss. Its KEK is a Secret in one
 * namespace; every DEK wrapped by it and by nothing kept elsewhere is lost with that Secret or
 * namespace. While the service-managed key is Local and such DEKs exist, its KeyProtector says so
 * (`SinglePointOfLoss=True`, with what to do), a Warning event marks each time that starts, and
 * `tde_service_managed_single_point_of_loss` counts them. A DEK stops counting once it has a
 * second wrap under a key outside that namespace (an extra key of a database, R13; a retained
 * wrap under the previous service-managed key, R16), and every one stops when the
 * service-managed key moves to a vault. Decisions are pure; the watch reads the caches only.
 */
import { type ConditionInput, ConditionType, type KeyProtector, Reason } from "../api/index.js";
import { parseLocalKeyID } from "../kms/local.js";
import type { KubeObject, Store } from "../runtime/index.js";
import { envelopeFromCache } from "./envelope-summary.js";
import { SERVICE_MANAGED_KEY_SETTING, type ServiceManagedKey } from "./kek-resolution.js";
import { type Kube, OWNER_KIND_LABEL } from "./resources.js";
import { isServiceManagedKey } from "./service-managed-key.js";

/** The Secret holding a Local KEK: its namespace and name. */
export interface LocalKeySecret {
  namespace: string;
  name: string;
}

/** What the decision reads of an envelope: its owner's kind and the key ids of its wraps. */
export interface EnvelopeWraps {
  kind: string;
  keyIDs: readonly string[];
}

/** The kinds the gauge counts, each exported (at 0 too) so an alert sees the series from the start. */
export const SINGLE_POINT_OF_LOSS_KINDS = ["EncryptedServer", "EncryptedDatabase"] as const;

/** Whether a DEK's wraps include one under this Local key. */
export function wrappedBy(key: LocalKeySecret, keyIDs: readonly string[]): boolean {
  return keyIDs.some((id) => {
    const local = parseLocalKeyID(id);
    return local?.namespace === key.namespace && local.name === key.name;
  });
}

/**
 * Whether a DEK depends on this Local key alone: wrapped by it, and by nothing kept outside its
 * namespace (another Local key of the same namespace goes with it when the namespace is deleted).
 */
export function onlyWrappedBy(key: LocalKeySecret, keyIDs: readonly string[]): boolean {
  return wrappedBy(key, keyIDs) && keyIDs.every((id) => parseLocalKeyID(id)?.namespace === key.namespace);
}

/** The DEKs that depend on this Local key alone, by their owner's kind. */
export function singlePointOfLossCounts(
  key: LocalKeySecret | undefined,
  envelopes: Iterable<EnvelopeWraps>,
): Record<(typeof SINGLE_POINT_OF_LOSS_KINDS)[number], number> {
  const counts = { EncryptedServer: 0, EncryptedDatabase: 0 };
  if (!key) return counts;
  for (const e of envelopes) {
    if ((e.kind === "EncryptedServer" || e.kind === "EncryptedDatabase") && onlyWrappedBy(key, e.keyIDs))
      counts[e.kind] += 1;
  }
  return counts;
}

/**
 * The SinglePointOfLoss condition of the Local service-managed key's KeyProtector. The message
 * names no count and no DEK, so it changes (and is written) only when the verdict does; the gauge
 * has the count.
 */
export function singlePointOfLossCondition(
  key: LocalKeySecret,
  envelopes: Iterable<EnvelopeWraps>,
): ConditionInput {
  let wrapped = false;
  for (const e of envelopes) {
    if (!wrappedBy(key, e.keyIDs)) continue;
    wrapped = true;
    if (onlyWrappedBy(key, e.keyIDs))
      return {
        type: ConditionType.SinglePointOfLoss,
        status: "True",
        reason: Reason.OnlyWrappedByLocalKey,
        message: `service-managed DEKs are wrapped only by the Local key in Secret ${key.namespace}/${key.name} (tde_service_managed_single_point_of_loss counts them): deleting that Secret or the namespace ${key.namespace} makes them unrecoverable. Back the Secret up (docs/operating.md, "The service-managed key"), or move the service-managed key to a vault with ${SERVICE_MANAGED_KEY_SETTING}`,
      };
  }
  return wrapped
    ? {
        type: ConditionType.SinglePointOfLoss,
        status: "False",
        reason: Reason.WrappedElsewhereToo,
        message: `every DEK wrapped by the Local key in Secret ${key.namespace}/${key.name} also has a wrap under a key kept outside the namespace ${key.namespace}`,
      }
    : {
        type: ConditionType.SinglePointOfLoss,
        status: "False",
        reason: Reason.NoServiceManagedDEKs,
        message: `no DEK is wrapped by the Local key in Secret ${key.namespace}/${key.name}`,
      };
}

/** The Local KEK Secret a KeyProtector names, when it is a Local one. */
export function localKeyOf(kp: Kube<KeyProtector>): LocalKeySecret | undefined {
  return kp.spec.provider === "Local" && kp.spec.local
    ? { namespace: kp.metadata.namespace ?? "", name: kp.spec.local.secretRef.name }
    : undefined;
}

/**
 * The single point of loss over the operator's caches: the envelopes (decoded once per Secret
 * version) and the service-managed key's KeyProtector. No API call, no KMS call.
 */
export class SinglePointOfLossWatch {
  private readonly decoded = new WeakMap<KubeObject, EnvelopeWraps | null>();

  constructor(
    private readonly caches: {
      envelopes: Store<KubeObject>;
      keyProtectors: Store<Kube<KeyProtector>>;
      smk: ServiceManagedKey;
    },
  ) {}

  /** The Local KEK Secret of the service-managed key, when it is a Local one that exists. */
  localServiceManagedKey(): LocalKeySecret | undefined {
    const { smk, keyProtectors } = this.caches;
    const kp = keyProtectors.get(smk.namespace, smk.keyProtectorName);
    return kp ? localKeyOf(kp) : undefined;
  }

  /** The condition this KeyProtector should carry: only the Local service-managed key's has one. */
  condition(kp: Kube<KeyProtector>): ConditionInput | undefined {
    const key = isServiceManagedKey(kp, this.caches.smk) ? localKeyOf(kp) : undefined;
    return key ? singlePointOfLossCondition(key, this.envelopes()) : undefined;
  }

  /** tde_service_managed_single_point_of_loss: the DEKs on the Local service-managed key alone, by kind. */
  counts(): { kind: string; count: number }[] {
    const counts = singlePointOfLossCounts(this.localServiceManagedKey(), this.envelopes());
    return SINGLE_POINT_OF_LOSS_KINDS.map((kind) => ({ kind, count: counts[kind] }));
  }

  private *envelopes(): Generator<EnvelopeWraps> {
    for (const secret of this.caches.envelopes.list()) {
      let wraps = this.decoded.get(secret);
      if (wraps === undefined) {
        try {
          // the cache holds a summary (R21 cache transform): its wraps keep their key ids
          const { envelope } = envelopeFromCache(secret);
          wraps = {
            kind: secret.metadata?.labels?.[OWNER_KIND_LABEL] ?? "",
            keyIDs: envelope.wraps.map((w) => w.keyID),
          };
        } catch {
          wraps = null; // an unreadable envelope is its owner's to report (R2)
        }
        this.decoded.set(secret, wraps);
      }
      if (wraps) yield wraps;
    }
  }
}
