import { type Condition, Reason, setCondition } from "../api/index.js";
import { isOwnerBindingError } from "../crypto/index.js";
import { isKeyAccessError } from "../kms/provider.js";
import {
  addFinalizer,
  hasFinalizer,
  type Informer,
  type KubeObject,
  type ObjectKey,
  type ResourceKind,
  type Result,
  removeFinalizer,
} from "../runtime/index.js";
import type { ControllerContext } from "./context.js";
import { FINALIZER } from "./resources.js";
import { reportWriteRefusal, writeStatus } from "./status-write.js";
import { kmsRetry, resultOf, type Step, step } from "./step.js";

/**
 * What a server's and a database's pass SHARE: how it starts (the object from the cache, its
 * finalizer), the status it drafts (conditions through one helper, the pass's clock and
 * generation), how it ends (one status write; a 409 re-runs the pass, a recorded transient
 * failure is retried), and how the resource goes (R25).
 */

type Status = { state?: string; conditions?: Condition[]; observedGeneration?: number };
export type Owner<S extends Status> = KubeObject & {
  metadata: { namespace?: string; name?: string; generation?: number; deletionTimestamp?: string };
  status?: S;
};

/** The status a pass drafts from the one it observed: written once, at `finish`. */
export class StatusDraft<S extends Status> {
  readonly prev: S;
  readonly next: S;
  conditions: Condition[] | undefined;
  /** how the pass ends besides its timed work (a transient KMS failure: retried with backoff) */
  outcome: Step = step.continue();

  constructor(
    readonly obj: { metadata: { generation?: number }; status?: S },
    readonly now: Date,
  ) {
    this.prev = (obj.status ?? {}) as S;
    this.next = { ...this.prev, observedGeneration: obj.metadata.generation };
    this.conditions = this.prev.conditions;
  }

  /** Sets one condition (observedGeneration always, lastTransitionTime only on a flip). */
  readonly set = (
    type: string,
    status: "True" | "False" | "Unknown",
    reason: string,
    message: string,
  ): void => {
    this.conditions = setCondition(
      this.conditions,
      { type, status, reason, message },
      this.obj.metadata.generation,
      this.now,
    );
  };
}

/**
 * Runs a pass; a write the API server refused is said on Ready and in a Warning (R32) before the
 * error goes back to the controller (backoff, log).
 */
export async function reconcileReporting<S extends Status, T extends Owner<S>>(
  ctx: ControllerContext,
  kind: ResourceKind,
  cache: Informer<T>,
  key: ObjectKey,
  pass: () => Promise<Result | undefined>,
): Promise<Result | undefined> {
  try {
    return await pass();
  } catch (error) {
    await reportWriteRefusal(ctx, kind, cache, key, error as never);
    throw error;
  }
}

/** The object to converge, with its finalizer; "deleting" when it is being deleted; undefined when gone. */
export async function openPass<T extends KubeObject & { metadata: { deletionTimestamp?: string } }>(
  ctx: ControllerContext,
  kind: ResourceKind,
  cache: Informer<T>,
  key: ObjectKey,
): Promise<{ obj: T; deleting: boolean } | undefined> {
  const obj = cache.store.get(key.namespace, key.name);
  if (!obj) return undefined;
  if (obj.metadata.deletionTimestamp) return { obj, deleting: true };
  if (hasFinalizer(obj, FINALIZER)) return { obj, deleting: false };
  return { obj: (await addFinalizer(ctx.client, kind, obj, FINALIZER)).object, deleting: false };
}

/** Writes the draft once; a 409 re-runs the pass (observe and plan again from the newer object). */
export async function finishPass<S extends Status, T extends Owner<S>>(
  ctx: ControllerContext,
  kind: ResourceKind,
  cache: Informer<T>,
  draft: StatusDraft<S>,
  requeueAfterMs?: number,
): Promise<Result | undefined> {
  draft.next.conditions = draft.conditions as S["conditions"];
  const { conflict } = await writeStatus(
    ctx,
    kind,
    cache as never,
    draft.obj as never,
    draft.prev.state,
    draft.next as never,
  );
  if (conflict) return { requeue: true };
  return resultOf(draft.outcome, requeueAfterMs);
}

/**
 * R11: why a revalidation failed, for the Revalidated condition, and how the pass ends: a KMS
 * failure is retried with backoff (honouring Retry-After), since the key's probe that asked for
 * the revalidation may well stay healthy and no other event would bring the resource back.
 */
export function revalidationFailed(
  error: unknown,
  noun: "server" | "database",
): { reason: string; message: string; outcome: Step } {
  const reason = isKeyAccessError(error)
    ? error.reason
    : isOwnerBindingError(error)
      ? Reason.ForeignEnvelope
      : Reason.RevalidationFailed;
  return {
    reason,
    message: `revalidation failed: ${(error as Error).message}; the ${noun} stays Inaccessible`,
    outcome: isKeyAccessError(error) ? kmsRetry(error) : step.continue(),
  };
}

/**
 * R25: a server or database being deleted: Deleting is recorded, `beforeRelease` runs (a server
 * gives back what enforcement took), the envelope is released by the deletionPolicy (Retain
 * keeps it for a restore, Shred deletes every wrap), then the finalizer goes.
 */
export async function finalizeOwner<S extends Status & { state?: string }, T extends Owner<S>>(
  ctx: ControllerContext,
  kind: ResourceKind,
  cache: Informer<T>,
  obj: T,
  o: {
    envelope: string;
    deletionPolicy: "Retain" | "Shred";
    noun: "server" | "database";
    beforeRelease?: () => Promise<void>;
  },
): Promise<Result | undefined> {
  if (!hasFinalizer(obj, FINALIZER)) return undefined;
  const namespace = obj.metadata.namespace ?? "";
  const name = obj.metadata.name ?? "";
  if (obj.status?.state !== "Deleting") {
    const { conflict } = await writeStatus(ctx, kind, cache as never, obj as never, obj.status?.state, {
      ...(obj.status ?? {}),
      state: "Deleting",
    } as never);
    if (conflict) return { requeue: true };
  }
  await o.beforeRelease?.();
  await ctx.dek.release(namespace, o.envelope, o.deletionPolicy);
  if (o.deletionPolicy === "Shred") {
    void ctx.events.normal(
      obj,
      "Shredded",
      `every wrap of the ${o.noun} DEK was deleted: its data can never be decrypted`,
    );
  }
  await removeFinalizer(ctx.client, kind, cache.store.get(namespace, name) ?? obj, FINALIZER);
  return undefined;
}
