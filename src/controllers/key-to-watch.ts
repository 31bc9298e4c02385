import { Reason } from "../api/index.js";
import { parseLocalKeyID } from "../kms/local.js";
import type { ControllerContext } from "./context.js";
import type { KekResolution, KeyAccess } from "./kek-resolution.js";

type Resolved = Extract<KekResolution, { ok: true }>;

/** The protector wrap of a resource's envelope, when it has one: the key that protects its DEK now. */
export interface ProtectingKey {
  keyID: string;
  thumbprint: string;
}

/**
 * R10, R33: which key a resource's pass watches, and what blocks Ready. When the KeyProtector it
 * asks for resolves, that one. When it does not (deleted, renamed, not created yet) but the DEK
 * exists, the watchdog keeps its clock on the key it last knew: the KeyProtector the status
 * records, if it still names the key that protects the DEK; else that key itself, whose access is
 * then Unknown (nothing probes it). Undefined when there is nothing to watch (no DEK yet): the
 * pass waits for the KeyProtector as before.
 */
export function keyToWatch(
  chosen: KekResolution,
  recorded: KekResolution | undefined,
  protecting: ProtectingKey | undefined,
  lostSince: string | undefined,
): { resolved: Resolved; block?: { reason: string; message: string } } | undefined {
  if (chosen.ok) return { resolved: chosen };
  if (!protecting) return undefined;
  if (recorded?.ok && recorded.kek.thumbprint === protecting.thumbprint) {
    const name = recorded.kek.keyProtectorName ?? "the service-managed key";
    return {
      resolved: recorded,
      block: {
        reason: chosen.reason,
        message: `${chosen.message}; the DEK stays under ${name} (${protecting.keyID}), whose key is still watched`,
      },
    };
  }
  const local = parseLocalKeyID(protecting.keyID);
  const unknown = {
    reason: Reason.KeyNotProbed,
    message: `no KeyProtector names the key ${protecting.keyID} that protects the DEK, so nothing probes it (${chosen.message})`,
  };
  const access: KeyAccess = { accessible: false, unknown, ...(lostSince ? { lostSince } : {}) };
  return {
    resolved: {
      ok: true,
      // never used for a KMS call: a key that is not ready and not accessible takes no wrap or unwrap
      kek: {
        ref: local
          ? { provider: "Local", namespace: local.namespace, keyName: local.name, keyID: protecting.keyID }
          : { provider: "AzureKeyVault", namespace: "", keyName: "", keyID: protecting.keyID },
        keyID: protecting.keyID,
        thumbprint: protecting.thumbprint,
      },
      ready: false,
      notReadyMessage: unknown.message,
      access,
    },
    block: { reason: chosen.reason, message: `${chosen.message}; ${unknown.message}` },
  };
}

/**
 * R33: whether the last probe of a key is too old to trust: older than two probe intervals, once
 * the operator has run that long (a fresh start has probed nothing yet, and that is not staleness).
 */
export function probeIsStale(input: {
  lastProbe: Date | undefined;
  now: Date;
  intervalMs: number;
  startedAt: Date;
}): boolean {
  const limit = 2 * input.intervalMs;
  if (input.now.getTime() - input.startedAt.getTime() < limit) return false;
  return !input.lastProbe || input.now.getTime() - input.lastProbe.getTime() > limit;
}

/** An accessible key whose probes are stale is Unknown (R33); anything else is as the KeyProtector said. */
export function freshAccess(
  access: KeyAccess,
  stale: boolean,
  keyID: string,
  lastProbe: Date | undefined,
): KeyAccess {
  if (!stale || !access.accessible) return access;
  return {
    accessible: false,
    unknown: {
      reason: Reason.KeyNotProbed,
      message: `the key ${keyID} has not been probed since ${lastProbe?.toISOString() ?? "the operator started"}`,
    },
  };
}

/** The protector choice a status records (the key the DEK was last put under). */
export function recordedChoice(p: { type: "ServiceManaged" | "CustomerManaged"; keyProtectorName?: string }) {
  return { type: p.type, ...(p.keyProtectorName ? { keyProtectorName: p.keyProtectorName } : {}) };
}

/** A resolution whose key's probes are stale says Unknown (R33); the prober's clock is in memory, no API call. */
export function withFreshProbe(ctx: ControllerContext, resolved: Resolved, now: Date): Resolved {
  const probes = ctx.probes;
  if (!probes || !resolved.access.accessible) return resolved;
  const lastProbe = probes.lastProbe(resolved.kek.ref);
  const stale = probeIsStale({ lastProbe, now, intervalMs: probes.intervalMs, startedAt: probes.startedAt });
  return stale
    ? { ...resolved, access: freshAccess(resolved.access, true, resolved.kek.keyID, lastProbe) }
    : resolved;
}
