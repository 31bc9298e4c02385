import { type Condition, ConditionType, findCondition, setCondition } from "../api/index.js";
import type { Informer, KubeObject, ObjectKey, ResourceKind } from "../runtime/index.js";
import type { ControllerContext } from "./context.js";
import { recordStateChange } from "./envelope-cache.js";
import { withHealth } from "./health-status.js";
import { writeRefusal } from "./write-refusal.js";

/**
 * Writes a server's or database's status once (nothing when unchanged), puts the server's answer
 * in the cache so the next pass sees it, and records a state change (R12). A 409 Conflict writes
 * nothing: the object as the API server holds it goes into the cache and `conflict` is true, so
 * the caller observes and plans again from it (never the status decided from the older object).
 */
export async function writeStatus<
  T extends KubeObject & { status?: { state?: string; conditions?: readonly Condition[] } },
>(
  ctx: ControllerContext,
  kind: ResourceKind,
  cache: Informer<T>,
  obj: T,
  before: string | undefined,
  next: NonNullable<T["status"]>,
): Promise<{ conflict: boolean }> {
  // R27: Reconciling and Stalled from what the pass decided, in the same write as Ready
  next = {
    ...next,
    conditions: withHealth(
      {
        kind: kind.kind as "EncryptedServer" | "EncryptedDatabase",
        generation: obj.metadata?.generation,
        state: next.state,
        deleting: Boolean(obj.metadata?.deletionTimestamp),
        conditions: next.conditions as Condition[] | undefined,
      },
      ctx.now(),
    ),
  };
  const outcome = await ctx.status.write(kind, obj, next);
  if (outcome.conflict) {
    cache.writeThrough(outcome.object);
    return { conflict: true };
  }
  if (outcome.written) cache.writeThrough(outcome.object);
  recordStateChange(
    ctx,
    kind.kind,
    obj,
    before,
    next.state,
    findCondition(next.conditions, ConditionType.Ready),
  );
  return { conflict: false };
}

/**
 * R32: when a pass failed because the API server refused a write the operator needs, says so on
 * Ready (the verb, the object, the API server's reason) and in a Warning event, so the failure is
 * never only in the log. The error is still the pass's (the caller rethrows it: backoff, log).
 */
export async function reportWriteRefusal<
  T extends KubeObject & { status?: { state?: string; conditions?: Condition[] } },
>(
  ctx: ControllerContext,
  kind: ResourceKind,
  cache: Informer<T>,
  key: ObjectKey,
  error: unknown,
): Promise<void> {
  const refusal = writeRefusal(error);
  const obj = refusal && cache.store.get(key.namespace, key.name);
  if (!refusal || !obj) return;
  const prev = obj.status ?? {};
  if (findCondition(prev.conditions, ConditionType.Ready)?.message === refusal.message) return;
  const conditions = setCondition(
    prev.conditions,
    { type: ConditionType.Ready, status: "False", reason: refusal.reason, message: refusal.message },
    obj.metadata?.generation,
    ctx.now(),
  );
  void ctx.events.warning(obj, refusal.reason, refusal.message);
  try {
    await writeStatus(ctx, kind, cache, obj, prev.state, { ...prev, conditions } as NonNullable<T["status"]>);
  } catch {
    // the refused write may be this status itself: the event and the pass's error still say it
  }
}
