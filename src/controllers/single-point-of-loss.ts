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

/** The kinds the gauge counts, each exported (at 0 too) so an alert sees the series from the start. */
export const SINGLE_POINT_OF_LOSS_KINDS = ["EncryptedServer", "EncryptedDatabase"] as const;

/** The envelope index the watch counts from: which Local keys wrap each DEK, and alone or not. */
export const BY_LOCAL_WRAP = "byLocalWrap";

const keyName = (k: LocalKeySecret) => `${k.namespace}/${k.name}`;

/**
 * The index values of a DEK with these wraps: `wrapped:NS/NAME` for every Local key wrapping it,
 * and `only:KIND:NS/NAME` for each of them when it depends on Local keys of that one namespace
 * alone: wrapped by nothing kept outside that namespace (another Local key of the same namespace
 * goes with it when the namespace is deleted). Computed once per envelope change, so the watch's verdict and the gauge
 * are counts, never a scan of every envelope. Pure.
 */
export function localWrapValues(kind: string, keyIDs: readonly string[]): string[] {
  const keys = new Map<string, LocalKeySecret>();
  const namespaces = new Set<string>();
  let allLocal = true;
  for (const id of keyIDs) {
    const local = parseLocalKeyID(id);
    if (!local) {
      allLocal = false;
      continue;
    }
    namespaces.add(local.namespace);
    keys.set(keyName(local), { namespace: local.namespace, name: local.name });
  }
  const values = [...keys.keys()].map((k) => `wrapped:${k}`);
  const counted = kind === "EncryptedServer" || kind === "EncryptedDatabase";
  if (counted && allLocal && namespaces.size === 1)
    for (const k of keys.keys()) values.push(`only:${kind}:${k}`);
  return values;
}

/** The index function over cached envelope Secrets (summaries): an unreadable one is its owner's to report (R2). */
export function localWrapIndexValues(secret: KubeObject): string[] {
  try {
    const { envelope } = envelopeFromCache(secret);
    return localWrapValues(
      secret.metadata?.labels?.[OWNER_KIND_LABEL] ?? "",
      envelope.wraps.map((w) => w.keyID),
    );
  } catch {
    return [];
  }
}

/** How many DEKs a Local key wraps, and how many of them, by owner kind, depend on it alone. */
export interface LocalWrapCounts {
  wrapped: number;
  only: Record<(typeof SINGLE_POINT_OF_LOSS_KINDS)[number], number>;
}

/**
 * The SinglePointOfLoss condition of the Local service-managed key's KeyProtector. The message
 * names no count and no DEK, so it changes (and is written) only when the verdict does; the gauge
 * has the count.
 */
export function singlePointOfLossCondition(key: LocalKeySecret, counts: LocalWrapCounts): ConditionInput {
  if (counts.only.EncryptedServer + counts.only.EncryptedDatabase > 0)
    return {
      type: ConditionType.SinglePointOfLoss,
      status: "True",
      reason: Reason.OnlyWrappedByLocalKey,
      message: `service-managed DEKs are wrapped only by the Local key in Secret ${key.namespace}/${key.name} (tde_service_managed_single_point_of_loss counts them): deleting that Secret or the namespace ${key.namespace} makes them unrecoverable. Back the Secret up (docs/operating.md, "The service-managed key"), or move the service-managed key to a vault with ${SERVICE_MANAGED_KEY_SETTING}`,
    };
  return counts.wrapped > 0
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
 * The single point of loss over the operator's caches: the envelopes (indexed once per Secret
 * version, BY_LOCAL_WRAP) and the service-managed key's KeyProtector. No API call, no KMS call,
 * and no scan: each verdict and each scrape is a few index counts.
 */
export class SinglePointOfLossWatch {
  constructor(
    private readonly caches: {
      envelopes: Store<KubeObject>;
      keyProtectors: Store<Kube<KeyProtector>>;
      smk: ServiceManagedKey;
    },
  ) {
    if (!caches.envelopes.hasIndex(BY_LOCAL_WRAP))
      caches.envelopes.addIndex(BY_LOCAL_WRAP, localWrapIndexValues);
  }

  /** The Local KEK Secret of the service-managed key, when it is a Local one that exists. */
  localServiceManagedKey(): LocalKeySecret | undefined {
    const { smk, keyProtectors } = this.caches;
    const kp = keyProtectors.get(smk.namespace, smk.keyProtectorName);
    return kp ? localKeyOf(kp) : undefined;
  }

  /**
   * Whether this envelope can move the verdict: only one wrapped by the Local service-managed key
   * (before or after a change, the controller maps both) starts or ends a single point of loss,
   * so a rotation's thousands of envelope writes under customer keys wake nothing.
   */
  concerns(secret: KubeObject): boolean {
    const key = this.localServiceManagedKey();
    return key !== undefined && localWrapIndexValues(secret).includes(`wrapped:${keyName(key)}`);
  }

  /** The condition this KeyProtector should carry: only the Local service-managed key's has one. */
  condition(kp: Kube<KeyProtector>): ConditionInput | undefined {
    const key = isServiceManagedKey(kp, this.caches.smk) ? localKeyOf(kp) : undefined;
    return key ? singlePointOfLossCondition(key, this.countsOf(key)) : undefined;
  }

  /** tde_service_managed_single_point_of_loss: the DEKs on the Local service-managed key alone, by kind. */
  counts(): { kind: string; count: number }[] {
    const key = this.localServiceManagedKey();
    const only = key ? this.countsOf(key).only : undefined;
    return SINGLE_POINT_OF_LOSS_KINDS.map((kind) => ({ kind, count: only?.[kind] ?? 0 }));
  }

  private countsOf(key: LocalKeySecret): LocalWrapCounts {
    const count = (value: string) => this.caches.envelopes.countByIndex(BY_LOCAL_WRAP, value);
    return {
      wrapped: count(`wrapped:${keyName(key)}`),
      only: {
        EncryptedServer: count(`only:EncryptedServer:${keyName(key)}`),
        EncryptedDatabase: count(`only:EncryptedDatabase:${keyName(key)}`),
      },
    };
  }
}
