import {
  ConditionType,
  type EncryptedDatabase,
  type EncryptedDatabaseStatus,
  type EncryptedServer,
  findCondition,
  type KeyListEntry,
  Reason,
  shortThumbprint,
} from "../api/index.js";
import {
  findWrapByThumbprint,
  isOwnerBindingError,
  protectorWrap,
  sameOwner,
  zeroize,
} from "../crypto/index.js";
import { isKeyAccessError } from "../kms/provider.js";
import type { ObjectKey, Reconciler, Result } from "../runtime/index.js";
import { decideAccess, type State } from "../watchdog/access-decision.js";
import { accessInput, answeredToken, probeRecheckMs, readyCondition } from "./access-state.js";
import type { ControllerContext } from "./context.js";
import { copyStart, databaseCopy, inaccessibleMessage } from "./copy-start.js";
import type { EnvelopeSecret, Kek, OwnerCheck } from "./dek-operations.js";
import { keyIDBelongsTo } from "./dek-operations.js";
import { cachedEnvelope } from "./envelope-cache.js";
import { ENVELOPE_LOSS_RECHECK_MS, ownEnvelope, reportsEnvelopeLoss } from "./envelope-stall.js";
import { type KekResolution, resolveKek, unwrapCandidates } from "./kek-resolution.js";
import { type CurrentKey, reconcileKeyList } from "./key-history.js";
import { keyListSynced, syncExtraKeys } from "./key-list-sync.js";
import { keyToWatch, withFreshProbe } from "./key-to-watch.js";
import { envelopeRefusal, ownerOf } from "./owner-binding.js";
import {
  finalizeOwner,
  finishPass,
  openPass,
  reconcileReporting,
  revalidationFailed,
  StatusDraft,
} from "./pass.js";
import { chooseProtector, type ProtectorChoice } from "./protector-choice.js";
import { linkedSecondaries, linkSecondary, secondariesMissingKey } from "./replication.js";
import { soonest } from "./requeue.js";
import { EncryptedDatabaseKind, envelopeSecretName, type Kube } from "./resources.js";
import { planRestore } from "./restore.js";
import { pruneRetainedWraps } from "./retained-wrap-pruning.js";
import { rewrapFailed } from "./rewrap.js";
import { rotationBlocker, secondariesOf } from "./rotation-blocker.js";

type Database = Kube<EncryptedDatabase>;
type SetCondition = (
  type: string,
  status: "True" | "False" | "Unknown",
  reason: string,
  message: string,
) => void;

/**
 * R4, R6, R13-R18, R25: an EncryptedDatabase's own DEK, its effective protector (the database's
 * or the server's), online re-wraps when that changes, extra keys kept for restore and
 * replication, the key history, and the key-access state shared with its server.
 */
export class DatabaseReconciler implements Reconciler {
  constructor(private readonly ctx: ControllerContext) {}

  reconcile(key: ObjectKey): Promise<Result | undefined> {
    return reconcileReporting(this.ctx, EncryptedDatabaseKind, this.ctx.databases, key, () => this.pass(key));
  }

