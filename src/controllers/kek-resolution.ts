import { ConditionType, findCondition, type KeyProtector } from "../api/index.js";
import type { KeyReference } from "../kms/provider.js";
import type { Store } from "../runtime/index.js";
import type { Kek } from "./dek-operations.js";
import { keyReferenceOf } from "./key-reference.js";
import type { Kube } from "./resources.js";

/** Where the operator's own KeyProtector for the service-managed key lives (R7, R9). */
export interface ServiceManagedKey {
  namespace: string;
  keyProtectorName: string;
}

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
        : `waiting for the operator's service-managed key (KeyProtector ${kpNamespace}/${kpName}); the operator creates it at start`,
    };
  }
  const status = kp.status;
  if (!status?.keyID || !status.thumbprint) {
    return {
      ok: false,
      reason: "KeyProtectorNotReady",
      message: `waiting for KeyProtector ${kpName} to resolve its key: ${findCondition(status?.conditions, ConditionType.Ready)?.message ?? "not probed yet"}`,
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

/** Every key reference that may unwrap a DEK in this namespace: its KeyProtectors and the service-managed key. */
export function unwrapCandidates(
  keyProtectors: Store<Kube<KeyProtector>>,
  namespace: string,
  smk: ServiceManagedKey,
): KeyReference[] {
  const own = keyProtectors.list(namespace).map((kp) => keyReferenceOf(kp));
  const service = keyProtectors.get(smk.namespace, smk.keyProtectorName);
  return service ? [...own, keyReferenceOf(service)] : own;
}
