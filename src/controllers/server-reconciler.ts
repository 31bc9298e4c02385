import {
  ConditionType,
  type EncryptedServer,
  type EncryptedServerStatus,
  findCondition,
  Reason,
  removeCondition,
  shortThumbprint,
} from "../api/index.js";
import { isOwnerBindingError, protectorWrap, zeroize } from "../crypto/index.js";
import { isKeyAccessError } from "../kms/provider.js";
import { type ObjectKey, ownerReference, type Reconciler, type Result } from "../runtime/index.js";
import { decideAccess, type State } from "../watchdog/access-decision.js";
import { accessInput, answeredToken, readyCondition } from "./access-state.js";
import type { ControllerContext } from "./context.js";
import type { EnvelopeSecret, OwnerCheck } from "./dek-operations.js";
import { ENVELOPE_LOSS_RECHECK_MS, ownEnvelope } from "./envelope-stall.js";
import { type KekResolution, resolveKek, unwrapCandidates } from "./kek-resolution.js";
import { keyToWatch, recordedChoice, withFreshProbe } from "./key-to-watch.js";
import { envelopeRefusal, ownerOf } from "./owner-binding.js";
import {
  finalizeOwner,
  finishPass,
  openPass,
  reconcileReporting,
  revalidationFailed,
  StatusDraft,
} from "./pass.js";
import { soonest } from "./requeue.js";
import { EncryptedServerKind, envelopeSecretName, type Kube } from "./resources.js";
import { pruneRetainedWraps } from "./retained-wrap-pruning.js";
import { rewrapFailed } from "./rewrap.js";

type Server = Kube<EncryptedServer>;

/**
 * R4, R9-R12, R16, R25: an EncryptedServer's DEK, protector and key-access state. One pass reads
 * the caches, converges the envelope (create, or re-wrap when the protector changed), decides the
 * key-access state, enforces or gives back, and writes status once if it changed.
 */
export class ServerReconciler implements Reconciler {
  constructor(private readonly ctx: ControllerContext) {}

  reconcile(key: ObjectKey): Promise<Result | undefined> {
    return reconcileReporting(this.ctx, EncryptedServerKind, this.ctx.servers, key, () => this.pass(key));
  }

