/**
 * R7: what a Local KeyProtector does when its Secret does not exist. A key that was never
 * resolved is made on first use (`create: IfMissing`, the default) or waited for (`Never`: the
 * Secret carries imported material and may arrive after its KeyProtector, as a GitOps tool can
 * apply it). A key that existed and vanished is never made again: that is a loss (KeyNotFound).
 */
import type { KeyProtector } from "../api/index.js";
import type { ProbeOutcome } from "../watchdog/prober.js";

export type MissingLocalKey = "create" | "wait" | "none";

export function missingLocalKey(kp: KeyProtector, outcome: ProbeOutcome): MissingLocalKey {
  if (kp.spec.provider !== "Local" || !kp.spec.local) return "none";
  if (kp.status?.keyID || outcome.description) return "none";
  if (outcome.access.ok || outcome.access.reason !== "KeyNotFound") return "none";
  return kp.spec.local.create === "Never" ? "wait" : "create";
}

/** The sentence a waiting KeyProtector shows on Accessible and Ready: the Secret and the two fixes. */
export function keySecretWaitMessage(kp: KeyProtector): string {
  const ns = kp.metadata.namespace ?? "";
  const name = kp.spec.local?.secretRef.name ?? "";
  return `the Secret ${ns}/${name} does not exist and spec.local.create is Never, so the operator waits for it (nothing is created): apply the Secret with the imported key material (or kubectl tde local-key import), or set spec.local.create: IfMissing to have a new key made`;
}
