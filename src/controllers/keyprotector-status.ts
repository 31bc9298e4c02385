import {
  type Condition,
  type ConditionInput,
  ConditionType,
  type KeyProtector,
  type KeyProtectorStatus,
  Reason,
  setCondition,
  shortThumbprint,
} from "../api/index.js";
import type { ProbeOutcome } from "../watchdog/prober.js";

/**
 * R5, R6, R8, R10: the status a KeyProtector's probe leads to, decided purely from the status
 * before and the probe's outcome: what the vault said of the key, the access the round trip
 * proved, the requirements it meets, and Ready from both. Times of the last probe and success
 * move only when something else changes (an outage starts or ends, the key changes): the live
 * probe times are metrics, so a healthy key costs no write per probe.
 */
export function statusFrom(
  kp: KeyProtector,
  outcome: ProbeOutcome,
  now: Date,
  /** R7: set while a Local key with `create: Never` waits for its Secret: the sentence to show */
  waitingForSecret?: string,
): KeyProtectorStatus {
  const prev = kp.status ?? {};
  const gen = kp.metadata.generation;
  const next: KeyProtectorStatus = { ...described(prev, outcome.description), observedGeneration: gen };
  if (waitingForSecret === undefined) recordAccess(prev, next, outcome.access, gen, now);
  else next.lastProbeTime = now.toISOString(); // never had a key: there is no access to lose, no outage clock
  const unmet = outcome.unmet;
  next.unmetRequirements = unmet.map((u) => ({ reason: u.reason, message: u.message }));
  let conditions: Condition[] | undefined = prev.conditions;
  const waiting = (c: ConditionInput): ConditionInput =>
    waitingForSecret === undefined
      ? c
      : { ...c, reason: Reason.KeySecretNotFound, message: waitingForSecret };
  for (const c of [
    waiting(accessibleCondition(outcome.access)),
    requirementsCondition(outcome),
    waiting(readyCondition(outcome)),
  ])
    conditions = setCondition(conditions, c, gen, now);
  next.conditions = conditions;
  return next;
}

/** R6: what the vault said of the key (its current version when none is pinned). */
function described(prev: KeyProtectorStatus, d: ProbeOutcome["description"]): KeyProtectorStatus {
  const next: KeyProtectorStatus = { ...prev };
  if (!d) return next;
  if (!d.publicKeyKnown && prev.thumbprint && d.keyID !== prev.keyID) {
    // a new current version the vault will not show (disabled): its key is unknown, so the
    // status keeps the key its dependants use and says it is not enabled; access is lost (R10)
    next.enabled = false;
    return next;
  }
  Object.assign(next, {
    keyID: d.keyID,
    keyVersion: d.version,
    keyType: d.keyType,
    keySize: d.keySize,
    enabled: d.enabled,
  });
  if (d.thumbprint) {
    next.thumbprint = d.thumbprint;
    next.thumbprintShort = shortThumbprint(d.thumbprint);
  }
  setOptional(next, "notBefore", d.notBefore?.toISOString());
  setOptional(next, "expiresOn", d.expiresOn?.toISOString());
  setOptional(next, "recoveryLevel", d.recoveryLevel);
  setOptional(next, "recoverableDays", d.recoverableDays);
  return next;
}

/** R10: the permissions proven, and since when the key has been unreachable (its outage clock). */
function recordAccess(
  prev: KeyProtectorStatus,
  next: KeyProtectorStatus,
  access: ProbeOutcome["access"],
  gen: number | undefined,
  now: Date,
): void {
  const at = now.toISOString();
  next.provenPermissions = [...access.permissions];
  if (!access.ok) {
    next.lastProbeTime = at;
    next.consecutiveFailures = (prev.consecutiveFailures ?? 0) + 1;
    next.keyAccessLostSince = prev.keyAccessLostSince ?? at;
    return;
  }
  const recovering = prev.keyAccessLostSince !== undefined || prev.lastSuccessTime === undefined;
  if (recovering || prev.keyID !== next.keyID || prev.observedGeneration !== gen) {
    next.lastProbeTime = at;
    next.lastSuccessTime = at;
  }
  next.consecutiveFailures = 0;
  delete next.keyAccessLostSince;
}

/** R8, R10: Accessible, from the wrap/unwrap round trip. */
export function accessibleCondition(access: ProbeOutcome["access"]): ConditionInput {
  if (access.ok)
    return {
      type: ConditionType.Accessible,
      status: "True",
      reason: Reason.KeyAccessible,
      message: `the key answered a wrap/unwrap round trip; permissions proven: ${access.permissions.join(", ")}`,
    };
  return {
    type: ConditionType.Accessible,
    status: "False",
    reason: access.reason,
    message: `${access.message}; dependants become Inaccessible when their grace period runs out. Fix the key or its permissions in the vault.`,
  };
}

/** R5: RequirementsMet: Unknown while the key cannot be read. */
export function requirementsCondition(outcome: Pick<ProbeOutcome, "description" | "unmet">): ConditionInput {
  const { description: d, unmet } = outcome;
  if (unmet.length === 0 && d)
    return {
      type: ConditionType.RequirementsMet,
      status: "True",
      reason: Reason.RequirementsMet,
      message: "the key meets every requirement (R5)",
    };
  return {
    type: ConditionType.RequirementsMet,
    status: d ? "False" : "Unknown",
    reason: unmet[0]?.reason ?? (d ? Reason.RequirementsMet : "KeyNotDescribed"),
    message: d
      ? unmet.map((u) => u.message).join("; ")
      : "the key could not be read, so its requirements could not be checked",
  };
}

/** R5, R10: Ready once the key is accessible, described and meets its requirements. */
export function readyCondition(outcome: ProbeOutcome): ConditionInput {
  const { access, unmet, description } = outcome;
  if (access.ok && unmet.length === 0 && description !== undefined)
    return {
      type: ConditionType.Ready,
      status: "True",
      reason: Reason.Reconciled,
      message: "the key may protect DEKs",
    };
  return {
    type: ConditionType.Ready,
    status: "False",
    reason: access.ok ? (unmet[0]?.reason ?? "KeyNotDescribed") : access.reason,
    message: access.ok
      ? "the key does not meet its requirements: see RequirementsMet"
      : "the key is not accessible: see Accessible",
  };
}

function setOptional<T extends object, K extends keyof T>(target: T, key: K, value: T[K] | undefined): void {
  if (value === undefined) delete target[key];
  else target[key] = value;
}