  private async pass(key: ObjectKey): Promise<Result | undefined> {
    const ctx = this.ctx;
    const opened = await openPass(ctx, EncryptedServerKind, ctx.servers, key);
    if (!opened) return undefined;
    if (opened.deleting) return this.finalize(opened.obj);
    const server = opened.obj;
    const now = ctx.now();
    const draft = new StatusDraft<EncryptedServerStatus>(server, now);
    const { prev, next, set } = draft;
    const finish = (requeueAfterMs?: number) =>
      finishPass(ctx, EncryptedServerKind, ctx.servers, draft, requeueAfterMs);

    // R1, R2, R4: the envelope first; once a DEK id is recorded it is never replaced
    const secretName = envelopeSecretName("EncryptedServer", key.name);
    const own = await ownEnvelope(ctx, "EncryptedServer", server, secretName, prev, draft.conditions, set);
    if (own.lost) {
      next.state = own.state;
      if (own.state === "Inaccessible") next.inaccessibleSince ??= now.toISOString();
      return finish(ENVELOPE_LOSS_RECHECK_MS);
    }
    // an envelope given back (from a backup) is proven by a revalidation before the server is Available
    const envelopeReturned = own.returned;
    draft.conditions = own.conditions;

    const choice = {
      type: server.spec.protector.type,
      ...(server.spec.protector.keyProtectorRef
        ? { keyProtectorName: server.spec.protector.keyProtectorRef.name }
        : {}),
    };
    const chosen: KekResolution = resolveKek(ctx.keyProtectors.store, key.namespace, choice, ctx.smk);
    // R10, R33: once the DEK exists the watchdog keeps watching the key that protects it, even
    // when the KeyProtector asked for does not resolve
    const recorded = prev.protector
      ? resolveKek(ctx.keyProtectors.store, key.namespace, recordedChoice(prev.protector), ctx.smk)
      : undefined;
    const protecting = own.envelope ? protectorWrap(own.envelope.envelope) : undefined;
    const watched = keyToWatch(chosen, recorded, protecting, prev.keyAccessLostSince);
    if (!watched) {
      next.state ??= "Provisioning";
      if (!chosen.ok) set(ConditionType.Ready, "False", chosen.reason, chosen.message);
      return finish();
    }
    const resolved = withFreshProbe(ctx, watched.resolved, now);

    let readyBlock: { reason: string; message: string } | undefined = watched.block;
    // The envelope: create it once, or re-wrap it online when the protector changed (R16).
    // R31: every use of the envelope is on this server's behalf, checked against its binding
    const check: OwnerCheck = { owner: ownerOf("EncryptedServer", server), recordedDekID: prev.dekID };
    const candidates = () => unwrapCandidates(ctx.keyProtectors.store, key.namespace, ctx.smk);
    /**
     * Refuses an envelope that is not this server's (R31); when `adopting`, also waits for the key
     * that proves it is. Any other error is thrown as before.
     */
    const refuse = (error: unknown, adopting = false): Promise<Result | undefined> => {
      const secret = { namespace: key.namespace, name: secretName };
      const refusal = envelopeRefusal(error, secret, { own: true, adopting, noun: "server" });
      if (!refusal) throw error;
      next.state ??= "Provisioning";
      set(ConditionType.Ready, "False", refusal.reason, refusal.message);
      if (refusal.foreign && findCondition(prev.conditions, ConditionType.Ready)?.message !== refusal.message)
        void ctx.events.warning(server!, refusal.reason, refusal.message);
      return finish(refusal.requeueAfterMs);
    };
    let envelope = own.envelope;
    if (envelope && envelope.envelope.dekID !== prev.dekID) {
      // an envelope the status does not record (a crash before the status write, or a planted Secret)
      try {
        envelope = await ctx.dek.adopt(envelope, candidates(), check);
      } catch (error) {
        return refuse(error, true);
      }
    }
    if (!envelope) {
      if (!resolved.ready || !resolved.access.accessible) {
        next.state ??= "Provisioning";
        set(
          ConditionType.Ready,
          "False",
          Reason.KeyProtectorNotReady,
          resolved.notReadyMessage ??
            `waiting for the protector's key to be accessible before creating the DEK: ${resolved.access.detail ?? ""}`,
        );
        return finish();
      }
      try {
        envelope = await ctx.dek.create(
          key.namespace,
          secretName,
          resolved.kek,
          { kind: "EncryptedServer", name: key.name },
          { candidates: candidates(), recordedDekID: prev.dekID },
        );
      } catch (error) {
        return refuse(error);
      }
      ctx.envelopes.writeThrough(envelope.secret);
      void ctx.events.normal(
        server,
        "DEKCreated",
        `server DEK ${envelope.envelope.dekID} created and wrapped by ${resolved.kek.keyID}`,
      );
    } else if (protectorWrap(envelope.envelope)?.thumbprint !== resolved.kek.thumbprint) {
      if (resolved.ready && resolved.access.accessible) {
        const from = protectorWrap(envelope.envelope)?.keyID;
        try {
          envelope = await ctx.dek.addWrap(envelope, candidates(), resolved.kek, "protector", check);
          ctx.envelopes.writeThrough(envelope.secret);
          ctx.metrics?.rotations.inc({ kind: "EncryptedServer", result: "success" });
          void ctx.events.normal(
            server,
            "ProtectorChanged",
            `server DEK re-wrapped from ${from} to ${resolved.kek.keyID}; the old wrap is retained`,
          );
        } catch (error) {
          ctx.metrics?.rotations.inc({ kind: "EncryptedServer", result: "error" });
          if (isOwnerBindingError(error)) return refuse(error);
          if (!isKeyAccessError(error)) throw error;
          ({ ready: readyBlock, outcome: draft.outcome } = rewrapFailed(error, resolved.kek.keyID));
        }
      } else {
        readyBlock = {
          reason: Reason.KeyProtectorNotReady,
          message: `the new protector cannot take the DEK yet (${resolved.notReadyMessage ?? resolved.access.detail ?? "not accessible"}); the DEK stays under its current protector`,
        };
      }
    }

    const wrap = protectorWrap(envelope.envelope);
    next.envelopeSecretName = secretName;
    next.dekID = envelope.envelope.dekID;
    if (wrap) {
      next.protector = {
        type: watched.block ? (prev.protector?.type ?? choice.type) : choice.type,
        ...(resolved.kek.keyProtectorName && wrap.thumbprint === resolved.kek.thumbprint
          ? { keyProtectorName: resolved.kek.keyProtectorName }
          : prev.protector?.keyProtectorName
            ? { keyProtectorName: prev.protector.keyProtectorName }
            : {}),
        keyID: wrap.keyID,
        thumbprint: wrap.thumbprint,
        thumbprintShort: shortThumbprint(wrap.thumbprint),
      };
    }

    // R16: retained wraps go once their retention window has passed (a server has no secondaries)
    const pruning = await pruneRetainedWraps(ctx, server, envelope, [], []);
    envelope = pruning.envelope;

    // The watchdog's decision (R10, R11, R23). A copy (spec.source) starts Inaccessible: it is
    // held there on its first decision and leaves only through a revalidation, like any
    // Inaccessible server (Automatic: at once if the key answers; Manual: on a new token).
    const copyHeld =
      server.spec.source !== undefined && (prev.state === undefined || prev.state === "Provisioning");
    const decision = decideAccess(
      accessInput({
        state: prev.state as State | undefined,
        access: resolved.access,
        server: server.spec,
        lastRevalidatedToken: prev.lastRevalidatedToken,
        envelopeReturned,
        heldInaccessible: copyHeld
          ? {
              reason: Reason.WaitingForRevalidation,
              message: `a copy of EncryptedServer ${server.spec.source?.sourceRef.name} (${server.spec.source?.kind}) starts Inaccessible until it is revalidated (R23)`,
            }
          : undefined,
        now,
      }),
    );
    const wasKeyAccessible = findCondition(prev.conditions, ConditionType.KeyAccessible)?.status;
    set(
      ConditionType.KeyAccessible,
      decision.condition.status,
      decision.condition.reason,
      decision.condition.message,
    );
    if (decision.keyAccessLostSince) next.keyAccessLostSince = decision.keyAccessLostSince;
    else delete next.keyAccessLostSince;
    let state: State = decision.state;
    if (wasKeyAccessible !== decision.condition.status) {
      if (decision.condition.status !== "True")
        void ctx.events.warning(server, decision.condition.reason, decision.condition.message);
      else if (wasKeyAccessible === "False")
        void ctx.events.normal(server, "KeyAccessRestored", decision.condition.message);
    }

    if (decision.action === "enforce") {
      state = "Inaccessible";
      next.inaccessibleSince = now.toISOString();
      await this.enforce(server, next, set);
      if (copyHeld) {
        set(
          ConditionType.Revalidated,
          "False",
          Reason.WaitingForRevalidation,
          `this server is a copy and has not been revalidated yet: ${server.spec.revalidation === "Automatic" ? "it is revalidated as soon as its key answers a probe" : "change spec.revalidationToken (kubectl tde revalidate) once its key is accessible"}`,
        );
      }
      void ctx.events.warning(
        server,
        "Inaccessible",
        copyHeld
          ? `a copy starts Inaccessible until it is revalidated (R23): ${decision.condition.message}`
          : `key access lost past the grace period: ${decision.condition.message}`,
      );
    } else if (decision.action === "revalidate") {
      const ok = await this.revalidate(server, envelope, next, set);
      if (ok) {
        state = "Available";
        delete next.inaccessibleSince;
      }
    }
    // R10: the lockout holds for the whole Inaccessible period, whatever puts the workload back
    if (state === "Inaccessible" && decision.action !== "enforce") await this.enforce(server, next, set);
    const target = await ctx.enforcer.inspect(server);
    if (!target) draft.conditions = removeCondition(draft.conditions, ConditionType.EnforcementTarget);
    else if (state !== "Inaccessible")
      set(ConditionType.EnforcementTarget, target.status, target.reason, target.message);
    next.state = state;
    // R11: a token the server was created with, or one set while it was fine, is already answered
    const answered = answeredToken(server.spec.revalidationToken, state, decision.action);
    if (answered !== undefined) next.lastRevalidatedToken = answered;
    const ready = readyCondition({
      block: readyBlock,
      state,
      inaccessibleMessage:
        findCondition(draft.conditions, ConditionType.Revalidated)?.reason === Reason.WaitingForRevalidation
          ? `a copy starts Inaccessible until it is revalidated (R23): ${decision.condition.message}`
          : decision.condition.message,
      access: decision.condition,
      availableMessage: "the server DEK is wrapped by its protector and the key is accessible",
    });
    set(ready.type, ready.status, ready.reason, ready.message);
    const requeue =
      decision.requeueAfterMs ?? (state === "Inaccessible" ? ctx.enforcer.holdIntervalMs : undefined);
    return finish(soonest(requeue, pruning.requeueAfterMs));
  }

