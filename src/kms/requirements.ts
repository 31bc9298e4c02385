/**
 * R5: the requirements a key must meet before it may protect anything. `checkRequirements` is a
 * pure function returning every unmet requirement separately; `proveAccess` is the one check that
 * needs the vault: a real wrap/unwrap round trip.
 */
import { randomBytes, timingSafeEqual } from "node:crypto";
import {
  isKeyAccessError,
  type KekProvider,
  type KeyAccessReason,
  type KeyDescription,
  type KeyReference,
} from "./provider.js";

export interface KeyRequirements {
  allowedKeySizes?: number[];
  allowExpiry?: boolean;
  requireRecoverable?: boolean;
  minimumRecoverableDays?: number;
}

export const DEFAULT_KEY_REQUIREMENTS: Required<KeyRequirements> = Object.freeze({
  allowedKeySizes: [2048, 3072],
  allowExpiry: false,
  requireRecoverable: true,
  minimumRecoverableDays: 90,
});

export type RequirementReason =
  | "KeyTypeNotRSA"
  | "KeySizeNotAllowed"
  | "KeyDisabled"
  | "KeyNotYetActive"
  | "KeyHasExpiry"
  | "KeyExpired"
  | "NotRecoverable"
  | "RecoverableDaysTooFew";

export interface UnmetRequirement {
  reason: RequirementReason;
  message: string;
}

const RECOVERABLE_LEVELS = new Set([
  "Recoverable",
  "Recoverable+ProtectedSubscription",
  "CustomizedRecoverable",
  "CustomizedRecoverable+ProtectedSubscription",
]);

/** Every unmet requirement, in a stable order; empty when the key may be used. */
export function checkRequirements(
  key: KeyDescription,
  requirements: KeyRequirements = {},
  now: Date = new Date(),
): UnmetRequirement[] {
  const req = { ...DEFAULT_KEY_REQUIREMENTS, ...stripUndefined(requirements) };
  const unmet: UnmetRequirement[] = [];
  const id = key.keyID;
  if (key.keyType !== "RSA" && key.keyType !== "RSA-HSM") {
    unmet.push({
      reason: "KeyTypeNotRSA",
      message: `key ${id} is of type ${key.keyType}; create an RSA key (RSA or RSA-HSM) and point the KeyProtector at it`,
    });
  } else if (!req.allowedKeySizes.includes(key.keySize)) {
    unmet.push({
      reason: "KeySizeNotAllowed",
      message: `key ${id} is ${key.keySize} bits; use a key of ${req.allowedKeySizes.join(" or ")} bits, or add ${key.keySize} to spec.requirements.allowedKeySizes`,
    });
  }
  if (!key.enabled) {
    unmet.push({
      reason: "KeyDisabled",
      message: `key ${id} is disabled; enable it in the vault or choose an enabled version`,
    });
  }
  if (key.notBefore && key.notBefore.getTime() > now.getTime()) {
    unmet.push({
      reason: "KeyNotYetActive",
      message: `key ${id} is not active before ${key.notBefore.toISOString()}; wait until then or remove its activation date`,
    });
  }
  if (key.expiresOn) {
    if (key.expiresOn.getTime() <= now.getTime()) {
      unmet.push({
        reason: "KeyExpired",
        message: `key ${id} expired at ${key.expiresOn.toISOString()}; extend or remove its expiry, or rotate to a new version`,
      });
    } else if (!req.allowExpiry) {
      unmet.push({
        reason: "KeyHasExpiry",
        message: `key ${id} expires at ${key.expiresOn.toISOString()}; remove the expiry date, or set spec.requirements.allowExpiry: true`,
      });
    }
  }
  if (req.requireRecoverable) {
    const level = key.recoveryLevel ?? "";
    if (!RECOVERABLE_LEVELS.has(level)) {
      unmet.push({
        reason: "NotRecoverable",
        message: `the vault of key ${id} has recovery level ${level || "unknown"}; enable soft delete and purge protection (recovery level Recoverable), or set spec.requirements.requireRecoverable: false`,
      });
    } else if ((key.recoverableDays ?? 0) < req.minimumRecoverableDays) {
      unmet.push({
        reason: "RecoverableDaysTooFew",
        message: `the vault of key ${id} keeps deleted keys ${key.recoverableDays ?? 0} days; set its soft-delete retention to at least ${req.minimumRecoverableDays} days, or lower spec.requirements.minimumRecoverableDays`,
      });
    }
  }
  return unmet;
}

function stripUndefined<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export type Permission = "get" | "wrapKey" | "unwrapKey";

export type AccessProof =
  | { ok: true; permissions: Permission[]; keyID: string; thumbprint: string; provedAt: Date }
  | {
      ok: false;
      /** Permissions proven before the failure. */
      permissions: Permission[];
      /** The operation that failed. */
      failedAt: Permission | "verify";
      reason: KeyAccessReason | "RoundTripMismatch" | "Error";
      message: string;
      retryAfterMs?: number;
    };

/**
 * R5: proves `get`, `wrapKey` and `unwrapKey` by doing them: describe the key, wrap a random
 * 32-byte probe (or a copy of `probeBytes`) and unwrap it again, comparing the result. The probe
 * is zeroed afterwards.
 */
export async function proveAccess(
  provider: KekProvider,
  ref: KeyReference,
  now: () => Date = () => new Date(),
  /** the description a caller has just read: `get` is proven by it, and not asked again */
  described?: KeyDescription,
  /** the 32 bytes to wrap (copied; default random): tests replaying recorded vault exchanges fix it */
  probeBytes?: Buffer,
): Promise<AccessProof> {
  const permissions: Permission[] = [];
  const probe = probeBytes ? Buffer.from(probeBytes) : randomBytes(32);
  let step: Permission = "get";
  let unwrapped: Buffer | undefined;
  try {
    const description = described ?? (await provider.describe(ref));
    permissions.push("get");
    step = "wrapKey";
    // the version just described, so the proof and the thumbprint are of one version, and the
    // vault is not asked for its current version twice
    const wrapped = await provider.wrap(
      description.version ? { ...ref, keyVersion: description.version } : ref,
      probe,
    );
    permissions.push("wrapKey");
    step = "unwrapKey";
    unwrapped = await provider.unwrap({ ...ref, keyID: wrapped.keyID }, wrapped.wrapped);
    permissions.push("unwrapKey");
    if (unwrapped.length !== probe.length || !timingSafeEqual(unwrapped, probe)) {
      return {
        ok: false,
        permissions,
        failedAt: "verify",
        reason: "RoundTripMismatch",
        message: `unwrapping with ${wrapped.keyID} did not give back what was wrapped; the vault or key is misbehaving`,
      };
    }
    return {
      ok: true,
      permissions,
      keyID: wrapped.keyID,
      thumbprint: description.thumbprint,
      provedAt: now(),
    };
  } catch (error) {
    if (isKeyAccessError(error)) {
      return {
        ok: false,
        permissions,
        failedAt: step,
        reason: error.reason,
        message: error.message,
        ...(error.retryAfterMs === undefined ? {} : { retryAfterMs: error.retryAfterMs }),
      };
    }
    return { ok: false, permissions, failedAt: step, reason: "Error", message: safeMessage(error) };
  } finally {
    probe.fill(0);
    unwrapped?.fill(0);
  }
}

function safeMessage(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : "unknown error";
}
