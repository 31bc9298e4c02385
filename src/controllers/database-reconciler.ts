import {
  ConditionType,
  type EncryptedDatabase,
  type EncryptedDatabaseStatus,
  type EncryptedServer,
  findCondition,
  type KeyListEntry,
  Reason,
} from "../api/index.js";
import { protectorWrap } from "../crypto/index.js";
import type { Result } from "../runtime/index.js";
import { probeRecheckMs } from "./access-state.js";
import type { ControllerContext } from "./context.js";
import { decideDatabaseAccess } from "./database-access.js";
import { effectiveChoice, protectorChangeCondition, recordedProtector } from "./database-protector.js";
import { planProvisioning, provision } from "./database-provisioning.js";
import { holdsWrap, planRotation, rotate } from "./database-rotation.js";
import { type DatabaseTarget, databaseTarget } from "./database-target.js";
import type { EnvelopeSecret } from "./dek-operations.js";
import { cachedEnvelope } from "./envelope-cache.js";
import type { KekResolution } from "./kek-resolution.js";
import { keyListSynced, syncExtraKeys } from "./key-list-sync.js";
import { type Begun, OwnerReconciler, ownerKind, type PassFrame, watchKey } from "./owner-pass.js";
import { finalizeOwner } from "./pass.js";
import { chooseProtector, type ProtectorChoice } from "./protector-choice.js";
import { observeReplication, type ReplicationView } from "./remote-link-step.js";
import { remoteSecondariesStatus } from "./remote-replication.js";
import { soonest } from "./requeue.js";
import { EncryptedDatabaseKind, envelopeSecretName, type Kube } from "./resources.js";
import { pruneRetainedWraps } from "./retained-wrap-pruning.js";
import type { ReadyBlock } from "./rewrap.js";
import { secondariesOf } from "./rotation-blocker.js";

type Database = Kube<EncryptedDatabase>;
type Frame = PassFrame<EncryptedDatabaseStatus, Database>;
type Resolved = Extract<KekResolution, { ok: true }>;
/** The envelope under (or on its way to) its target key, and what holds Ready back. */
type Converged = { envelope: EnvelopeSecret; target: DatabaseTarget; block?: ReadyBlock };

/**
 * R4, R6, R13-R18, R25: an EncryptedDatabase's own DEK, its effective protector (the database's
 * or the server's), online re-wraps when that changes, extra keys kept for restore and
 * replication, the key history, and the key-access state shared with its server. Each pass
 * observes the caches, and step by step plans purely (database-target, -provisioning, -rotation,
 * -protector, -access) and acts on the plan; the status is written once, at the end.
 */
export class DatabaseReconciler extends OwnerReconciler<EncryptedDatabaseStatus, Database> {
  constructor(ctx: ControllerContext) {
    super(ctx, ownerKind(ctx, "EncryptedDatabase"));
  }

  protected async pass(begun: Begun<EncryptedDatabaseStatus, Database>): Promise<Result | undefined> {
    const { ctx } = this;
    const { frame } = begun;
    const { obj: db, draft } = frame;
    const server = ctx.servers.store.get(frame.namespace, db.spec.serverRef.name);
    if (!server)
      return frame.waitProvisioning({
        reason: Reason.ServerNotFound,
        message: `waiting for EncryptedServer ${db.spec.serverRef.name} in namespace ${frame.namespace} (spec.serverRef resolves in the database's own namespace only)`,
      });
    // R13-R15: which protector, and whether a requested change is refused
    const recorded = effectiveChoice(draft.prev.effectiveProtector);
    const choice = this.protectorChoice(frame, server, recorded);
    const protecting = begun.envelope ? protectorWrap(begun.envelope.envelope) : undefined;
    const watched = await watchKey(frame, choice, recorded, protecting);
    if ("result" in watched) return watched.result;
    // R19, R31: a secondary must be linked to a primary that names it back (in this cluster or another)
    const link = await observeReplication(frame, protecting);
    for (const c of [link.condition, link.keyListSynced])
      if (c) draft.set(c.type, c.status, c.reason, c.message);
    if (link.remoteSecondaries.length > 0)
      draft.next.remoteSecondaries = remoteSecondariesStatus(link.remoteSecondaries);
    else delete draft.next.remoteSecondaries;
    const adopted = await frame.adopt(begun.envelope);
    if ("result" in adopted) return adopted.result;
    const converged = await this.converge(frame, server, {
      choice,
      recorded,
      watched: watched.resolved,
      watchingRecorded: Boolean(watched.block),
      envelope: adopted.envelope,
      primary: link.following,
      held: link.block ?? watched.block,
      link,
    });
    if ("result" in converged) return converged.result;
    const kept = await this.keepKeys(frame, converged, recorded, link);
    if ("result" in kept) return kept.result;
    const access = await decideDatabaseAccess(frame, {
      server,
      resolved: watched.resolved,
      envelope: kept.envelope,
      envelopeReturned: begun.envelopeReturned,
      block: kept.block,
    });
    const recheck = probeRecheckMs(watched.resolved.access, ctx.probes?.intervalMs);
    return frame.finish(soonest(access.requeueAfterMs, kept.requeueAfterMs, recheck, link.requeueAfterMs));
  }

