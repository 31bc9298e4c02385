import { ConditionType, findCondition, type KeyProtector } from "../api/index.js";
import type { KeyReference } from "../kms/provider.js";
import type { Store } from "../runtime/index.js";
import type { Kek } from "./dek-operations.js";
import { keyReferenceOf } from "./key-reference.js";
import type { Kube } from "./resources.js";

/** The flag, its environment variable and its chart value, as conditions and errors name them. */
export const SERVICE_MANAGED_KEY_SETTING =
  "--service-managed-key (TDE_SERVICE_MANAGED_KEY, chart value operator.serviceManagedKey)";

/** The KeyProtector serving as the service-managed key (R7, R9). */
export interface ServiceManagedKey {
  namespace: string;
  keyProtectorName: string;
  /**
   * Named by the operator setting (SERVICE_MANAGED_KEY_SETTING); absent for the operator's own
   * Local key, which it creates at start. Messages then name the setting and its fix.
   */
  configured?: boolean;
  /**
   * The operator's namespace. Its KeyProtectors, and those of the service-managed key's
   * namespace, may unwrap service-managed DEKs: a DEK still wrapped under a previous
   * service-managed key is unwrapped (and re-wrapped, R16) with the KeyProtector of that key.
   */
  operatorNamespace?: string;
}

/**
 * The KeyProtectors that may unwrap a service-managed DEK: the service-managed key's, then every
 * other one of its namespace and of the operator's namespace (where a previous service-managed key
 * lives). Those namespaces are the platform's: no tenant names a key there (R31).
 */
export function serviceManagedCandidates(
  keyProtectors: Store<Kube<KeyProtector>>,
  smk: ServiceManagedKey,
): Kube<KeyProtector>[] {
  const current = keyProtectors.get(smk.namespace, smk.keyProtectorName);
  const out = current ? [current] : [];
  for (const namespace of new Set([smk.namespace, smk.operatorNamespace ?? smk.namespace]))
    for (const kp of keyProtectors.list(namespace)) if (kp !== current) out.push(kp);
  return out;
}

const smkName = (smk: ServiceManagedKey) => `KeyProtector ${smk.namespace}/${smk.keyProtectorName}`;

export interface KeyAccess {
  accessible: boolean;
  reason?: string;
  detail?: string;
  lostSince?: string;
  /** R33: nothing has probed the key lately: its access is unknown (then `accessible` is false) */
  unknown?: { reason: string; message: string };
}

export type KekResolution =
  | {
      ok: true;
      kek: Kek;
      /** the KeyProtector meets its requirements (R5): may take on new DEKs */
      ready: boolean;
      notReadyMessage?: string;
      access: KeyAccess;
    }
  | { ok: false; reason: "KeyProtectorNotFound" | "KeyProtectorNotReady"; message: string };

/**
 * The KEK behind a protector choice, read from the KeyProtector's status (no KMS call). A
 * customer key is looked up in the resource's own namespace only (R31); the service-managed key
 * is the operator's own KeyProtector.
 */
export function resolveKek(
  keyProtectors: Store<Kube<KeyProtector>>,
  namespace: string,
  choice: { type: "ServiceManaged" | "CustomerManaged"; keyProtectorName?: string },
  smk: ServiceManagedKey,
): KekResolution {
  const customer = choice.type === "CustomerManaged";
  const kpNamespace = customer ? namespace : smk.namespace;
  const kpName = customer ? (choice.keyProtectorName ?? "") : smk.keyProtectorName;
  const kp = keyProtectors.get(kpNamespace, kpName);
  if (!kp) {
    return {
      ok: false,
      reason: "KeyProtectorNotFound",
      message: customer
        ? `waiting for KeyProtector ${kpName} in namespace ${namespace}: create it (references resolve in the resource's own namespace only)`
        : smk.configured
          ? `the service-managed key is ${smkName(smk)} (${SERVICE_MANAGED_KEY_SETTING}), which does not exist: create it, or set the setting back to the KeyProtector that protects the DEKs today; every DEK stays under its current key until then`
          : `waiting for the operator's service-managed key (${smkName(smk)}); the operator creates it at start`,
    };
  }
  return resolveKeyProtector(kp, customer ? { customer: true } : { customer: false, smk });
}

/**
 * The KEK a KeyProtector names, read from its status (no KMS call): as a customer key (its name
 * recorded, R13) or as a service-managed one (`smk`, the setting's; or a previous one, R16).
 */
export function resolveKeyProtector(
  kp: Kube<KeyProtector>,
  as: { customer: true } | { customer: false; smk?: ServiceManagedKey },
): KekResolution {
  const customer = as.customer;
  const smk = as.customer ? undefined : as.smk;
  const kpName = kp.metadata.name ?? "";
  const status = kp.status;
  if (!status?.keyID || !status.thumbprint) {
    const why = findCondition(status?.conditions, ConditionType.Ready)?.message ?? "not probed yet";
    return {
      ok: false,
      reason: "KeyProtectorNotReady",
      message: smk?.configured
        ? `waiting for the service-managed key, ${smkName(smk)} (${SERVICE_MANAGED_KEY_SETTING}), to resolve its key: ${why}; every DEK stays under its current key until then`
        : `waiting for KeyProtector ${kpName} to resolve its key: ${why}`,
    };
  }
  const accessible = findCondition(status.conditions, ConditionType.Accessible);
  const requirements = findCondition(status.conditions, ConditionType.RequirementsMet);
  const kek: Kek = {
    ref: keyReferenceOf(kp),
    keyID: status.keyID,
    thumbprint: status.thumbprint,
    ...(customer ? { keyProtectorName: kpName } : {}),
  };
  const access: KeyAccess =
    accessible?.status === "True"
      ? { accessible: true }
      : {
          accessible: false,
          reason: accessible?.reason ?? "KeyInaccessible",
          detail: accessible?.message ?? "",
          ...(status.keyAccessLostSince ? { lostSince: status.keyAccessLostSince } : {}),
        };
  return {
    ok: true,
    kek,
    ready: requirements?.status === "True",
    ...(requirements?.status === "True"
      ? {}
      : {
          notReadyMessage: `KeyProtector ${kpName} does not meet its requirements: ${requirements?.message ?? "unknown"}`,
        }),
    access,
  };
}

/**
 * Every key reference that may unwrap a DEK in this namespace: its KeyProtectors, then the
 * service-managed key and the others that may unwrap a service-managed DEK (R7, R16: a previous
 * service-managed key, until every DEK has moved).
 */
export function unwrapCandidates(
  keyProtectors: Store<Kube<KeyProtector>>,
  namespace: string,
  smk: ServiceManagedKey,
): KeyReference[] {
  const own = keyProtectors.list(namespace);
  const service = serviceManagedCandidates(keyProtectors, smk).filter((kp) => !own.includes(kp));
  return [...own, ...service].map((kp) => keyReferenceOf(kp));
}
