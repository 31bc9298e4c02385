/**
 * Conditions in the standard Kubernetes shape (R27), set through one helper that keeps
 * `lastTransitionTime` unless the status flips and always records `observedGeneration`.
 * Pure: the clock is the `now` argument.
 */

export type ConditionStatus = "True" | "False" | "Unknown";

export interface Condition {
  /** CamelCase condition type, one of ConditionType. */
  type: string;
  status: ConditionStatus;
  /** CamelCase reason, one of Reason. */
  reason: string;
  /** What happened and what to do, for a person. */
  message: string;
  /** RFC 3339 time of the last change of `status`. */
  lastTransitionTime: string;
  /** The metadata.generation this condition was computed from. */
  observedGeneration?: number;
}

/** What a controller decides: a condition without its bookkeeping. */
export interface ConditionInput {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
}

/** Condition types of the three kinds. */
export const ConditionType = {
  /** Every kind: the summary kstatus, Flux and Argo CD read. */
  Ready: "Ready",
  /** KeyProtector: the last probe of the key succeeded. */
  Accessible: "Accessible",
  /** KeyProtector: every requirement of R5 holds; the reason names the first unmet one. */
  RequirementsMet: "RequirementsMet",
  /** EncryptedServer and EncryptedDatabase: the effective protector can unwrap the DEK. */
  KeyAccessible: "KeyAccessible",
  /** EncryptedServer: what enforcement (R10) currently holds on the workload. */
  Enforced: "Enforced",
  /**
   * EncryptedServer: which object enforcement acts on: spec.workloadRef, or the controller that
   * owns it (named, so spec.workloadRef can point at it), and whether it can be enforced.
   */
  EnforcementTarget: "EnforcementTarget",
  /** EncryptedServer and EncryptedDatabase: the last revalidation (R11) and its outcome. */
  Revalidated: "Revalidated",
  /** EncryptedDatabase: a secondary holds every thumbprint of its primary's key list (R20). */
  KeyListSynced: "KeyListSynced",
  /** EncryptedDatabase: the requested protector was accepted (False when R15 refuses it). */
  ProtectorChangeAccepted: "ProtectorChangeAccepted",
  /** EncryptedDatabase: a rotation waits because an older key is still in use (R17, R21). */
  RotationBlocked: "RotationBlocked",
  /** EncryptedDatabase: replication references resolve and name this database back (R19, R31). */
  ReplicationLinked: "ReplicationLinked",
  /** EncryptedDatabase and EncryptedServer created as a copy: the source DEK was copied (R23, R24). */
  Restored: "Restored",
  /** R27: the spec cannot be applied and waiting will not help (set only while it holds). */
  Stalled: "Stalled",
  /** R33: a deletion waits because something still depends on the object (set only while it does). */
  DeletionBlocked: "DeletionBlocked",
  /** R33, KeyProtector: the deletion of its Local KEK Secret waits for what depends on it. */
  KeyDeletionBlocked: "KeyDeletionBlocked",
  /** R33, EncryptedServer and EncryptedDatabase: the deletion of its envelope Secret waits for it. */
  EnvelopeDeletionBlocked: "EnvelopeDeletionBlocked",
  /**
   * R7, KeyProtector of a Local service-managed key: True while service-managed DEKs are wrapped
   * by it with no second wrap under a key kept outside its namespace (deleting its Secret or
   * namespace would lose them). Only on the service-managed key's KeyProtector.
   */
  SinglePointOfLoss: "SinglePointOfLoss",
} as const;
export type ConditionTypeName = (typeof ConditionType)[keyof typeof ConditionType];