  /** R13-R15: the protector the database is to use; a refused change is said on a condition and, once, in a Warning. */
  private protectorChoice(
    frame: Frame,
    server: Kube<EncryptedServer>,
    recorded: ProtectorChoice | undefined,
  ): ProtectorChoice {
    const decision = chooseProtector(server.spec.protector, frame.obj.spec.encryptionProtector, recorded);
    const c = protectorChangeCondition(decision);
    frame.draft.set(c.type, c.status, c.reason, c.message);
    const before = findCondition(frame.draft.prev.conditions, ConditionType.ProtectorChangeAccepted);
    if (decision.refusal && before?.reason !== decision.refusal.reason)
      void this.ctx.events.warning(frame.obj, decision.refusal.reason, decision.refusal.message);
    return decision.choice;
  }

  /**
   * R1, R16-R21, R24: the DEK under its target key: provisioned when there is none yet (created,
   * or copied from a restore source or the primary), else rotated to the target when it changed.
   * Plans first (pure, over the caches), then acts on the plan.
   */
  private async converge(
    frame: Frame,
    server: Kube<EncryptedServer>,
    o: {
      choice: ProtectorChoice;
      recorded: ProtectorChoice | undefined;
      watched: Resolved;
      watchingRecorded: boolean;
      envelope: EnvelopeSecret | undefined;
      primary: Database | undefined;
      held: ReadyBlock | undefined;
      link: ReplicationView;
    },
  ): Promise<Converged | { result: Result | undefined }> {
    const ctx = this.ctx;
    const { obj: db } = frame;
    const target = databaseTarget({
      db,
      server,
      watched: o.watched.kek,
      watchingRecorded: o.watchingRecorded,
      choice: o.choice,
      recorded: o.recorded,
      envelope: o.envelope?.envelope,
      primary: o.primary,
      keyProtectors: ctx.keyProtectors.store,
      smk: ctx.smk,
    });
    const envelopeOf = (namespace: string, name: string) => cachedEnvelope(ctx, namespace, name);
    const stores = { databases: ctx.databases.store, now: frame.now };
    if (!o.envelope) {
      const plan = planProvisioning({
        ...stores,
        db,
        block: o.held,
        resolved: o.watched,
        primary: o.primary,
        envelopes: ctx.envelopes.store,
        keyProtectors: ctx.keyProtectors.store,
        // R20: a primary in another cluster lends its envelope as read there, localized
        envelopeOf: o.link.primaryCluster ? () => o.link.primaryEnvelope : envelopeOf,
        primaryCluster: o.link.primaryCluster,
        probeIntervalMs: ctx.probes?.intervalMs,
      });
      // a wait on another cluster looks again by itself: no event here tells of a change there
      if (plan.kind === "wait") plan.afterMs = soonest(plan.afterMs, o.link.requeueAfterMs);
      const made = await provision(frame, plan, target.kek);
      return "result" in made ? made : { ...made, target, ...(o.held ? { block: o.held } : {}) };
    }
    const plan = planRotation({
      ...stores,
      db,
      envelope: o.envelope.envelope,
      target: target.kek,
      resolved: o.watched,
      hasWrap: holdsWrap((d) =>
        envelopeOf(nsOf(d), envelopeSecretName("EncryptedDatabase", d.metadata.name ?? "")),
      ),
      remote: o.link.remoteSecondaries,
    });
    const rotated = await rotate(frame, plan, o.envelope, target.kek);
    if ("result" in rotated) return rotated;
    const block = rotated.block ?? o.held;
    return { envelope: rotated.envelope, target, ...(block ? { block } : {}) };
  }

