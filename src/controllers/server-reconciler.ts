import {
  ConditionType,
  type EncryptedServer,
  type EncryptedServerStatus,
  findCondition,
  Reason,
  removeCondition,
} from "../api/index.js";
import { isOwnerBindingError, protectorWrap, zeroize } from "../crypto/index.js";
import { isKeyAccessError } from "../kms/provider.js";
import { type ObjectKey, ownerReference, type Reconciler, type Result } from "../runtime/index.js";
import { decideAccess, type State } from "../watchdog/access-decision.js";
import { accessInput, answeredToken, probeRecheckMs, readyCondition } from "./access-state.js";
import type { ControllerContext } from "./context.js";
import { copyStart, inaccessibleMessage, serverCopy } from "./copy-start.js";
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
import { type ReadyBlock, rewrapFailed } from "./rewrap.js";
import { serverChoice, serverProtectorStatus } from "./server-protector.js";

type Server = Kube<EncryptedServer>;
type Resolved = Extract<KekResolution, { ok: true }>;

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
    draft.conditions = own.conditions;

    const choice = serverChoice(server);
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

    const converged = await this.convergeEnvelope(server, draft, resolved, own.envelope);
    if ("result" in converged) return converged.result;
    // a failed re-wrap says more than the key being watched (the original order of the two)
    const readyBlock = converged.block ?? watched.block;
    const wrap = protectorWrap(converged.envelope.envelope);
    next.envelopeSecretName = secretName;
    next.dekID = converged.envelope.envelope.dekID;
    if (wrap)
      next.protector = serverProtectorStatus(
        prev.protector,
        choice,
        Boolean(watched.block),
        resolved.kek,
        wrap,
      );

    // R16: retained wraps go once their retention window has passed (a server has no secondaries)
    const pruning = await pruneRetainedWraps(ctx, server, converged.envelope, [], []);
    const { state, decision } = await this.watchdog(server, draft, resolved, pruning.envelope, own.returned);
    next.state = state;
    // R11: a token the server was created with, or one set while it was fine, is already answered
    const answered = answeredToken(server.spec.revalidationToken, state, decision.action);
    if (answered !== undefined) next.lastRevalidatedToken = answered;
    const ready = readyCondition({
      block: readyBlock,
      state,
      inaccessibleMessage: inaccessibleMessage(draft.conditions, decision.condition.message),
      access: decision.condition,
      availableMessage: "the server DEK is wrapped by its protector and the key is accessible",
    });
    set(ready.type, ready.status, ready.reason, ready.message);
    const requeue =
      decision.requeueAfterMs ?? (state === "Inaccessible" ? ctx.enforcer.holdIntervalMs : undefined);
    const recheck = probeRecheckMs(resolved.access, ctx.probes?.intervalMs);
    return finish(soonest(requeue, pruning.requeueAfterMs, recheck));
  }

  /**
   * Refuses an envelope that is not this server's (R31); when `adopting`, also waits for the key
   * that proves it is. Any other error is thrown as before.
   */
  private refuse(
    server: Server,
    draft: StatusDraft<EncryptedServerStatus>,
    error: unknown,
    adopting = false,
  ): Promise<Result | undefined> {
    const namespace = server.metadata.namespace ?? "";
    const secret = { namespace, name: envelopeSecretName("EncryptedServer", server.metadata.name ?? "") };
    const refusal = envelopeRefusal(error, secret, { own: true, adopting, noun: "server" });
    if (!refusal) throw error;
    draft.next.state ??= "Provisioning";
    draft.set(ConditionType.Ready, "False", refusal.reason, refusal.message);
    if (
      refusal.foreign &&
      findCondition(draft.prev.conditions, ConditionType.Ready)?.message !== refusal.message
    )
      void this.ctx.events.warning(server, refusal.reason, refusal.message);
    return finishPass(this.ctx, EncryptedServerKind, this.ctx.servers, draft, refusal.requeueAfterMs);
  }

  /**
   * R1, R4, R16, R31: the envelope, adopted when the status does not record it, created once, or
   * re-wrapped online when the protector changed. Either the envelope to go on with (and what
   * holds Ready back), or the pass's result (a refusal, or a wait for the key).
   */
  private async convergeEnvelope(
    server: Server,
    draft: StatusDraft<EncryptedServerStatus>,
    resolved: Resolved,
    observed: EnvelopeSecret | undefined,
  ): Promise<{ envelope: EnvelopeSecret; block?: ReadyBlock } | { result: Result | undefined }> {
    const ctx = this.ctx;
    const { prev } = draft;
    const namespace = server.metadata.namespace ?? "";
    // R31: every use of the envelope is on this server's behalf, checked against its binding
    const check: OwnerCheck = { owner: ownerOf("EncryptedServer", server), recordedDekID: prev.dekID };
    const candidates = () => unwrapCandidates(ctx.keyProtectors.store, namespace, ctx.smk);
    let envelope = observed;
    if (envelope && envelope.envelope.dekID !== prev.dekID) {
      // an envelope the status does not record (a crash before the status write, or a planted Secret)
      try {
        envelope = await ctx.dek.adopt(envelope, candidates(), check);
      } catch (error) {
        return { result: await this.refuse(server, draft, error, true) };
      }
    }
    const usable = resolved.ready && resolved.access.accessible;
    if (!envelope) return this.create(server, draft, resolved, usable);
    if (protectorWrap(envelope.envelope)?.thumbprint === resolved.kek.thumbprint) return { envelope };
    if (!usable)
      return {
        envelope,
        block: {
          reason: Reason.KeyProtectorNotReady,
          message: `the new protector cannot take the DEK yet (${resolved.notReadyMessage ?? resolved.access.detail ?? "not accessible"}); the DEK stays under its current protector`,
        },
      };
    const from = protectorWrap(envelope.envelope)?.keyID;
    try {
      const rewrapped = await ctx.dek.addWrap(envelope, candidates(), resolved.kek, "protector", check);
      ctx.envelopes.writeThrough(rewrapped.secret);
      ctx.metrics?.rotations.inc({ kind: "EncryptedServer", result: "success" });
      void ctx.events.normal(
        server,
        "ProtectorChanged",
        `server DEK re-wrapped from ${from} to ${resolved.kek.keyID}; the old wrap is retained`,
      );
      return { envelope: rewrapped };
    } catch (error) {
      ctx.metrics?.rotations.inc({ kind: "EncryptedServer", result: "error" });
      if (isOwnerBindingError(error)) return { result: await this.refuse(server, draft, error) };
      if (!isKeyAccessError(error)) throw error;
      const failed = rewrapFailed(error, resolved.kek.keyID);
      draft.outcome = failed.outcome;
      return { envelope, block: failed.ready };
    }
  }

  /** R1, R4: the server's DEK, made once and wrapped by its protector, when that key can take it. */
  private async create(
    server: Server,
    draft: StatusDraft<EncryptedServerStatus>,
    resolved: Resolved,
    usable: boolean,
  ): Promise<{ envelope: EnvelopeSecret } | { result: Result | undefined }> {
    const ctx = this.ctx;
    const namespace = server.metadata.namespace ?? "";
    const name = server.metadata.name ?? "";
    if (!usable) {
      draft.next.state ??= "Provisioning";
      draft.set(
        ConditionType.Ready,
        "False",
        Reason.KeyProtectorNotReady,
        resolved.notReadyMessage ??
          `waiting for the protector's key to be accessible before creating the DEK: ${resolved.access.detail ?? ""}`,
      );
      // R33: a key not probed lately is looked at again by a timer (a probe that finds it as healthy as before is no event)
      const recheck = probeRecheckMs(resolved.access, ctx.probes?.intervalMs);
      return { result: await finishPass(ctx, EncryptedServerKind, ctx.servers, draft, recheck) };
    }
    let envelope: EnvelopeSecret;
    try {
      envelope = await ctx.dek.create(
        namespace,
        envelopeSecretName("EncryptedServer", name),
        resolved.kek,
        { kind: "EncryptedServer", name },
        {
          candidates: unwrapCandidates(ctx.keyProtectors.store, namespace, ctx.smk),
          recordedDekID: draft.prev.dekID,
        },
      );
    } catch (error) {
      return { result: await this.refuse(server, draft, error) };
    }
    ctx.envelopes.writeThrough(envelope.secret);
    void ctx.events.normal(
      server,
      "DEKCreated",
      `server DEK ${envelope.envelope.dekID} created and wrapped by ${resolved.kek.keyID}`,
    );
    return { envelope };
  }

  /**
   * The watchdog's decision (R10, R11, R23) and what it asks for: KeyAccessible and its events,
   * enforcement past the grace period (held for the whole Inaccessible period), a revalidation
   * on the way back. A copy (spec.source) starts Inaccessible: it is held there on its first
   * decision and leaves only through a revalidation, like any Inaccessible server (Automatic: at
   * once if the key answers; Manual: on a new token).
   */
  private async watchdog(
    server: Server,
    draft: StatusDraft<EncryptedServerStatus>,
    resolved: Resolved,
    envelope: EnvelopeSecret,
    envelopeReturned: boolean,
  ): Promise<{ state: State; decision: ReturnType<typeof decideAccess> }> {
    const ctx = this.ctx;
    const { prev, next, set } = draft;
    // R23: a copy is held by what it is (spec.source) until a revalidation proves it
    const copy = copyStart(serverCopy(server), prev, server.spec.revalidation);
    const decision = decideAccess(
      accessInput({
        state: prev.state as State | undefined,
        access: resolved.access,
        server: server.spec,
        lastRevalidatedToken: prev.lastRevalidatedToken,
        envelopeReturned,
        heldInaccessible: copy?.held,
        now: draft.now,
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
    if (wasKeyAccessible !== decision.condition.status) {
      if (decision.condition.status !== "True")
        void ctx.events.warning(server, decision.condition.reason, decision.condition.message);
      else if (wasKeyAccessible === "False")
        void ctx.events.normal(server, "KeyAccessRestored", decision.condition.message);
    }
    let state: State = decision.state;
    if (decision.action === "enforce") {
      state = "Inaccessible";
      next.inaccessibleSince = draft.now.toISOString();
      await this.enforce(server, next, set);
      if (copy) set(copy.waiting.type, copy.waiting.status, copy.waiting.reason, copy.waiting.message);
      void ctx.events.warning(
        server,
        "Inaccessible",
        copy
          ? `a copy starts Inaccessible until it is revalidated (R23): ${decision.condition.message}`
          : `key access lost past the grace period: ${decision.condition.message}`,
      );
    } else if (decision.action === "revalidate" && (await this.revalidate(server, envelope, next, set))) {
      state = "Available";
      delete next.inaccessibleSince;
    }
    // R10: the lockout holds for the whole Inaccessible period, whatever puts the workload back
    if (state === "Inaccessible" && decision.action !== "enforce") await this.enforce(server, next, set);
    const target = await ctx.enforcer.inspect(server);
    if (!target) draft.conditions = removeCondition(draft.conditions, ConditionType.EnforcementTarget);
    else if (state !== "Inaccessible")
      set(ConditionType.EnforcementTarget, target.status, target.reason, target.message);
    return { state, decision };
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
