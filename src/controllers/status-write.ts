import { type Condition, ConditionType, findCondition } from "../api/index.js";
import type { Informer, KubeObject, ResourceKind } from "../runtime/index.js";
import type { ControllerContext } from "./context.js";
import { recordStateChange } from "./envelope-cache.js";

/**
 * Writes a server's or database's status once (nothing when unchanged), puts the server's answer
 * in the cache so the next pass sees it, and records a state change (R12).
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
): Promise<void> {
  const { written, object } = await ctx.status.set(kind, obj, next);
  if (written) cache.writeThrough(object);
  recordStateChange(
    ctx,
    kind.kind,
    obj,
    before,
    next.state,
    findCondition(next.conditions, ConditionType.Ready),
  );
}