/** CamelCase reasons used on conditions and Events. */
export const Reason = {
  // generic
  Reconciled: "Reconciled",
  Provisioning: "Provisioning",
  Available: "Available",
  Deleting: "Deleting",
  Progressing: "Progressing",
  InternalError: "InternalError",
  // references (R31)
  KeyProtectorNotFound: "KeyProtectorNotFound",
  KeyProtectorNotReady: "KeyProtectorNotReady",
  ServerNotFound: "ServerNotFound",
  ServerNotReady: "ServerNotReady",
  // key access (R10)
  KeyAccessible: "KeyAccessible",
  KeyDisabled: "KeyDisabled",
  KeyExpired: "KeyExpired",
  KeyNotFound: "KeyNotFound",
  /** R7: a Local KeyProtector with create: Never waits for the Secret carrying its key */
  KeySecretNotFound: "KeySecretNotFound",
  /** R16: a new version of a KeyProtector's key; its DEKs move to it online (an Event, told once) */
  KeyRotated: "KeyRotated",
  PermissionDenied: "PermissionDenied",
  VaultUnreachable: "VaultUnreachable",
  AuthenticationFailed: "AuthenticationFailed",
  Throttled: "Throttled",
  // requirements (R5)
  RequirementsMet: "RequirementsMet",
  KeyTypeNotAllowed: "KeyTypeNotAllowed",
  KeySizeNotAllowed: "KeySizeNotAllowed",
  KeyNotYetActive: "KeyNotYetActive",
  ExpiryNotAllowed: "ExpiryNotAllowed",
  KeyNotRecoverable: "KeyNotRecoverable",
  MissingPermissions: "MissingPermissions",
  // grace period, enforcement and revalidation (R10, R11)
  GracePeriodRunning: "GracePeriodRunning",
  GracePeriodExpired: "GracePeriodExpired",
  ScaledToZero: "ScaledToZero",
  NetworkIsolated: "NetworkIsolated",
  EnforcementDisabled: "EnforcementDisabled",
  NotEnforced: "NotEnforced",
  WorkloadNotFound: "WorkloadNotFound",
  // what enforcement acts on (R10): the workload, its controlling owner, and what they serve
  WorkloadResolved: "WorkloadResolved",
  OwnerTargeted: "OwnerTargeted",
  KindNotServed: "KindNotServed",
  WorkloadNotReadable: "WorkloadNotReadable",
  OwnerNotReadable: "OwnerNotReadable",
  ScaleNotServed: "ScaleNotServed",
  ScaleRefused: "ScaleRefused",
  SelectorUnknown: "SelectorUnknown",
  Patched: "Patched",
  PatchRefused: "PatchRefused",
  EnforcementForbidden: "EnforcementForbidden",
  WaitingForRevalidation: "WaitingForRevalidation",
  Revalidated: "Revalidated",
  RevalidationFailed: "RevalidationFailed",
  KeyCheckValueMismatch: "KeyCheckValueMismatch",
  // an envelope Secret that is not the resource's own (R31): a copy of another's, or altered
  ForeignEnvelope: "ForeignEnvelope",
  // protector choice and rotation (R13-R17, R21)
  ProtectorAccepted: "ProtectorAccepted",
  ServiceManagedKeyNotAllowed: "ServiceManagedKeyNotAllowed",
  RevertToServerKeyNotAllowed: "RevertToServerKeyNotAllowed",
  Rotating: "Rotating",
  RotationComplete: "RotationComplete",
  KeyRotationAttemptedWhileOldThumbprintInUse: "KeyRotationAttemptedWhileOldThumbprintInUse",
  SecondaryCannotUseKey: "SecondaryCannotUseKey",
  // replication (R19-R22, R31)
  ReplicationLinked: "ReplicationLinked",
  PrimaryNotFound: "PrimaryNotFound",
  PrimaryIsNotPrimary: "PrimaryIsNotPrimary",
  NotListedByPrimary: "NotListedByPrimary",
  TooManySecondaries: "TooManySecondaries",
  SecondaryNeedsDatabaseProtector: "SecondaryNeedsDatabaseProtector",
  KeyListSynced: "KeyListSynced",
  MissingThumbprints: "MissingThumbprints",
  // replication across clusters (R19-R22 with a cluster reference)
  RemoteClusterUnreachable: "RemoteClusterUnreachable",
  ClusterNameNotSet: "ClusterNameNotSet",
  SecondaryPromoted: "SecondaryPromoted",
  // copies and restore (R23, R24)
  SourceNotFound: "SourceNotFound",
  NotAllowedBySource: "NotAllowedBySource",
  MissingRestoreKeys: "MissingRestoreKeys",
  Restored: "Restored",
  // a recorded DEK's envelope Secret (R1, R2, R4): never replaced by a new DEK
  EnvelopeMissing: "EnvelopeMissing",
  EnvelopeUnreadable: "EnvelopeUnreadable",
  EnvelopeDEKMismatch: "EnvelopeDEKMismatch",
  // a write the API server refused (R32)
  WriteRefused: "WriteRefused",
  // the Local service-managed key as a single point of loss (R7)
  OnlyWrappedByLocalKey: "OnlyWrappedByLocalKey",
  WrappedElsewhereToo: "WrappedElsewhereToo",
  NoServiceManagedDEKs: "NoServiceManagedDEKs",
  SinglePointOfLossResolved: "SinglePointOfLossResolved",
  // deletion protection (R33)
  InUse: "InUse",
  KeyNotProbed: "KeyNotProbed",
} as const;
export type ReasonName = (typeof Reason)[keyof typeof Reason];