  private async pass(key: ObjectKey): Promise<Result | undefined> {
    const ctx = this.ctx;
    const opened = await openPass(ctx, EncryptedDatabaseKind, ctx.databases, key);
    if (!opened) return undefined;
    if (opened.deleting) return this.finalize(opened.obj);
    const db = opened.obj;
    const now = ctx.now();
    const draft = new StatusDraft<EncryptedDatabaseStatus>(db, now);
    const { prev, next, set } = draft;
    const finish = (requeueAfterMs?: number) =>
      finishPass(ctx, EncryptedDatabaseKind, ctx.databases, draft, requeueAfterMs);

    // R1, R2, R4: the envelope first; once a DEK id is recorded it is never replaced
    const secretName = envelopeSecretName("EncryptedDatabase", key.name);
    const own = await ownEnvelope(ctx, "EncryptedDatabase", db, secretName, prev, draft.conditions, set);
    if (own.lost) {
      next.state = own.state;
      if (own.state === "Inaccessible") next.inaccessibleSince ??= now.toISOString();
      return finish(ENVELOPE_LOSS_RECHECK_MS);
    }
    // an envelope given back (from a backup) is proven by a revalidation before the database is Available
    const envelopeReturned = own.returned;
    draft.conditions = own.conditions;

    const server = ctx.servers.store.get(key.namespace, db.spec.serverRef.name);
    if (!server) {
      next.state ??= "Provisioning";
      set(
        ConditionType.Ready,
        "False",
        Reason.ServerNotFound,
        `waiting for EncryptedServer ${db.spec.serverRef.name} in namespace ${key.namespace} (spec.serverRef resolves in the database's own namespace only)`,
      );
      return finish();
    }

    // R13-R15: which protector, and whether a requested change is refused.
    const current: ProtectorChoice | undefined = prev.effectiveProtector
      ? {
          source: prev.effectiveProtector.source,
          type: prev.effectiveProtector.type,
          ...(prev.effectiveProtector.keyProtectorName
            ? { keyProtectorName: prev.effectiveProtector.keyProtectorName }
            : {}),
        }
      : undefined;
    const decision = chooseProtector(server.spec.protector, db.spec.encryptionProtector, current);
    if (decision.refusal) {
      set(ConditionType.ProtectorChangeAccepted, "False", decision.refusal.reason, decision.refusal.message);
      if (
        findCondition(prev.conditions, ConditionType.ProtectorChangeAccepted)?.reason !==
        decision.refusal.reason
      ) {
        void ctx.events.warning(db, decision.refusal.reason, decision.refusal.message);
      }
    } else {
      set(
        ConditionType.ProtectorChangeAccepted,
        "True",
        Reason.ProtectorAccepted,
        `the ${decision.choice.source === "Database" ? "database's own" : "server's"} protector is in effect`,
      );
    }
    const choice = decision.choice;
    const chosen: KekResolution = resolveKek(ctx.keyProtectors.store, key.namespace, choice, ctx.smk);
    // R10, R33: once the DEK exists the watchdog keeps watching the key that protects it, even
    // when the KeyProtector asked for does not resolve
    const recorded = current
      ? resolveKek(ctx.keyProtectors.store, key.namespace, current, ctx.smk)
      : undefined;
    const protecting = own.envelope ? protectorWrap(own.envelope.envelope) : undefined;
    const watched = keyToWatch(chosen, recorded, protecting, prev.keyAccessLostSince);
    if (!watched) {
      next.state ??= "Provisioning";
      if (!chosen.ok) set(ConditionType.Ready, "False", chosen.reason, chosen.message);
      return finish();
    }
    const resolved = withFreshProbe(ctx, watched.resolved, now);
    const candidates = unwrapCandidates(ctx.keyProtectors.store, key.namespace, ctx.smk);
    let readyBlock: { reason: string; message: string } | undefined = watched.block;
    const role = db.spec.replication?.role;

    // R19, R31: a secondary must be linked to a primary that names it back.
    let primary: Database | undefined;
    if (role === "Secondary") {
      const link = linkSecondary(db, ctx.databases.store);
      if (link.ok) {
        primary = link.primary;
        set(
          ConditionType.ReplicationLinked,
          "True",
          Reason.ReplicationLinked,
          `secondary of ${nsName(link.primary)}`,
        );
      } else {
        set(ConditionType.ReplicationLinked, "False", link.reason, link.message);
        readyBlock = { reason: link.reason, message: link.message };
      }
    } else if (role === "Primary") {
      set(
        ConditionType.ReplicationLinked,
        "True",
        Reason.ReplicationLinked,
        `primary of ${linkedSecondaries(db, ctx.databases.store).length} secondaries`,
      );
    }

    // The key to wrap with: the effective protector, pinned to its version when autoRotation is
    // off (R6), or, for a secondary, its own key holding the primary's protector (R21).
    // R31: every use of the envelope is on this database's behalf, checked against its binding
    const check: OwnerCheck = { owner: ownerOf("EncryptedDatabase", db), recordedDekID: prev.dekID };
    const adoptWith = { candidates, recordedDekID: prev.dekID };
    /**
     * Refuses an envelope that is not its owner's (R31); when `adopting`, also waits for the key
     * that proves it is. Any other error is thrown as before.
     */
    const refuse = (
      error: unknown,
      secret: { namespace: string; name: string },
      own: boolean,
      adopting = false,
    ): Promise<Result | undefined> => {
      const refusal = envelopeRefusal(error, secret, { own, adopting, noun: "database" });
      if (!refusal) throw error;
      next.state ??= "Provisioning";
      if (refusal.foreign && !own && db!.spec.restore)
        set(ConditionType.Restored, "False", refusal.reason, refusal.message);
      set(ConditionType.Ready, "False", refusal.reason, refusal.message);
      if (refusal.foreign && findCondition(prev.conditions, ConditionType.Ready)?.message !== refusal.message)
        void ctx.events.warning(db!, refusal.reason, refusal.message);
      return finish(refusal.requeueAfterMs);
    };
    const ownSecret = { namespace: key.namespace, name: secretName };
    let envelope = own.envelope;
    if (envelope && envelope.envelope.dekID !== prev.dekID) {
      // an envelope the status does not record (a crash before the status write, or a planted Secret)
      try {
        envelope = await ctx.dek.adopt(envelope, candidates, check);
      } catch (error) {
        return refuse(error, ownSecret, true, true);
      }
    }
    let target: Kek = resolved.kek;
    // watching the key it last knew, the database keeps the protector its status records
    let targetChoice: ProtectorChoice = watched.block && current ? current : choice;
    if (envelope && !db.spec.autoRotation) {
      const wrap = protectorWrap(envelope.envelope);
      if (wrap && wrap.thumbprint !== target.thumbprint && keyIDBelongsTo(target.ref, wrap.keyID)) {
        target = { ...target, keyID: wrap.keyID, thumbprint: wrap.thumbprint };
      }
    }
    const primaryThumbprint = primary?.status?.effectiveProtector?.thumbprint;
    if (primary && primaryThumbprint && db.spec.autoRotation && primaryThumbprint !== target.thumbprint) {
      const follow = this.ownKeyHolding(db, server, primaryThumbprint);
      if (follow) {
        target = follow.kek;
        targetChoice = { source: follow.source, type: "CustomerManaged", keyProtectorName: follow.name };
      }
    }

    if (!envelope) {
      if (readyBlock) {
        next.state ??= "Provisioning";
        set(ConditionType.Ready, "False", readyBlock.reason, readyBlock.message);
        return finish();
      }
      if (!resolved.ready || !resolved.access.accessible) {
        next.state ??= "Provisioning";
        set(
          ConditionType.Ready,
          "False",
          Reason.KeyProtectorNotReady,
          resolved.notReadyMessage ??
            `waiting for the protector's key to be accessible: ${resolved.access.detail ?? ""}`,
        );
        // R33: a key not probed lately is looked at again by a timer (a probe that finds it as healthy as before is no event)
        return finish(probeRecheckMs(resolved.access, ctx.probes?.intervalMs));
      }
      const owner = { kind: "EncryptedDatabase", name: key.name };
      /**
       * Copies the DEK of another database's envelope (a restore source, R24, or the primary, R19)
       * into this one's, checked against that database's binding; a refusal names the Secret at
       * fault: this database's own when the copy was planted here, else the source's.
       */
      const copyFrom = async (
        source: EnvelopeSecret,
        sourceNamespace: string,
        sourceCheck: OwnerCheck,
      ): Promise<{ envelope: EnvelopeSecret } | { refused: Promise<Result | undefined> }> => {
        try {
          const copy = await ctx.dek.copy(
            source,
            unwrapCandidates(ctx.keyProtectors.store, sourceNamespace, ctx.smk),
            sourceCheck,
            key.namespace,
            secretName,
            target,
            owner,
            adoptWith,
          );
          return { envelope: copy };
        } catch (error) {
          const sourceSecret = { namespace: sourceNamespace, name: source.secret.metadata?.name ?? "" };
          return {
            refused:
              isOwnerBindingError(error) && sameOwner(error.expected, check.owner)
                ? refuse(error, ownSecret, true)
                : refuse(error, sourceSecret, false),
          };
        }
      };
      if (db.spec.restore) {
        const plan = planRestore(db, ctx.databases.store, ctx.envelopes.store, ctx.keyProtectors.store, now);
        if (!plan.ok) {
          next.state ??= "Provisioning";
          if (plan.missing) next.missingThumbprints = plan.missing;
          set(ConditionType.Restored, "False", plan.reason, plan.message);
          set(ConditionType.Ready, "False", plan.reason, plan.message);
          return finish();
        }
        const copied = await copyFrom(plan.source, plan.sourceNamespace, {
          owner: plan.sourceOwner,
          recordedDekID: plan.sourceRecordedDekID,
        });
        if ("refused" in copied) return copied.refused;
        envelope = copied.envelope;
        delete next.missingThumbprints;
        set(
          ConditionType.Restored,
          "True",
          Reason.Restored,
          `DEK ${envelope.envelope.dekID} copied from ${plan.sourceNamespace}/${db.spec.restore.sourceRef.name}; keys cover ${plan.needed.length} thumbprint(s)`,
        );
        void ctx.events.normal(
          db,
          "Restored",
          `DEK copied from ${plan.sourceNamespace}/${db.spec.restore.sourceRef.name}; the copy starts Inaccessible until revalidated`,
        );
      } else if (primary) {
        const primaryEnvelope = cachedEnvelope(
          this.ctx,
          nsOf(primary),
          envelopeSecretName("EncryptedDatabase", primary.metadata.name ?? ""),
        );
        if (!primaryEnvelope) {
          next.state ??= "Provisioning";
          set(
            ConditionType.Ready,
            "False",
            Reason.Provisioning,
            `waiting for primary ${nsName(primary)} to have its DEK`,
          );
          return finish();
        }
        const copied = await copyFrom(primaryEnvelope, nsOf(primary), {
          owner: ownerOf("EncryptedDatabase", primary),
          recordedDekID: primary.status?.dekID,
        });
        if ("refused" in copied) return copied.refused;
        envelope = copied.envelope;
        void ctx.events.normal(
          db,
          "ReplicaDEKCopied",
          `the DEK of ${nsName(primary)} is wrapped here under ${target.keyID}`,
        );
      } else {
        try {
          envelope = await ctx.dek.create(key.namespace, secretName, target, owner, adoptWith);
        } catch (error) {
          return refuse(error, ownSecret, true);
        }
        void ctx.events.normal(
          db,
          "DEKCreated",
          `database DEK ${envelope.envelope.dekID} created and wrapped by ${target.keyID}`,
        );
      }
      ctx.envelopes.writeThrough(envelope.secret);
    } else if (protectorWrap(envelope.envelope)?.thumbprint !== target.thumbprint) {
      const blocker = rotationBlocker(db, ctx.databases.store, target.thumbprint);
      const notOnSecondaries =
        role === "Primary"
          ? secondariesMissingKey(db, ctx.databases.store, target.thumbprint, (s) =>
              this.hasWrap(s, target.thumbprint),
            )
          : [];
      if (blocker) {
        set(
          ConditionType.RotationBlocked,
          "True",
          Reason.KeyRotationAttemptedWhileOldThumbprintInUse,
          blocker,
        );
        readyBlock = { reason: Reason.KeyRotationAttemptedWhileOldThumbprintInUse, message: blocker };
      } else if (!resolved.ready || !resolved.access.accessible) {
        readyBlock = {
          reason: Reason.KeyProtectorNotReady,
          message: `the new protector cannot take the DEK yet (${resolved.notReadyMessage ?? resolved.access.detail ?? "not accessible"}); the DEK stays under its current protector`,
        };
      } else if (notOnSecondaries.length > 0) {
        // R21: the new key goes to every secondary first; until then the primary does not switch.
        next.rotation = {
          phase: "AddingToSecondaries",
          ...(protectorWrap(envelope.envelope)
            ? { fromThumbprint: protectorWrap(envelope.envelope)!.thumbprint }
            : {}),
          toKeyID: target.keyID,
          toThumbprint: target.thumbprint,
          ...(target.keyProtectorName ? { toKeyProtectorName: target.keyProtectorName } : {}),
          startedAt:
            prev.rotation?.toThumbprint === target.thumbprint ? prev.rotation.startedAt : now.toISOString(),
        };
        const message = `the protector change to ${target.thumbprint.slice(0, 12)} waits for its secondaries: ${notOnSecondaries.map((m) => `${m.name} (${m.why})`).join("; ")}; nothing has switched`;
        set(ConditionType.RotationBlocked, "True", Reason.SecondaryCannotUseKey, message);
        readyBlock = { reason: Reason.SecondaryCannotUseKey, message };
      } else {
        const from = protectorWrap(envelope.envelope)?.keyID;
        try {
          envelope = await ctx.dek.addWrap(envelope, candidates, target, "protector", check);
          ctx.envelopes.writeThrough(envelope.secret);
          delete next.rotation;
          ctx.metrics?.rotations.inc({ kind: "EncryptedDatabase", result: "success" });
          void ctx.events.normal(
            db,
            "ProtectorChanged",
            `database DEK re-wrapped from ${from} to ${target.keyID}; the old wrap is retained`,
          );
        } catch (error) {
          ctx.metrics?.rotations.inc({ kind: "EncryptedDatabase", result: "error" });
          if (isOwnerBindingError(error)) return refuse(error, ownSecret, true);
          if (!isKeyAccessError(error)) throw error;
          ({ ready: readyBlock, outcome: draft.outcome } = rewrapFailed(error, target.keyID));
        }
      }
    } else if (next.rotation) {
      delete next.rotation;
    }
    if (
      readyBlock?.reason !== Reason.KeyRotationAttemptedWhileOldThumbprintInUse &&
      readyBlock?.reason !== Reason.SecondaryCannotUseKey &&
      findCondition(draft.conditions, ConditionType.RotationBlocked)?.status === "True"
    ) {
      set(ConditionType.RotationBlocked, "False", Reason.RotationComplete, "no rotation is waiting");
    }

    // Extra keys (spec.keys), and for a secondary every key of its primary's current list (R20)
    // plus the key its primary is about to switch to (R21): each holds a proven retained wrap.
    const synced = await syncExtraKeys(ctx, db, envelope, { candidates, check }, primary);
    envelope = synced.envelope;
    const extra = synced.extra;
    const problem = synced.problems[0];
    if (problem) readyBlock ??= { reason: Reason.KeyProtectorNotReady, message: `spec.keys: ${problem}` };
    if (synced.foreign) return refuse(synced.foreign, ownSecret, true);
    if (primary && synced.missing) {
      if (synced.missing.length > 0) next.missingThumbprints = synced.missing;
      else delete next.missingThumbprints;
      const c = keyListSynced(key.namespace, nsName(primary), synced.missing, synced.causes);
      set(ConditionType.KeyListSynced, c.status, c.reason, c.message);
    }
    const wrap = protectorWrap(envelope.envelope);
    next.envelopeSecretName = secretName;
    next.dekID = envelope.envelope.dekID;
    if (wrap) {
      const switched = wrap.thumbprint === target.thumbprint;
      const effective = switched ? targetChoice : (current ?? targetChoice);
      next.effectiveProtector = {
        source: effective.source,
        type: effective.type,
        ...(effective.keyProtectorName ? { keyProtectorName: effective.keyProtectorName } : {}),
        keyID: wrap.keyID,
        thumbprint: wrap.thumbprint,
        thumbprintShort: shortThumbprint(wrap.thumbprint),
      };
      const protectorKey: CurrentKey = {
        keyID: wrap.keyID,
        thumbprint: wrap.thumbprint,
        role: "protector",
        ...(effective.keyProtectorName ? { keyProtectorName: effective.keyProtectorName } : {}),
      };
      next.keyList = reconcileKeyList((prev.keyList ?? []) as KeyListEntry[], [protectorKey, ...extra], now);
    }
    // R16, R17: retained wraps go once no secondary or pending step needs them and their window passed
    const pruning = await pruneRetainedWraps(ctx, db, envelope, (next.keyList ?? []) as KeyListEntry[], [
      ...secondariesOf(db, ctx.databases.store).map((s) => s.status?.effectiveProtector?.thumbprint),
      next.rotation?.fromThumbprint,
      next.rotation?.toThumbprint,
    ]);
    envelope = pruning.envelope;

    // Key access: the effective protector's, and the server's state (R10-R12, R23).
    // a server whose own envelope is lost (R2) holds its own DEK back, not this database's
    const serverInaccessible =
      (server as Kube<EncryptedServer>).status?.state === "Inaccessible" &&
      !reportsEnvelopeLoss(server.status?.conditions);
    // R23: a copy (restore or secondary) is held by what it is until a revalidation proves it
    const copy = copyStart(databaseCopy(db), prev, server.spec.revalidation);
    const access = decideAccess(
      accessInput({
        state: prev.state as State | undefined,
        access: resolved.access,
        server: server.spec,
        lastRevalidatedToken: prev.lastRevalidatedToken,
        envelopeReturned,
        heldInaccessible: serverInaccessible
          ? { reason: "ServerInaccessible", message: `server ${server.metadata.name} is Inaccessible` }
          : copy?.held,
        now,
      }),
    );
    set(
      ConditionType.KeyAccessible,
      access.condition.status,
      access.condition.reason,
      access.condition.message,
    );
    if (access.keyAccessLostSince) next.keyAccessLostSince = access.keyAccessLostSince;
    else delete next.keyAccessLostSince;
    let state: State = access.state;
    if (access.action === "enforce") {
      next.inaccessibleSince = now.toISOString();
      if (copy) set(copy.waiting.type, copy.waiting.status, copy.waiting.reason, copy.waiting.message);
      void ctx.events.warning(
        db,
        "Inaccessible",
        serverInaccessible
          ? `server ${server.metadata.name} is Inaccessible`
          : (copy?.held.message ?? access.condition.message),
      );
    } else if (access.action === "revalidate") {
      if (await this.revalidate(db, envelope, candidates, check, server.spec.revalidationToken, next, set)) {
        state = "Available";
        delete next.inaccessibleSince;
      }
    }
    next.state = state;
    // R11: as for servers, only a server token set while this database is Inaccessible asks for a
    // revalidation; one it already had is recorded as answered.
    const answered = answeredToken(server.spec.revalidationToken, state, access.action);
    if (answered !== undefined) next.lastRevalidatedToken = answered;
    const ready = readyCondition({
      block: readyBlock,
      state,
      inaccessibleMessage: serverInaccessible
        ? `server ${server.metadata.name} is Inaccessible`
        : inaccessibleMessage(draft.conditions, access.condition.message),
      access: access.condition,
      availableMessage: "the database DEK is wrapped by its effective protector and the key is accessible",
    });
    set(ready.type, ready.status, ready.reason, ready.message);
    const recheck = probeRecheckMs(resolved.access, ctx.probes?.intervalMs);
    return finish(soonest(access.requeueAfterMs, pruning.requeueAfterMs, recheck));
  }

