import { EnvelopeError } from "../crypto/index.js";
import type { ControllerContext } from "./context.js";
import type { EnvelopeSecret } from "./dek-operations.js";
import type { EnvelopeObservation } from "./envelope-loss.js";
import { envelopeFromCache } from "./envelope-summary.js";

/** An envelope Secret from the operator's cache of envelopes (no API call): its summary (envelope-summary.ts). */
export function cachedEnvelope(
  ctx: ControllerContext,
  namespace: string,
  name: string,
): EnvelopeSecret | undefined {
  const secret = ctx.envelopes.store.get(namespace, name);
  return secret ? envelopeFromCache(secret) : undefined;
}

/**
 * A resource's own envelope as it is (R1, R2): from the cache, decoded; when the cache has none
 * but the status records a DEK, confirmed by one read of the API (so a cache that lags never
 * passes for a lost envelope; this costs a read only when the envelope looks lost).
 */
export async function observeOwnEnvelope(
  ctx: ControllerContext,
  namespace: string,
  name: string,
  recordedDekID: string | undefined,
): Promise<{ envelope?: EnvelopeSecret; found: EnvelopeObservation["found"] }> {
  try {
    const cached = cachedEnvelope(ctx, namespace, name);
    const envelope = cached ?? (recordedDekID ? await ctx.dek.read(namespace, name) : undefined);
    return envelope ? { envelope, found: { dekID: envelope.envelope.dekID } } : { found: { missing: true } };
  } catch (error) {
    if (!(error instanceof EnvelopeError)) throw error;
    return { found: { unreadable: (error as Error).message } };
  }
}

/**
 * R12: a state change is a metric and (after the first state) an Event. R28: and a log line, at
 * warn into Inaccessible and at info otherwise, with the object and the Ready condition's reason
 * and message (the cause: a key's reason, a server's name; never key material).
 */
export function recordStateChange(
  ctx: ControllerContext,
  kind: string,
  obj: Parameters<ControllerContext["events"]["normal"]>[0],
  before: string | undefined,
  after: string | undefined,
  cause?: { reason: string; message: string },
): void {
  if (before === after || !after) return;
  ctx.metrics?.stateTransitions.inc({ kind, from: before ?? "None", to: after });
  ctx.log[after === "Inaccessible" ? "warn" : "info"](`${kind} state ${before ?? "None"} -> ${after}`, {
    kind,
    namespace: obj.metadata?.namespace,
    name: obj.metadata?.name,
    from: before ?? "None",
    to: after,
    ...(cause ? { reason: cause.reason, cause: cause.message } : {}),
  });
  if (before !== undefined) void ctx.events.normal(obj, `State${after}`, `state ${before} -> ${after}`);
}
