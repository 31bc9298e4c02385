/**
 * R16: the act of pruning retained wraps, shared by servers and databases. The decision is
 * planRetainedWraps (pure); this drops what it names in one envelope update (no KMS call) and
 * says when to come back for the next window. A service-managed DEK keeps its retained wrap under
 * a key that another service-managed DEK is still under (the service-managed key is moving, R7):
 * it looks again once a retention window later.
 */
import type { KubeObject } from "../runtime/index.js";
import type { ControllerContext } from "./context.js";
import type { EnvelopeSecret } from "./dek-operations.js";
import type { KeyListEntry } from "./key-history.js";
import { soonest } from "./requeue.js";
import { DEFAULT_RETAINED_WRAP_RETENTION_MS, planRetainedWraps } from "./retained-wraps.js";
import {
  BY_SERVICE_MANAGED_THUMBPRINT,
  heldForServiceManagedMove,
  serviceManagedThumbprintOf,
} from "./service-managed-key.js";

/** Whether a server or database other than `owner` records a service-managed protector under this thumbprint. */
function otherServiceManagedUnder(ctx: ControllerContext, owner: KubeObject, thumbprint: string): boolean {
  const same = (o: KubeObject) =>
    o.metadata?.uid && owner.metadata?.uid
      ? o.metadata.uid === owner.metadata.uid
      : o.metadata?.namespace === owner.metadata?.namespace && o.metadata?.name === owner.metadata?.name;
  return [ctx.servers.store, ctx.databases.store].some((store) =>
    store.byIndex(BY_SERVICE_MANAGED_THUMBPRINT, thumbprint).some((o) => !same(o)),
  );
}

export async function pruneRetainedWraps(
  ctx: ControllerContext,
  owner: KubeObject,
  envelope: EnvelopeSecret,
  keyList: readonly KeyListEntry[],
  inUse: Iterable<string | undefined>,
): Promise<{ envelope: EnvelopeSecret; requeueAfterMs?: number }> {
  const now = ctx.now();
  const retentionMs = ctx.retainedWrapRetentionMs ?? DEFAULT_RETAINED_WRAP_RETENTION_MS;
  const held = heldForServiceManagedMove(
    serviceManagedThumbprintOf(owner as Parameters<typeof serviceManagedThumbprintOf>[0]),
    envelope.envelope,
    (t) => otherServiceManagedUnder(ctx, owner, t),
  );
  const plan = planRetainedWraps({
    envelope: envelope.envelope,
    keyList,
    inUse: [...inUse, ...held],
    retentionMs,
    now,
  });
  let current = envelope;
  if (plan.prune.length > 0) {
    current = await ctx.dek.dropRetained(envelope, plan.prune);
    ctx.envelopes.writeThrough(current.secret);
    void ctx.events.normal(
      owner,
      "RetainedWrapsPruned",
      `retained wraps under ${plan.prune.map((w) => w.keyID).join(", ")} were removed: nothing depends on them and their retention window has passed, so those key versions can no longer unwrap DEK ${envelope.envelope.dekID}`,
    );
  }
  const requeueAfterMs = soonest(
    plan.nextAt ? Math.max(1_000, plan.nextAt.getTime() - now.getTime()) : undefined,
    held.length > 0 ? Math.max(1_000, retentionMs) : undefined,
  );
  return { envelope: current, ...(requeueAfterMs === undefined ? {} : { requeueAfterMs }) };
}