  /** A KeyProtector this database may use (its own, its extra keys, its server's) that holds the key with this thumbprint. */
  private ownKeyHolding(
    db: Database,
    server: Kube<EncryptedServer>,
    thumbprint: string,
  ): { kek: Kek; name: string; source: "Database" | "Server" } | undefined {
    const names: { name: string; source: "Database" | "Server" }[] = [];
    const own = db.spec.encryptionProtector?.keyProtectorRef?.name;
    if (own) names.push({ name: own, source: "Database" });
    for (const k of db.spec.keys ?? []) names.push({ name: k.keyProtectorRef.name, source: "Database" });
    const fromServer = server.spec.protector.keyProtectorRef?.name;
    if (fromServer) names.push({ name: fromServer, source: "Server" });
    // the key list sync (R20) takes key material from any KeyProtector of the namespace: so may following it
    for (const kp of this.ctx.keyProtectors.store.list(nsOf(db))) {
      if (kp.status?.thumbprint === thumbprint && kp.metadata.name)
        names.push({ name: kp.metadata.name, source: "Database" });
    }
    for (const { name, source } of names) {
      const r = resolveKek(
        this.ctx.keyProtectors.store,
        nsOf(db),
        { type: "CustomerManaged", keyProtectorName: name },
        this.ctx.smk,
      );
      if (r.ok && r.kek.thumbprint === thumbprint && r.ready && r.access.accessible)
        return { kek: r.kek, name, source };
    }
    return undefined;
  }

