import {
  type Condition,
  ConditionType,
  type EncryptedDatabase,
  type EncryptedDatabaseStatus,
  type EncryptedServer,
  type EncryptedServerStatus,
  findCondition,
} from "../api/index.js";
import type { KeyReference } from "../kms/provider.js";
import type { Informer, ObjectKey, Reconciler, ResourceKind, Result } from "../runtime/index.js";
import type { AccessDecision, State } from "../watchdog/access-decision.js";
import type { ControllerContext } from "./context.js";
import type { EnvelopeSecret, OwnerCheck } from "./dek-operations.js";
import { ENVELOPE_LOSS_RECHECK_MS, ownEnvelope } from "./envelope-stall.js";
import { type KekResolution, unwrapCandidates } from "./kek-resolution.js";
import { keyToWatch, type ProtectingKey, withFreshProbe } from "./key-to-watch.js";
import { envelopeRefusal, ownerOf } from "./owner-binding.js";
import { finishPass, type Owner, openPass, reconcileReporting, StatusDraft } from "./pass.js";
import { EncryptedDatabaseKind, EncryptedServerKind, envelopeSecretName, type Kube } from "./resources.js";
import type { ReadyBlock } from "./rewrap.js";
import { resolveProtector } from "./service-managed-key.js";

/**
 * The frame of a server's or a database's pass, SHARED by both: the object and its status draft,
 * its own envelope Secret, the keys that may unwrap in its namespace, its owner binding (R31),
 * and the ways a pass ends (written once). The reconcilers' own steps take a frame and decide
 * only what is theirs.
 */

export type OwnerStatus = {
  state?: string;
  conditions?: Condition[];
  observedGeneration?: number;
  dekID?: string;
  inaccessibleSince?: string;
  keyAccessLostSince?: string;
};
type Kind = "EncryptedServer" | "EncryptedDatabase";
type Resolved = Extract<KekResolution, { ok: true }>;
type Choice = { type: "ServiceManaged" | "CustomerManaged"; keyProtectorName?: string };

/** Which kind a pass is for, and where its objects are cached. */
export interface OwnerKind<S extends OwnerStatus, T extends Owner<S>> {
  resource: ResourceKind;
  kind: Kind;
  noun: "server" | "database";
  cache: Informer<T>;
}

/** The servers' or the databases' kind, with the context's cache of them. */
export function ownerKind(
  ctx: ControllerContext,
  kind: "EncryptedServer",
): OwnerKind<EncryptedServerStatus, Kube<EncryptedServer>>;
export function ownerKind(
  ctx: ControllerContext,
  kind: "EncryptedDatabase",
): OwnerKind<EncryptedDatabaseStatus, Kube<EncryptedDatabase>>;
export function ownerKind(
  ctx: ControllerContext,
  kind: Kind,
):
  | OwnerKind<EncryptedServerStatus, Kube<EncryptedServer>>
  | OwnerKind<EncryptedDatabaseStatus, Kube<EncryptedDatabase>> {
  return kind === "EncryptedServer"
    ? { resource: EncryptedServerKind, kind, noun: "server", cache: ctx.servers }
    : {
        resource: EncryptedDatabaseKind,
        kind,
        noun: "database",
        cache: ctx.databases,
      };
}

export class PassFrame<S extends OwnerStatus, T extends Owner<S>> {
  readonly draft: StatusDraft<S>;
  readonly namespace: string;
  readonly secretName: string;

  constructor(
    readonly ctx: ControllerContext,
    readonly of: OwnerKind<S, T>,
    readonly obj: T,
  ) {
    this.draft = new StatusDraft<S>(obj, ctx.now());
    this.namespace = obj.metadata.namespace ?? "";
    this.secretName = envelopeSecretName(of.kind, obj.metadata.name ?? "");
  }

  get now(): Date {
    return this.draft.now;
  }

  /** Its own envelope Secret, as a refusal names it. */
  get ownSecret(): { namespace: string; name: string } {
    return { namespace: this.namespace, name: this.secretName };
  }

  /** R31: every use of the envelope is on this resource's behalf, checked against its binding. */
  get check(): OwnerCheck {
    return { owner: ownerOf(this.of.kind, this.obj), recordedDekID: this.draft.prev.dekID };
  }

  /** Every key that may unwrap a DEK of `namespace` (this resource's by default). */
  candidates(namespace = this.namespace): KeyReference[] {
    return unwrapCandidates(this.ctx.keyProtectors.store, namespace, this.ctx.smk);
  }

  /** Writes the draft once and ends the pass. */
  finish(requeueAfterMs?: number): Promise<Result | undefined> {
    return finishPass(this.ctx, this.of.resource, this.of.cache, this.draft, requeueAfterMs);
  }

  /** Ends a pass that waits before its DEK exists: Provisioning (unless a state is recorded), Ready says why. */
  waitProvisioning(block: ReadyBlock, requeueAfterMs?: number): Promise<Result | undefined> {
    this.draft.next.state ??= "Provisioning";
    this.draft.set(ConditionType.Ready, "False", block.reason, block.message);
    return this.finish(requeueAfterMs);
  }

  /**
   * Refuses an envelope use that failed (R31): Ready says which Secret and why, with a Warning
   * when the envelope is not its owner's and the message is new; `adopting` also waits for the
   * key that proves an unrecorded envelope. Any other error is thrown as it came.
   */
  refuse(
    error: unknown,
    o: { secret?: { namespace: string; name: string }; adopting?: boolean; alsoOn?: string } = {},
  ): Promise<Result | undefined> {
    const own = o.secret === undefined;
    const secret = o.secret ?? this.ownSecret;
    const refusal = envelopeRefusal(error, secret, {
      own,
      adopting: o.adopting ?? false,
      noun: this.of.noun,
    });
    if (!refusal) throw error;
    if (refusal.foreign && o.alsoOn) this.draft.set(o.alsoOn, "False", refusal.reason, refusal.message);
    if (
      refusal.foreign &&
      findCondition(this.draft.prev.conditions, ConditionType.Ready)?.message !== refusal.message
    )
      void this.ctx.events.warning(this.obj, refusal.reason, refusal.message);
    return this.waitProvisioning(refusal, refusal.requeueAfterMs);
  }