/** The condition of that type, if any. */
export function findCondition(
  conditions: readonly Condition[] | undefined,
  type: string,
): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}

/** True only when the condition exists with status "True". */
export function isTrue(conditions: readonly Condition[] | undefined, type: string): boolean {
  return findCondition(conditions, type)?.status === "True";
}

/** True only when the condition exists with status "False". */
export function isFalse(conditions: readonly Condition[] | undefined, type: string): boolean {
  return findCondition(conditions, type)?.status === "False";
}

/**
 * A condition's time in whole seconds, as Kubernetes writes its own (metav1.Time): the conditions
 * of the many resources a pass of one second changes are then equal, and a cache shares them.
 */
export function transitionTime(now: Date): string {
  return `${now.toISOString().slice(0, 19)}Z`;
}

/**
 * Returns a new array with the condition set. `lastTransitionTime` is kept unless the status
 * changes (or the condition is new); `observedGeneration` is always the one given. Other
 * conditions and the order are kept; a new type is appended.
 */
export function setCondition(
  conditions: readonly Condition[] | undefined,
  input: ConditionInput,
  observedGeneration: number | undefined,
  now: Date,
): Condition[] {
  const list = conditions ?? [];
  const existing = list.find((c) => c.type === input.type);
  const next: Condition = {
    type: input.type,
    status: input.status,
    reason: input.reason,
    message: input.message,
    lastTransitionTime:
      existing && existing.status === input.status ? existing.lastTransitionTime : transitionTime(now),
  };
  if (observedGeneration !== undefined) next.observedGeneration = observedGeneration;
  if (!existing) return [...list.map((c) => ({ ...c })), next];
  return list.map((c) => (c.type === input.type ? next : { ...c }));
}

/** Returns a new array without the condition of that type. */
export function removeCondition(conditions: readonly Condition[] | undefined, type: string): Condition[] {
  return (conditions ?? []).filter((c) => c.type !== type).map((c) => ({ ...c }));
}

/**
 * Whether two condition lists say the same thing, ignoring order; lets a controller skip a
 * status write that would change nothing.
 */
export function conditionsEqual(
  a: readonly Condition[] | undefined,
  b: readonly Condition[] | undefined,
): boolean {
  const left = a ?? [];
  const right = b ?? [];
  if (left.length !== right.length) return false;
  return left.every((x) => {
    const y = right.find((c) => c.type === x.type);
    return (
      y !== undefined &&
      y.status === x.status &&
      y.reason === x.reason &&
      y.message === x.message &&
      y.lastTransitionTime === x.lastTransitionTime &&
      y.observedGeneration === x.observedGeneration
    );
  });
}