  /** Whether a database's envelope holds a wrap under this key. */
  private hasWrap(db: Database, thumbprint: string): boolean {
    const e = cachedEnvelope(
      this.ctx,
      nsOf(db),
      envelopeSecretName("EncryptedDatabase", db.metadata.name ?? ""),
    );
    return e !== undefined && findWrapByThumbprint(e.envelope, thumbprint) !== undefined;
  }

  private async revalidate(
    db: Database,
    envelope: EnvelopeSecret,
    candidates: Parameters<ControllerContext["dek"]["unwrap"]>[1],
    check: OwnerCheck,
    token: string | undefined,
    next: EncryptedDatabaseStatus,
    set: SetCondition,
  ): Promise<boolean> {
    try {
      const { dek, wrap } = await this.ctx.dek.unwrap(envelope.envelope, candidates, check);
      zeroize(dek);
      if (token !== undefined) next.lastRevalidatedToken = token;
      set(
        ConditionType.Revalidated,
        "True",
        Reason.Revalidated,
        `the DEK unwrapped with ${wrap.keyID} and its key check value matched`,
      );
      void this.ctx.events.normal(db, "Revalidated", `the DEK unwrapped with ${wrap.keyID}, KCV matched`);
      return true;
    } catch (error) {
      const failed = revalidationFailed(error, "database");
      set(ConditionType.Revalidated, "False", failed.reason, failed.message);
      return false;
    }
  }

  /** R25: Retain keeps the envelope so a dropped database can be restored; Shred deletes every wrap. */
  private finalize(db: Database): Promise<Result | undefined> {
    return finalizeOwner(this.ctx, EncryptedDatabaseKind, this.ctx.databases, db, {
      envelope: envelopeSecretName("EncryptedDatabase", db.metadata.name ?? ""),
      deletionPolicy: db.spec.deletionPolicy,
      noun: "database",
    });
  }
}

const nsOf = (d: Database) => d.metadata.namespace ?? "";

const nsName = (d: Database) => `${nsOf(d)}/${d.metadata.name}`;
