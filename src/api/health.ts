/**
 * R27: the health model. From what a reconcile decided (the state and the specific conditions),
 * the two kstatus conditions that kstatus, Flux and Argo CD read besides `Ready`:
 * - `Reconciling=True` while work is under way or waits for something named in its message
 *   (kstatus: InProgress);
 * - `Stalled=True` when the spec cannot be applied as it is, or the resource is out of service,
 *   until a person acts (kstatus: Failed).
 * They are never both True (kstatus reads the first True one in list order). Pure: no clock, no I/O;
 * docs/operating.md holds the table of every state and what each tool then reports.
 */
import { type Condition, type ConditionInput, ConditionType, findCondition, Reason } from "./conditions.js";

/** The kstatus condition types (abnormal-true polarity). */
export const HealthConditionType = {
  Reconciling: "Reconciling",
  Stalled: "Stalled",
} as const;

/** Reasons of Reconciling and Stalled beyond those copied from the condition that decides. */
export const HealthReason = {
  /** Reconciling=False and Stalled=False: nothing under way, nothing refused. */
  Reconciled: "Reconciled",
  NotStalled: "NotStalled",
  Provisioning: Reason.Provisioning,
  Revalidating: "Revalidating",
  Deleting: Reason.Deleting,
  /** a KeyProtector whose key was not probed yet or whose probe is out of date (R33) */
  AwaitingProbe: "AwaitingProbe",
} as const;

export type HealthKind = "KeyProtector" | "EncryptedServer" | "EncryptedDatabase";

export interface HealthInput {
  kind: HealthKind;
  /** metadata.generation: the observedGeneration of both conditions */
  generation: number | undefined;
  /** status.state (servers and databases); absent for a KeyProtector */
  state?: string | undefined;
  /** metadata.deletionTimestamp is set */
  deleting?: boolean;
  /** the conditions the reconcile computed in this pass (Ready, KeyAccessible, ProtectorChangeAccepted, …) */
  conditions: readonly Condition[] | undefined;
}

export interface HealthConditions {
  reconciling: ConditionInput;
  stalled: ConditionInput;
  /** both as conditions carry it: the generation they were computed for */
  observedGeneration: number | undefined;
}

/**
 * Ready reasons that no retry can clear: the spec (or what it points at) must change. R15 and
 * R19 refusals, R31 references that do not name this resource back, R24 restores missing a key,
 * R5 requirements a key will never meet by waiting, an envelope that is not this resource's own
 * or that is lost or unreadable.
 */
export const TERMINAL_REASONS: ReadonlySet<string> = new Set([
  Reason.ServiceManagedKeyNotAllowed,
  Reason.RevertToServerKeyNotAllowed,
  Reason.PrimaryIsNotPrimary,
  Reason.TooManySecondaries,
  Reason.SecondaryNeedsDatabaseProtector,
  Reason.NotListedByPrimary,
  Reason.NotAllowedBySource,
  Reason.MissingRestoreKeys,
  Reason.ForeignEnvelope,
  Reason.KeyCheckValueMismatch,
  Reason.KeyTypeNotAllowed,
  Reason.KeySizeNotAllowed,
  Reason.ExpiryNotAllowed,
  Reason.KeyNotRecoverable,
  Reason.MissingPermissions,
  "EnvelopeLost",
  Reason.EnvelopeMissing,
  Reason.EnvelopeUnreadable,
  Reason.EnvelopeDEKMismatch,
]);

/**
 * R1, R2: the Ready reasons of a lost envelope (envelope-loss.ts). Terminal, and first among the
 * terminal causes: nothing else this resource could be asked to do matters while its DEK is
 * gone, so Stalled names the loss (the Secret and the DEK id) and what to do.
 */
export const ENVELOPE_LOSS_REASONS: ReadonlySet<string> = new Set([
  Reason.EnvelopeMissing,
  Reason.EnvelopeUnreadable,
  Reason.EnvelopeDEKMismatch,
]);

/**
 * Key-access reasons (R10) that a person must fix: the key is disabled, expired or gone, or the
 * identity is refused. The others (VaultUnreachable, Throttled) are retried by every probe.
 */
export const DEFINITIVE_ACCESS_REASONS: ReadonlySet<string> = new Set([
  Reason.KeyDisabled,
  Reason.KeyExpired,
  Reason.KeyNotFound,
  Reason.PermissionDenied,
  Reason.AuthenticationFailed,
]);

/** The references a resource may wait for: it goes on by itself once they exist and are ready. */
const WAITING_REASONS: ReadonlySet<string> = new Set([
  Reason.KeyProtectorNotFound,
  Reason.KeyProtectorNotReady,
  Reason.ServerNotFound,
  Reason.ServerNotReady,
  Reason.PrimaryNotFound,
  Reason.SourceNotFound,
  Reason.KeyNotYetActive,
  Reason.KeySecretNotFound,
]);

type Verdict =
  | { kind: "stalled"; reason: string; message: string }
  | { kind: "reconciling"; reason: string; message: string }
  | { kind: "settled" };

const describe = (c: Condition) => (c.message ? `${c.reason}: ${c.message}` : c.reason);

