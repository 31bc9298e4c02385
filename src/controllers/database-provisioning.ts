import {
  ConditionType,
  type EncryptedDatabase,
  type EncryptedDatabaseStatus,
  type KeyProtector,
  Reason,
} from "../api/index.js";
import { isOwnerBindingError, sameOwner } from "../crypto/index.js";
import type { KubeObject, Result, Store } from "../runtime/index.js";
import { probeRecheckMs } from "./access-state.js";
import type { EnvelopeSecret, Kek, OwnerCheck } from "./dek-operations.js";
import type { KekResolution } from "./kek-resolution.js";
import { ownerOf } from "./owner-binding.js";
import type { PassFrame } from "./owner-pass.js";
import { envelopeSecretName, type Kube } from "./resources.js";
import { planRestore, type RestorePlan } from "./restore.js";
import type { ReadyBlock } from "./rewrap.js";

type Database = Kube<EncryptedDatabase>;
type Frame = PassFrame<EncryptedDatabaseStatus, Database>;
type Resolved = Extract<KekResolution, { ok: true }>;

/** R1, R19, R24: how a database without a DEK gets one, or what it waits for. */
export type Provisioning =
  | { kind: "wait"; block: ReadyBlock; restore?: { missing?: string[] }; afterMs?: number }
  | { kind: "restore"; plan: Extract<RestorePlan, { ok: true }> }
  | { kind: "replica"; primary: Database; source: EnvelopeSecret; cluster?: string }
  | { kind: "create" };

/**
 * R1, R19, R24, R31: a database with no envelope yet. It waits while something holds it back (a
 * key it watches that does not resolve, a secondary not linked) or while its key cannot take a
 * DEK; then a restore copies its source's DEK (once the whole restore plan holds), a linked
 * secondary copies its primary's (once the primary has one), and anything else creates its own.
 * Pure: it reads the caches only.
 */
export function planProvisioning(o: {
  db: Database;
  block: ReadyBlock | undefined;
  resolved: Resolved;
  primary: Database | undefined;
  databases: Store<Database>;
  envelopes: Store<KubeObject>;
  keyProtectors: Store<Kube<KeyProtector>>;
  envelopeOf: (namespace: string, name: string) => EnvelopeSecret | undefined;
  now: Date;
  /** R20: the primary's cluster when it is another one (its envelope comes localized, remote-envelope.ts) */
  primaryCluster?: string | undefined;
  /** R33: a key not probed lately is looked at again after this long (no event would bring it back) */
  probeIntervalMs?: number | undefined;
}): Provisioning {
  const { db, resolved, primary } = o;
  if (o.block) return { kind: "wait", block: o.block };
  if (!resolved.ready || !resolved.access.accessible) {
    const recheck = probeRecheckMs(resolved.access, o.probeIntervalMs);
    return {
      kind: "wait",
      ...(recheck !== undefined ? { afterMs: recheck } : {}),
      block: {
        reason: Reason.KeyProtectorNotReady,
        message:
          resolved.notReadyMessage ??
          `waiting for the protector's key to be accessible: ${resolved.access.detail ?? ""}`,
      },
    };
  }
  if (db.spec.restore) {
    const plan = planRestore(db, o.databases, o.envelopes, o.keyProtectors, o.now);
    if (!plan.ok)
      return {
        kind: "wait",
        block: { reason: plan.reason, message: plan.message },
        restore: plan.missing ? { missing: plan.missing } : {},
      };
    return { kind: "restore", plan };
  }
  if (primary) {
    const source = o.envelopeOf(
      nsOf(primary),
      envelopeSecretName("EncryptedDatabase", primary.metadata.name ?? ""),
    );
    if (!source)
      return {
        kind: "wait",
        block: {
          reason: Reason.Provisioning,
          message: `waiting for primary ${nsName(primary)} to have its DEK`,
        },
      };
    return { kind: "replica", primary, source, ...(o.primaryCluster ? { cluster: o.primaryCluster } : {}) };
  }
  return { kind: "create" };
}

