/**
 * R16: the act of pruning retained wraps, shared by servers and databases. The decision is
 * planRetainedWraps (pure); this drops what it names in one envelope update (no KMS call) and
 * says when to come back for the next window.
 */
import type { KubeObject } from "../runtime/index.js";
import type { ControllerContext } from "./context.js";
import type { EnvelopeSecret } from "./dek-operations.js";
import type { KeyListEntry } from "./key-history.js";
import { DEFAULT_RETAINED_WRAP_RETENTION_MS, planRetainedWraps } from "./retained-wraps.js";

export async function pruneRetainedWraps(
  ctx: ControllerContext,
  owner: KubeObject,
  envelope: EnvelopeSecret,
  keyList: readonly KeyListEntry[],
  inUse: Iterable<string | undefined>,
): Promise<{ envelope: EnvelopeSecret; requeueAfterMs?: number }> {
  const now = ctx.now();
  const plan = planRetainedWraps({
    envelope: envelope.envelope,
    keyList,
    inUse,
    retentionMs: ctx.retainedWrapRetentionMs ?? DEFAULT_RETAINED_WRAP_RETENTION_MS,
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
  return {
    envelope: current,
    ...(plan.nextAt ? { requeueAfterMs: Math.max(1_000, plan.nextAt.getTime() - now.getTime()) } : {}),
  };
}
