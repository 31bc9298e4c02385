import {
  ConditionType,
  type EncryptedServer,
  type EncryptedServerStatus,
  findCondition,
  Reason,
  removeCondition,
} from "../api/index.js";
import { protectorWrap, zeroize } from "../crypto/index.js";
import { ownerReference, type Result } from "../runtime/index.js";
import { decideAccess, type State } from "../watchdog/access-decision.js";
import { accessInput, answeredToken, probeRecheckMs, readyCondition } from "./access-state.js";
import type { ControllerContext } from "./context.js";
import { copyStart, inaccessibleMessage, serverCopy } from "./copy-start.js";
import type { EnvelopeSecret } from "./dek-operations.js";
import type { KekResolution } from "./kek-resolution.js";
import { recordedChoice } from "./key-to-watch.js";
import {
  type Begun,
  OwnerReconciler,
  ownerKind,
  type PassFrame,
  recordAccess,
  watchKey,
} from "./owner-pass.js";
import { finalizeOwner, revalidationFailed } from "./pass.js";
import { rewrapProtector } from "./protector-rewrap.js";
import { soonest } from "./requeue.js";
import { EncryptedServerKind, envelopeSecretName, type Kube } from "./resources.js";
import { pruneRetainedWraps } from "./retained-wrap-pruning.js";
import { cannotTakeDEK, type ReadyBlock } from "./rewrap.js";
import { serverChoice, serverProtectorStatus } from "./server-protector.js";

type Server = Kube<EncryptedServer>;
type Resolved = Extract<KekResolution, { ok: true }>;
type Frame = PassFrame<EncryptedServerStatus, Server>;

/**
 * R4, R9-R12, R16, R25: an EncryptedServer's DEK, protector and key-access state. One pass reads
 * the caches, converges the envelope (create, or re-wrap when the protector changed), decides the
 * key-access state, enforces or gives back, and writes status once if it changed.
 */
export class ServerReconciler extends OwnerReconciler<EncryptedServerStatus, Server> {
  constructor(ctx: ControllerContext) {
    super(ctx, ownerKind(ctx, "EncryptedServer"));
  }

  protected async pass({
    frame,
    ...begun
  }: Begun<EncryptedServerStatus, Server>): Promise<Result | undefined> {
    const { obj: server, draft } = frame;
    const { prev, next, set } = draft;
    const { ctx } = this;
    const choice = serverChoice(server);
    const protecting = begun.envelope ? protectorWrap(begun.envelope.envelope) : undefined;
    const recorded = prev.protector ? recordedChoice(prev.protector) : undefined;
    const watched = await watchKey(frame, choice, recorded, protecting);
    if ("result" in watched) return watched.result;
    const { resolved } = watched;

    const converged = await this.convergeEnvelope(frame, resolved, begun.envelope);
    if ("result" in converged) return converged.result;
    // a failed re-wrap says more than the key being watched (the original order of the two)
    const readyBlock = converged.block ?? watched.block;
    const wrap = protectorWrap(converged.envelope.envelope);
    next.envelopeSecretName = frame.secretName;
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
    const { state, decision } = await this.watchdog(
      frame,
      resolved,
      pruning.envelope,
      begun.envelopeReturned,
    );
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
    return frame.finish(soonest(requeue, pruning.requeueAfterMs, recheck));
  }

  /**
   * R1, R4, R16, R31: the envelope, adopted when the status does not record it, created once, or
   * re-wrapped online when the protector changed. Either the envelope to go on with (and what
   * holds Ready back), or the pass's result (a refusal, or a wait for the key).
   */
  private async convergeEnvelope(
    frame: Frame,
    resolved: Resolved,
    observed: EnvelopeSecret | undefined,
  ): Promise<{ envelope: EnvelopeSecret; block?: ReadyBlock } | { result: Result | undefined }> {
    const adopted = await frame.adopt(observed);
    if ("result" in adopted) return adopted;
    const { envelope } = adopted;
    const usable = resolved.ready && resolved.access.accessible;
    if (!envelope) return this.create(frame, resolved, usable);
    if (protectorWrap(envelope.envelope)?.thumbprint === resolved.kek.thumbprint) return { envelope };
    if (!usable) return { envelope, block: cannotTakeDEK(resolved) };
    return rewrapProtector(frame, envelope, resolved.kek);
  }

  /** R1, R4: the server's DEK, made once and wrapped by its protector, when that key can take it. */
  private async create(
    frame: Frame,
    resolved: Resolved,
    usable: boolean,
  ): Promise<{ envelope: EnvelopeSecret } | { result: Result | undefined }> {
    const ctx = this.ctx;
    const { obj: server } = frame;
    if (!usable)
      return {
        result: await frame.waitProvisioning(
          {
            reason: Reason.KeyProtectorNotReady,
            message:
              resolved.notReadyMessage ??
              `waiting for the protector's key to be accessible before creating the DEK: ${resolved.access.detail ?? ""}`,
          },
          // R33: a key not probed lately is looked at again by a timer (a probe that finds it as healthy as before is no event)
          probeRecheckMs(resolved.access, ctx.probes?.intervalMs),
        ),
      };
    let envelope: EnvelopeSecret;
    try {
      envelope = await ctx.dek.create(
        frame.namespace,
        frame.secretName,
        resolved.kek,
        { kind: "EncryptedServer", name: server.metadata.name ?? "" },
        { candidates: frame.candidates(), recordedDekID: frame.draft.prev.dekID },
      );
    } catch (error) {
      return { result: await frame.refuse(error) };
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
    frame: Frame,
    resolved: Resolved,
    envelope: EnvelopeSecret,
    envelopeReturned: boolean,
  ): Promise<{ state: State; decision: ReturnType<typeof decideAccess> }> {
    const ctx = this.ctx;
    const { obj: server, draft } = frame;
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
    recordAccess(draft, decision);
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
    } else if (decision.action === "revalidate" && (await this.revalidate(frame, envelope))) {
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
  private async revalidate(frame: Frame, envelope: EnvelopeSecret): Promise<boolean> {
    const ctx = this.ctx;
    const { obj: server, draft } = frame;
    const { next, set } = draft;
    // the cache holds no wrapped bytes: read the envelope (a failure to read is the pass's, retried)
    const whole = await ctx.dek.whole(envelope);
    try {
      const { dek, wrap } = await ctx.dek.unwrap(whole.envelope, frame.candidates(), frame.check);
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
      draft.outcome = failed.outcome;
      void ctx.events.warning(server, "RevalidationFailed", (error as Error).message);
      return false;
    }
  }

  /** R25: Retain keeps the envelope for a later restore; Shred deletes every wrap of the DEK. */
  protected finalize(server: Server): Promise<Result | undefined> {
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