/** Carries out a provisioning plan: the new envelope, or the pass's result (a wait or a refusal). */
export async function provision(
  frame: Frame,
  plan: Provisioning,
  target: Kek,
): Promise<{ envelope: EnvelopeSecret } | { result: Result | undefined }> {
  const { ctx, obj: db, draft } = frame;
  if (plan.kind === "wait") {
    if (plan.restore) {
      if (plan.restore.missing) draft.next.missingThumbprints = plan.restore.missing;
      draft.set(ConditionType.Restored, "False", plan.block.reason, plan.block.message);
    }
    return { result: await frame.waitProvisioning(plan.block, plan.afterMs) };
  }
  let made: { envelope: EnvelopeSecret } | { result: Result | undefined };
  if (plan.kind === "restore") {
    const { plan: r } = plan;
    made = await copyFrom(frame, r.source, r.sourceNamespace, target, {
      owner: r.sourceOwner,
      recordedDekID: r.sourceRecordedDekID,
    });
    if ("envelope" in made) restored(frame, r, made.envelope);
  } else if (plan.kind === "replica") {
    const { primary, cluster } = plan;
    // R20 across clusters: the localized envelope unwraps with this namespace's own keys
    made = await copyFrom(frame, plan.source, cluster ? frame.namespace : nsOf(primary), target, {
      owner: ownerOf("EncryptedDatabase", primary),
      recordedDekID: primary.status?.dekID,
    });
    if ("envelope" in made)
      void ctx.events.normal(
        db,
        "ReplicaDEKCopied",
        `the DEK of ${cluster ? `${cluster}/` : ""}${nsName(primary)} is wrapped here under ${target.keyID}`,
      );
  } else {
    made = await create(frame, target);
  }
  if ("envelope" in made) ctx.envelopes.writeThrough(made.envelope.secret);
  return made;
}

/** R1, R4: the database's own DEK, made once and wrapped by its target key. */
async function create(
  frame: Frame,
  target: Kek,
): Promise<{ envelope: EnvelopeSecret } | { result: Result | undefined }> {
  const { ctx, obj: db } = frame;
  try {
    const envelope = await ctx.dek.create(
      frame.namespace,
      frame.secretName,
      target,
      owned(db),
      adoptWith(frame),
    );
    void ctx.events.normal(
      db,
      "DEKCreated",
      `database DEK ${envelope.envelope.dekID} created and wrapped by ${target.keyID}`,
    );
    return { envelope };
  } catch (error) {
    return { result: await frame.refuse(error) };
  }
}

/**
 * R20, R24, R31: copies another database's DEK (a restore source, or the primary) into this
 * one's envelope, checked against that database's binding. A refusal names the Secret at fault:
 * this database's own when the copy was planted here, else the source's.
 */
async function copyFrom(
  frame: Frame,
  source: EnvelopeSecret,
  sourceNamespace: string,
  target: Kek,
  sourceCheck: OwnerCheck,
): Promise<{ envelope: EnvelopeSecret } | { result: Result | undefined }> {
  const { ctx, obj: db } = frame;
  try {
    const envelope = await ctx.dek.copy(
      source,
      frame.candidates(sourceNamespace),
      sourceCheck,
      frame.namespace,
      frame.secretName,
      target,
      owned(db),
      adoptWith(frame),
    );
    return { envelope };
  } catch (error) {
    const planted = isOwnerBindingError(error) && sameOwner(error.expected, frame.check.owner);
    const secret = { namespace: sourceNamespace, name: source.secret.metadata?.name ?? "" };
    return {
      result: await frame.refuse(
        error,
        planted ? {} : { secret, ...(db.spec.restore ? { alsoOn: ConditionType.Restored } : {}) },
      ),
    };
  }
}

/** R24: a restore's copy is recorded on Restored and in an Event; the copy starts Inaccessible (R23). */
function restored(frame: Frame, plan: Extract<RestorePlan, { ok: true }>, envelope: EnvelopeSecret): void {
  const { draft, obj: db } = frame;
  const from = `${plan.sourceNamespace}/${db.spec.restore?.sourceRef.name}`;
  delete draft.next.missingThumbprints;
  draft.set(
    ConditionType.Restored,
    "True",
    Reason.Restored,
    `DEK ${envelope.envelope.dekID} copied from ${from}; keys cover ${plan.needed.length} thumbprint(s)`,
  );
  void frame.ctx.events.normal(
    db,
    "Restored",
    `DEK copied from ${from}; the copy starts Inaccessible until revalidated`,
  );
}

const owned = (db: Database) => ({ kind: "EncryptedDatabase", name: db.metadata.name ?? "" });

const adoptWith = (frame: Frame) => ({
  candidates: frame.candidates(),
  recordedDekID: frame.draft.prev.dekID,
});

const nsOf = (d: Database) => d.metadata.namespace ?? "";

const nsName = (d: Database) => `${nsOf(d)}/${d.metadata.name}`;