  /**
   * R16-R18, R20, R21: the keys the envelope keeps beside its protector (spec.keys, and for a
   * secondary its primary's keys), what the status records of them (the effective protector, the
   * key history, the key-list sync), and the retained wraps pruned once nothing needs them.
   */
  private async keepKeys(
    frame: Frame,
    converged: Converged,
    recorded: ProtectorChoice | undefined,
    link: ReplicationView,
  ): Promise<
    { envelope: EnvelopeSecret; block?: ReadyBlock; requeueAfterMs?: number } | { result: Result | undefined }
  > {
    const ctx = this.ctx;
    const { obj: db, draft } = frame;
    const { next } = draft;
    const { primary } = link;
    const synced = await syncExtraKeys(
      ctx,
      db,
      converged.envelope,
      { candidates: frame.candidates(), check: frame.check },
      primary,
    );
    const problem = synced.problems[0];
    const block =
      converged.block ??
      (problem ? { reason: Reason.KeyProtectorNotReady, message: `spec.keys: ${problem}` } : undefined);
    if (synced.foreign) return { result: await frame.refuse(synced.foreign) };
    if (primary && synced.missing) {
      if (synced.missing.length > 0) next.missingThumbprints = synced.missing;
      else delete next.missingThumbprints;
      const c = keyListSynced(
        frame.namespace,
        `${link.primaryCluster ? `${link.primaryCluster}/` : ""}${nsOf(primary)}/${primary.metadata.name}`,
        synced.missing,
        synced.causes,
      );
      draft.set(ConditionType.KeyListSynced, c.status, c.reason, c.message);
    }
    next.envelopeSecretName = frame.secretName;
    next.dekID = synced.envelope.envelope.dekID;
    const wrap = protectorWrap(synced.envelope.envelope);
    if (wrap) {
      const { target } = converged;
      const r = recordedProtector({
        wrap,
        target: { thumbprint: target.kek.thumbprint, choice: target.choice },
        recorded,
        extra: synced.extra,
        keyList: draft.prev.keyList as KeyListEntry[] | undefined,
        // R18, R21: a key's entry starts once its wrap is written, not at the pass's start (the
        // observe and a rotation's remote reads come between: a secondary's wrap read then would
        // seem newer than the switch it allowed)
        now: ctx.now(),
      });
      next.effectiveProtector = r.effectiveProtector;
      next.keyList = r.keyList;
    }
    // R16, R17: retained wraps go once no secondary or pending step needs them and their window passed
    const pruning = await pruneRetainedWraps(
      ctx,
      db,
      synced.envelope,
      (next.keyList ?? []) as KeyListEntry[],
      [
        ...secondariesOf(db, ctx.databases.store).map((s) => s.status?.effectiveProtector?.thumbprint),
        ...link.remoteSecondaries.map((s) => s.db?.status?.effectiveProtector?.thumbprint),
        next.rotation?.fromThumbprint,
        next.rotation?.toThumbprint,
      ],
    );
    return {
      envelope: pruning.envelope,
      ...(block ? { block } : {}),
      ...(pruning.requeueAfterMs !== undefined ? { requeueAfterMs: pruning.requeueAfterMs } : {}),
    };
  }

  /** R25: Retain keeps the envelope so a dropped database can be restored; Shred deletes every wrap. */
  protected finalize(db: Database): Promise<Result | undefined> {
    return finalizeOwner(this.ctx, EncryptedDatabaseKind, this.ctx.databases, db, {
      envelope: envelopeSecretName("EncryptedDatabase", db.metadata.name ?? ""),
      deletionPolicy: db.spec.deletionPolicy,
      noun: "database",
    });
  }
}

const nsOf = (d: Database) => d.metadata.namespace ?? "";