  private async enforce(
    server: Server,
    next: EncryptedServerStatus,
    set: (type: string, status: "True" | "False" | "Unknown", reason: string, message: string) => void,
  ): Promise<void> {
    const outcome = await this.ctx.enforcer.enforce(
      server,
      ownerReference(server, { controller: true, blockOwnerDeletion: false }),
    );
    next.enforcement = { ...(next.enforcement ?? {}), ...outcome.record };
    if (outcome.target)
      set(
        ConditionType.EnforcementTarget,
        outcome.target.status,
        outcome.target.reason,
        outcome.target.message,
      );
    set(ConditionType.Enforced, outcome.enforced.status, outcome.enforced.reason, outcome.enforced.message);
  }

  /** R11: unwrap the DEK with the current protector and check its KCV; on success give back what enforcement took. */
  private async revalidate(
    server: Server,
    envelope: EnvelopeSecret,
    next: EncryptedServerStatus,
    set: (type: string, status: "True" | "False" | "Unknown", reason: string, message: string) => void,
  ): Promise<boolean> {
    const ctx = this.ctx;
    const namespace = server.metadata.namespace ?? "";
    try {
      const { dek, wrap } = await ctx.dek.unwrap(
        envelope.envelope,
        unwrapCandidates(ctx.keyProtectors.store, namespace, ctx.smk),
        { owner: ownerOf("EncryptedServer", server), recordedDekID: server.status?.dekID },
      );
      zeroize(dek);
      await ctx.enforcer.restore(server, next.enforcement ?? {});
      delete next.enforcement;
      if (server.spec.revalidationToken !== undefined)
        next.lastRevalidatedToken = server.spec.revalidationToken;
      set(
        ConditionType.Revalidated,
        "True",
        Reason.Revalidated,
        `the DEK unwrapped with ${wrap.keyID} and its key check value matched`,
      );
      set(ConditionType.Enforced, "False", Reason.NotEnforced, "nothing is enforced");
      void ctx.events.normal(
        server,
        "Revalidated",
        `the DEK unwrapped with ${wrap.keyID}, KCV matched; the workload is given back`,
      );
      return true;
    } catch (error) {
      const failed = revalidationFailed(error, "server");
      set(ConditionType.Revalidated, "False", failed.reason, failed.message);
      void ctx.events.warning(server, "RevalidationFailed", (error as Error).message);
      return false;
    }
  }

  /** R25: Retain keeps the envelope for a later restore; Shred deletes every wrap of the DEK. */
  private finalize(server: Server): Promise<Result | undefined> {
    return finalizeOwner(this.ctx, EncryptedServerKind, this.ctx.servers, server, {
      envelope: envelopeSecretName("EncryptedServer", server.metadata.name ?? ""),
      deletionPolicy: server.spec.deletionPolicy,
      noun: "server",
      // R10: what enforcement took is given back before the server goes
      beforeRelease: async () => {
        if (server.spec.enforcement !== "None")
          await this.ctx.enforcer.restore(server, server.status?.enforcement ?? {});
      },
    });
  }
}
