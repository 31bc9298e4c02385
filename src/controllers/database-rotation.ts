import {
  type Condition,
  type ConditionInput,
  ConditionType,
  type EncryptedDatabase,
  type EncryptedDatabaseStatus,
  findCondition,
  Reason,
} from "../api/index.js";
import { type Envelope, findWrapByThumbprint, protectorWrap } from "../crypto/index.js";
import type { Result, Store } from "../runtime/index.js";
import type { EnvelopeSecret, Kek } from "./dek-operations.js";
import type { KekResolution } from "./kek-resolution.js";
import type { PassFrame } from "./owner-pass.js";
import { rewrapProtector } from "./protector-rewrap.js";
import { type RemoteSecondary, remoteSecondariesMissingKey } from "./remote-replication.js";
import { secondariesMissingKey } from "./replication.js";
import type { Kube } from "./resources.js";
import { cannotTakeDEK, type ReadyBlock } from "./rewrap.js";
import { rotationBlocker } from "./rotation-blocker.js";

type Database = Kube<EncryptedDatabase>;
type Rotation = NonNullable<EncryptedDatabaseStatus["rotation"]>;
type Resolved = Extract<KekResolution, { ok: true }>;

/** R16, R17, R21: what a database whose DEK is not under its target key does about it. */
export type RotationPlan =
  | { kind: "none" }
  | { kind: "blocked"; block: ReadyBlock }
  | { kind: "notReady"; block: ReadyBlock }
  | { kind: "waitForSecondaries"; rotation: Rotation; block: ReadyBlock }
  | { kind: "rewrap" };

/**
 * R16, R17, R21, in this order: nothing when the DEK is under the target key; else the rotation
 * waits while the protector before the current one is still a secondary's (R17); while the new
 * key cannot take the DEK; for a primary, until every linked secondary holds a proven wrap under
 * the new key (R21: recorded as the pending rotation, nothing switched); and then re-wraps.
 * Pure: `hasWrap` reads a secondary's envelope from the cache.
 */
export function planRotation(o: {
  db: Database;
  envelope: Envelope;
  target: Kek;
  resolved: Pick<Resolved, "ready" | "access" | "notReadyMessage">;
  databases: Store<Database>;
  hasWrap: (secondary: Database, thumbprint: string) => boolean;
  now: Date;
  /** a primary's secondaries in other clusters, as read (R21 across clusters) */
  remote?: readonly RemoteSecondary[];
}): RotationPlan {
  const { db, target } = o;
  const from = protectorWrap(o.envelope)?.thumbprint;
  if (from === target.thumbprint) return { kind: "none" };
  const remote = o.remote ?? [];
  const remoteProtectors = remote
    .filter((s) => s.state === "linked")
    .map((s) => ({ name: s.name, protector: s.db?.status?.effectiveProtector?.thumbprint }));
  const blocker = rotationBlocker(db, o.databases, target.thumbprint, remoteProtectors);
  if (blocker)
    return {
      kind: "blocked",
      block: { reason: Reason.KeyRotationAttemptedWhileOldThumbprintInUse, message: blocker },
    };
  if (!o.resolved.ready || !o.resolved.access.accessible)
    return { kind: "notReady", block: cannotTakeDEK(o.resolved) };
  const missing =
    db.spec.replication?.role === "Primary"
      ? [
          ...secondariesMissingKey(db, o.databases, target.thumbprint, (s) =>
            o.hasWrap(s, target.thumbprint),
          ),
          ...remoteSecondariesMissingKey(remote, target.thumbprint),
        ]
      : [];
  if (missing.length === 0) return { kind: "rewrap" };
  const pending = db.status?.rotation;
  const rotation: Rotation = {
    phase: "AddingToSecondaries",
    ...(from ? { fromThumbprint: from } : {}),
    toKeyID: target.keyID,
    toThumbprint: target.thumbprint,
    ...(target.keyProtectorName ? { toKeyProtectorName: target.keyProtectorName } : {}),
    startedAt: pending?.toThumbprint === target.thumbprint ? pending.startedAt : o.now.toISOString(),
  };
  const message = `the protector change to ${target.thumbprint.slice(0, 12)} waits for its secondaries: ${missing.map((m) => `${m.name} (${m.why})`).join("; ")}; nothing has switched`;
  // only unreachable clusters in the way: the link is at fault, not a secondary's keys
  const unreachable = missing.every((m) =>
    remote.some((s) => s.name === m.name && s.state === "unreachable"),
  );
  const reason = unreachable ? Reason.RemoteClusterUnreachable : Reason.SecondaryCannotUseKey;
  return { kind: "waitForSecondaries", rotation, block: { reason, message } };
}

/**
 * R17, R21: RotationBlocked says True while a rotation waits (for a secondary to leave the old
 * key, or to take the new one), and goes back to False once nothing waits. Undefined: leave it.
 */
export function rotationBlockedCondition(
  plan: RotationPlan,
  conditions: readonly Condition[] | undefined,
): ConditionInput | undefined {
  if (plan.kind === "blocked" || plan.kind === "waitForSecondaries")
    return { type: ConditionType.RotationBlocked, status: "True", ...plan.block };
  if (findCondition(conditions, ConditionType.RotationBlocked)?.status !== "True") return undefined;
  return {
    type: ConditionType.RotationBlocked,
    status: "False",
    reason: Reason.RotationComplete,
    message: "no rotation is waiting",
  };
}

/** Carries out a rotation plan: the envelope to go on with and what holds Ready back, or the pass's result. */
export async function rotate(
  frame: PassFrame<EncryptedDatabaseStatus, Database>,
  plan: RotationPlan,
  envelope: EnvelopeSecret,
  target: Kek,
): Promise<{ envelope: EnvelopeSecret; block?: ReadyBlock } | { result: Result | undefined }> {
  const { draft } = frame;
  // a pending rotation is recorded while it waits for secondaries and kept until the DEK switched
  if (plan.kind === "waitForSecondaries") draft.next.rotation = plan.rotation;
  if (plan.kind === "none") delete draft.next.rotation;
  let out: { envelope: EnvelopeSecret; block?: ReadyBlock };
  if (plan.kind === "rewrap") {
    const rewrapped = await rewrapProtector(frame, envelope, target);
    if ("result" in rewrapped) return rewrapped;
    if (!rewrapped.block) delete draft.next.rotation;
    out = rewrapped;
  } else out = plan.kind === "none" ? { envelope } : { envelope, block: plan.block };
  const blocked = rotationBlockedCondition(plan, draft.conditions);
  if (blocked) draft.set(blocked.type, blocked.status, blocked.reason, blocked.message);
  return out;
}

/** Whether a database's cached envelope holds a wrap under this key. */
export function holdsWrap(envelopeOf: (d: Database) => EnvelopeSecret | undefined) {
  return (d: Database, thumbprint: string): boolean => {
    const e = envelopeOf(d);
    return e !== undefined && findWrapByThumbprint(e.envelope, thumbprint) !== undefined;
  };
}
