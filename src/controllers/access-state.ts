import {
  type ConditionInput,
  ConditionType,
  type EncryptedServer,
  parseDuration,
  Reason,
} from "../api/index.js";
import type { AccessAction, AccessInput, State } from "../watchdog/access-decision.js";
import type { KeyAccess } from "./kek-resolution.js";
import type { ReadyBlock } from "./rewrap.js";

/**
 * R10, R11, R23: what the key-access decision of a server or a database reads, SHARED by both:
 * what the KeyProtector last saw of the key, the resource's own state, and its server's grace
 * period and revalidation settings. An envelope given back after a loss (R2) is proven by a
 * revalidation as soon as the key answers, whatever the revalidation setting.
 */
export function accessInput(o: {
  state: State | undefined;
  access: KeyAccess;
  server: Pick<EncryptedServer["spec"], "keyAccessGracePeriod" | "revalidation" | "revalidationToken">;
  lastRevalidatedToken: string | undefined;
  envelopeReturned: boolean;
  heldInaccessible?: { reason: string; message: string } | undefined;
  now: Date;
}): AccessInput {
  const { access, server } = o;
  return {
    state: o.state,
    accessible: access.accessible,
    ...(access.unknown ? { unknown: access.unknown } : {}),
    ...(access.reason ? { reason: access.reason } : {}),
    ...(access.detail ? { detail: access.detail } : {}),
    ...(access.lostSince ? { lostSince: access.lostSince } : {}),
    gracePeriodMs: parseDuration(server.keyAccessGracePeriod),
    revalidation: o.envelopeReturned ? "Automatic" : server.revalidation,
    ...(server.revalidationToken !== undefined ? { revalidationToken: server.revalidationToken } : {}),
    ...(o.lastRevalidatedToken !== undefined ? { lastRevalidatedToken: o.lastRevalidatedToken } : {}),
    ...(o.heldInaccessible ? { heldInaccessible: o.heldInaccessible } : {}),
    now: o.now,
  };
}

/**
 * R11: the revalidation token to record as answered. With Manual revalidation only a token set
 * while the resource is Inaccessible asks for a revalidation: the token it was created with, or
 * one set while it was fine (or at the very pass that makes it Inaccessible), is recorded as
 * already answered, so it cannot bring the resource back on its own later. Undefined: keep the
 * recorded one.
 */
export function answeredToken(
  token: string | undefined,
  state: State,
  action: AccessAction,
): string | undefined {
  return token !== undefined && (state !== "Inaccessible" || action === "enforce") ? token : undefined;
}

/**
 * R10, R27: the Ready precedence, SHARED by servers and databases. First what holds the resource
 * back (a refusal, a wait, a failed re-wrap), then Inaccessible, then a key not accessible (within
 * the grace period), else Available.
 */
export function readyCondition(o: {
  block: ReadyBlock | undefined;
  state: State;
  /** what Ready says while Inaccessible */
  inaccessibleMessage: string;
  access: { status: "True" | "False" | "Unknown"; reason: string; message: string };
  availableMessage: string;
}): ConditionInput {
  const ready = (status: "True" | "False", reason: string, message: string): ConditionInput => ({
    type: ConditionType.Ready,
    status,
    reason,
    message,
  });
  if (o.block) return ready("False", o.block.reason, o.block.message);
  if (o.state === "Inaccessible") return ready("False", "Inaccessible", o.inaccessibleMessage);
  if (o.access.status !== "True") return ready("False", o.access.reason, o.access.message);
  return ready("True", Reason.Available, o.availableMessage);
}

/**
 * R33: how soon to look again at a resource whose key was not probed lately (KeyAccessible
 * Unknown). No event brings it back: once the key is probed again its KeyProtector's status is
 * unchanged (the key is as healthy as before), so the resource waits for the next probe interval
 * by a timer, and then says True (or False) again. Undefined when the probe is fresh.
 */
export function probeRecheckMs(access: KeyAccess, probeIntervalMs: number | undefined): number | undefined {
  return access.unknown && probeIntervalMs !== undefined ? probeIntervalMs : undefined;
}