  /** An envelope the status does not record (a crash before the status write, or a planted Secret) is proven first (R31). */
  async adopt(
    envelope: EnvelopeSecret | undefined,
  ): Promise<{ envelope: EnvelopeSecret | undefined } | { result: Result | undefined }> {
    if (!envelope || envelope.envelope.dekID === this.draft.prev.dekID) return { envelope };
    try {
      return { envelope: await this.ctx.dek.adopt(envelope, this.candidates(), this.check) };
    } catch (error) {
      return { result: await this.refuse(error, { adopting: true }) };
    }
  }
}

/** What a pass goes on with once it has begun: its frame, its envelope, and whether it was given back. */
export interface Begun<S extends OwnerStatus, T extends Owner<S>> {
  frame: PassFrame<S, T>;
  envelope: EnvelopeSecret | undefined;
  /** the envelope was lost at the last pass and is back: a revalidation proves it (R2, R11) */
  envelopeReturned: boolean;
}

/**
 * A server's or a database's reconciler: each pass begins the same way (`beginPass`: the object,
 * its finalizer, its own envelope), then goes on with the kind's own steps (`pass`), or
 * `finalize` while it is being deleted; a write the API server refused is reported (R32) before
 * the error goes back to the controller.
 */
export abstract class OwnerReconciler<S extends OwnerStatus, T extends Owner<S>> implements Reconciler {
  constructor(
    protected readonly ctx: ControllerContext,
    protected readonly of: OwnerKind<S, T>,
  ) {}

  reconcile(key: ObjectKey): Promise<Result | undefined> {
    return reconcileReporting(this.ctx, this.of.resource, this.of.cache, key, async () => {
      const begun = await beginPass(this.ctx, this.of, key, (obj) => this.finalize(obj));
      return "result" in begun ? begun.result : this.pass(begun);
    });
  }

  protected abstract pass(begun: Begun<S, T>): Promise<Result | undefined>;

  protected abstract finalize(obj: T): Promise<Result | undefined>;
}

/**
 * How every pass begins: the object from the cache with its finalizer (gone: nothing; deleting:
 * `finalize`), then its own envelope (R1, R2, R4), whose loss is terminal and ends the pass.
 */
export async function beginPass<S extends OwnerStatus, T extends Owner<S>>(
  ctx: ControllerContext,
  of: OwnerKind<S, T>,
  key: ObjectKey,
  finalize: (obj: T) => Promise<Result | undefined>,
): Promise<Begun<S, T> | { result: Result | undefined }> {
  const opened = await openPass(ctx, of.resource, of.cache, key);
  if (!opened) return { result: undefined };
  if (opened.deleting) return { result: await finalize(opened.obj) };
  const frame = new PassFrame(ctx, of, opened.obj);
  const { draft } = frame;
  const prev = draft.prev as { state?: State; conditions?: Condition[]; dekID?: string };
  const own = await ownEnvelope(ctx, of.kind, frame.obj, frame.secretName, prev, draft.conditions, draft.set);
  if (own.lost) {
    draft.next.state = own.state;
    if (own.state === "Inaccessible") draft.next.inaccessibleSince ??= draft.now.toISOString();
    return { result: await frame.finish(ENVELOPE_LOSS_RECHECK_MS) };
  }
  draft.conditions = own.conditions;
  return { frame, envelope: own.envelope, envelopeReturned: own.returned };
}

/**
 * R10, R33: the key the pass watches (what its choice asks for, or the key it last knew that
 * protects the DEK, R7 R16: also a previous service-managed key the setting moved from), its
 * probe's freshness, and what that holds Ready back with; with no DEK and nothing to watch the
 * pass waits for the KeyProtector.
 */
export async function watchKey<S extends OwnerStatus, T extends Owner<S>>(
  frame: PassFrame<S, T>,
  choice: Choice,
  recordedChoice: Choice | undefined,
  protecting: ProtectingKey | undefined,
): Promise<{ resolved: Resolved; block?: ReadyBlock } | { result: Result | undefined }> {
  const { draft, ctx } = frame;
  const { chosen, recorded } = resolveProtector(
    ctx.keyProtectors.store,
    frame.namespace,
    choice,
    recordedChoice,
    protecting,
    ctx.smk,
  );
  const watched = keyToWatch(chosen, recorded, protecting, draft.prev.keyAccessLostSince);
  if (!watched) {
    draft.next.state ??= "Provisioning";
    if (!chosen.ok) draft.set(ConditionType.Ready, "False", chosen.reason, chosen.message);
    return { result: await frame.finish() };
  }
  const resolved = withFreshProbe(ctx, watched.resolved, frame.now);
  return watched.block ? { resolved, block: watched.block } : { resolved };
}

/** R10, R33: KeyAccessible as the watchdog decided it, and since when the key has been unreachable. */
export function recordAccess<S extends OwnerStatus>(draft: StatusDraft<S>, decision: AccessDecision): void {
  const { condition } = decision;
  draft.set(ConditionType.KeyAccessible, condition.status, condition.reason, condition.message);
  if (decision.keyAccessLostSince) draft.next.keyAccessLostSince = decision.keyAccessLostSince;
  else delete draft.next.keyAccessLostSince;
}
