import { decodeEnvelopeSecret } from "../crypto/index.js";
import type { ControllerContext } from "./context.js";
import type { EnvelopeSecret } from "./dek-operations.js";

/** An envelope Secret from the operator's cache of envelopes (no API call), decoded. */
export function cachedEnvelope(
  ctx: ControllerContext,
  namespace: string,
  name: string,
): EnvelopeSecret | undefined {
  const secret = ctx.envelopes.store.get(namespace, name);
  if (!secret) return undefined;
  return {
    secret,
    envelope: decodeEnvelopeSecret(secret as { type?: string; data?: Record<string, string> }),
  };
}

/** R12: a state change is a metric and (after the first state) an Event. */
export function recordStateChange(
  ctx: ControllerContext,
  kind: string,
  obj: Parameters<ControllerContext["events"]["normal"]>[0],
  before: string | undefined,
  after: string | undefined,
): void {
  if (before === after || !after) return;
  ctx.metrics?.stateTransitions.inc({ kind, from: before ?? "None", to: after });
  if (before !== undefined) void ctx.events.normal(obj, `State${after}`, `state ${before} -> ${after}`);
}