/** The one verdict for this pass, in precedence order (first match wins). */
function verdict(input: HealthInput): Verdict {
  const list = input.conditions;
  const ready = findCondition(list, ConditionType.Ready);
  const readyFalse = ready?.status === "False" ? ready : undefined;

  // 1. deletion: finalizers are running (kstatus reports Terminating from deletionTimestamp)
  if (input.deleting || input.state === "Deleting")
    return {
      kind: "reconciling",
      reason: HealthReason.Deleting,
      message: readyFalse?.message
        ? `deleting: ${readyFalse.message}`
        : "deleting: the operator releases this resource's keys and envelope (its deletionPolicy)",
    };

  // 2. refused or terminal: the spec cannot be applied as it is; a lost envelope first (R1, R2)
  if (readyFalse && ENVELOPE_LOSS_REASONS.has(readyFalse.reason))
    return { kind: "stalled", reason: readyFalse.reason, message: readyFalse.message };
  const refused = findCondition(list, ConditionType.ProtectorChangeAccepted);
  if (refused?.status === "False")
    return {
      kind: "stalled",
      reason: refused.reason,
      message: refused.message,
    };
  if (input.kind === "KeyProtector") {
    const unmet = findCondition(list, ConditionType.RequirementsMet);
    if (unmet?.status === "False" && TERMINAL_REASONS.has(unmet.reason))
      return {
        kind: "stalled",
        reason: unmet.reason,
        message: `the key cannot protect DEKs: ${unmet.message}`,
      };
  }
  if (readyFalse && TERMINAL_REASONS.has(readyFalse.reason))
    return { kind: "stalled", reason: readyFalse.reason, message: readyFalse.message };

  // 3. out of service (R10, R23): only a person (or the key coming back, with Automatic
  //    revalidation) brings it back
  if (input.state === "Inaccessible") {
    const access = findCondition(list, ConditionType.KeyAccessible);
    const cause = readyFalse ?? access;
    return {
      kind: "stalled",
      reason: cause?.reason ?? "Inaccessible",
      message: `${cause?.reason === "Inaccessible" ? "" : "Inaccessible: "}${cause?.message || "key access was lost past the grace period"}; restore key access, then revalidate (kubectl tde revalidate)`,
    };
  }

  // 4. a KeyProtector's key: definitive losses stall, transient ones are retried every probe
  if (input.kind === "KeyProtector") {
    const accessible = findCondition(list, ConditionType.Accessible);
    if (accessible?.status === "False" && DEFINITIVE_ACCESS_REASONS.has(accessible.reason))
      return {
        kind: "stalled",
        reason: accessible.reason,
        message: `the key is not usable: ${accessible.message}`,
      };
    if (accessible?.status === "False" && WAITING_REASONS.has(accessible.reason))
      return { kind: "reconciling", reason: accessible.reason, message: `waiting: ${accessible.message}` };
    if (accessible?.status === "False")
      return {
        kind: "reconciling",
        reason: accessible.reason,
        message: `retrying every probe: ${accessible.message}`,
      };
    if (!accessible || accessible.status === "Unknown")
      return {
        kind: "reconciling",
        reason: HealthReason.AwaitingProbe,
        message: accessible?.message || "waiting for the first probe of the key",
      };
  }

  // 5. waiting: for an older key to be released (R17) or every secondary to hold the new one (R21)
  const blocked = findCondition(list, ConditionType.RotationBlocked);
  if (blocked?.status === "True")
    return { kind: "reconciling", reason: blocked.reason, message: `rotation waits: ${blocked.message}` };

  // 6. waiting for a KeyProtector, a server, a primary or a restore source to exist or be ready
  if (readyFalse && WAITING_REASONS.has(readyFalse.reason))
    return { kind: "reconciling", reason: readyFalse.reason, message: `waiting: ${readyFalse.message}` };

  // 7. work under way
  if (input.state === "Revalidating")
    return {
      kind: "reconciling",
      reason: HealthReason.Revalidating,
      message: readyFalse?.message || "unwrapping the DEK with the current protector to check its KCV (R11)",
    };
  if (input.kind !== "KeyProtector" && (!input.state || input.state === "Provisioning"))
    return {
      kind: "reconciling",
      reason: HealthReason.Provisioning,
      message: readyFalse ? describe(readyFalse) : "creating the DEK and its envelope",
    };

  // 8. key lost within the grace period (R10): Ready is False and the state unchanged. Reported as
  //    in progress with the deadline in the message, never Stalled: it ends by itself, at the
  //    deadline at the latest (Current again, or Inaccessible and Stalled).
  const access = findCondition(list, ConditionType.KeyAccessible);
  if (access?.status === "False")
    return {
      kind: "reconciling",
      reason: access.reason,
      message: `key access lost, the grace period runs: ${access.message}`,
    };

  // 9. anything else not Ready (a write the operator could not make, a rotation under way, …)
  if (ready?.status !== "True")
    return {
      kind: "reconciling",
      reason: ready?.reason ?? Reason.Progressing,
      message: ready ? describe(ready) : "the operator has not decided Ready yet",
    };
  return { kind: "settled" };
}

/**
 * The Reconciling and Stalled conditions for this pass (R27). Set both with `setCondition` and
 * the generation, beside Ready, in the same status write.
 */
export function healthConditions(input: HealthInput): HealthConditions {
  const v = verdict(input);
  const reconciling: ConditionInput =
    v.kind === "reconciling"
      ? { type: HealthConditionType.Reconciling, status: "True", reason: v.reason, message: v.message }
      : {
          type: HealthConditionType.Reconciling,
          status: "False",
          reason: HealthReason.Reconciled,
          message:
            v.kind === "stalled" ? "nothing is retried until the spec or the key changes" : "up to date",
        };
  const stalled: ConditionInput =
    v.kind === "stalled"
      ? { type: HealthConditionType.Stalled, status: "True", reason: v.reason, message: v.message }
      : {
          type: HealthConditionType.Stalled,
          status: "False",
          reason: HealthReason.NotStalled,
          message: "the spec can be applied",
        };
  return { reconciling, stalled, observedGeneration: input.generation };
}
