import type { KeyProtector } from "../api/index.js";
import type { KeyReference } from "../kms/provider.js";
import type { KeyRequirements } from "../kms/requirements.js";

/** The KMS reference a KeyProtector names (its own namespace: R31). */
export function keyReferenceOf(kp: KeyProtector): KeyReference {
  const namespace = kp.metadata.namespace ?? "";
  const spec = kp.spec;
  if (spec.provider === "Local") {
    const local = spec.local;
    return {
      provider: "Local",
      namespace,
      keyName: local?.secretRef.name ?? "",
      ...(local?.keyVersion ? { keyVersion: local.keyVersion } : {}),
    };
  }
  const azure = spec.azureKeyVault;
  return {
    provider: "AzureKeyVault",
    namespace,
    vaultURL: azure?.vaultURL ?? "",
    keyName: azure?.keyName ?? "",
    ...(azure?.keyVersion ? { keyVersion: azure.keyVersion } : {}),
    ...(spec.identity ? { identity: spec.identity } : {}),
  };
}

export function requirementsOf(kp: KeyProtector): KeyRequirements {
  const r = kp.spec.requirements;
  return {
    allowedKeySizes: r?.allowedKeySizes ? [...r.allowedKeySizes] : [2048, 3072],
    ...(r?.allowExpiry !== undefined ? { allowExpiry: r.allowExpiry } : {}),
    ...(r?.requireRecoverable !== undefined ? { requireRecoverable: r.requireRecoverable } : {}),
    ...(r?.minimumRecoverableDays !== undefined ? { minimumRecoverableDays: r.minimumRecoverableDays } : {}),
  };
}
