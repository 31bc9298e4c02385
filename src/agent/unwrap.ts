/**
 * The agent's unwrap decision (R2, R26): which wrap to try, when to fall back, and the KCV
 * check. The KMS call itself is passed in, so this is tested without a vault.
 *
 * Order: the protector wrap first. Only when its KEK is not found (KeyNotFound: a deleted key
 * or version, or a key not yet visible to this identity) are the retained wraps tried, newest
 * first: a retained wrap exists so the DEK stays reachable through the previous key while a
 * rotation settles (R16). Every other failure of the protector (disabled, expired, not yet
 * active, permission denied, authentication failed, vault unreachable, throttled) ends the
 * unwrap at once: those are how a customer revokes access, and falling back to an older key
 * would defeat the revocation. A KCV mismatch also ends it: the wrap is corrupt or foreign.
 */
import {
  type Envelope,
  KcvMismatchError,
  verifyUnwrapped,
  type Wrap,
  wrappedBytes,
} from "../crypto/index.js";
import { isKeyAccessError, type KeyAccessReason } from "../kms/provider.js";

/** Unwraps one wrap's bytes with its KEK; throws KeyAccessError when the key cannot be used. */
export type WrapUnwrapper = (wrap: Wrap, wrapped: Buffer) => Promise<Buffer>;

export interface UnwrapAttempt {
  keyID: string;
  role: Wrap["role"];
  /** "success", a KeyAccessReason, "KcvMismatch" or "Error" */
  outcome: "success" | KeyAccessReason | "KcvMismatch" | "Error";
  message?: string;
}

export interface UnwrapOutcome {
  /** the DEK: the caller zeroes it */
  dek: Buffer;
  /** the wrap that gave the DEK */
  wrap: Wrap;
  attempts: UnwrapAttempt[];
}

/** No wrap could be unwrapped; `reason` is the protector's failure (or the first one). */
export class AgentUnwrapError extends Error {
  override readonly name = "AgentUnwrapError";
  constructor(
    message: string,
    readonly reason: KeyAccessReason | "KcvMismatch" | "NoWraps" | "Error",
    readonly attempts: UnwrapAttempt[],
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** The order in which wraps are tried: the protector, then retained wraps newest first. */
export function wrapOrder(envelope: Envelope): Wrap[] {
  const protector = envelope.wraps.filter((w) => w.role === "protector");
  const retained = envelope.wraps
    .filter((w) => w.role === "retained")
    .sort((a, b) => Date.parse(b.addedAt) - Date.parse(a.addedAt));
  return [...protector, ...retained];
}

/** What the operator of a database should do about a failure, by reason. */
export function adviceFor(reason: AgentUnwrapError["reason"]): string {
  switch (reason) {
    case "KeyDisabled":
      return "the key-encryption key is disabled in its vault: enable it (or restore the customer's access) and restart the pod";
    case "KeyExpired":
      return "the key-encryption key has expired: extend its expiry or rotate the protector to a valid key, then restart the pod";
    case "KeyNotYetActive":
      return "the key-encryption key's activation date is in the future: wait for it or correct it, then restart the pod";
    case "KeyNotFound":
      return "no key that wraps this DEK exists any more: recover the deleted key (soft delete) and restart the pod";
    case "PermissionDenied":
      return "this pod's identity lacks get/unwrapKey on the key: grant them to the pod's identity (not only the operator's)";
    case "AuthenticationFailed":
      return "this pod could not authenticate to the vault: check its service account, workload identity or client id";
    case "VaultUnreachable":
      return "the vault did not answer: check the network path from this pod to the vault; the pod will retry when restarted";
    case "Throttled":
      return "the vault is throttling requests: the pod will retry when restarted";
    case "KcvMismatch":
      return "the unwrapped key does not match the envelope's key check value: the envelope is corrupt or was edited; restore it from the operator's copy";
    case "NoWraps":
      return "the envelope holds no wrap: it was shredded or never completed; check the resource's status";
    default:
      return "see the message above; the pod will retry when restarted";
  }
}

/**
 * Unwraps the envelope's DEK following the order above and returns it with the wrap that
 * worked. Throws AgentUnwrapError (messages carry key ids and reasons, never key bytes).
 */
export async function unwrapDek(envelope: Envelope, unwrapOne: WrapUnwrapper): Promise<UnwrapOutcome> {
  const order = wrapOrder(envelope);
  const attempts: UnwrapAttempt[] = [];
  if (order.length === 0) {
    throw new AgentUnwrapError(`the envelope of DEK ${envelope.dekID} holds no wrap`, "NoWraps", attempts);
  }
  let first: { reason: AgentUnwrapError["reason"]; error: unknown } | undefined;
  for (const [index, wrap] of order.entries()) {
    try {
      const unwrapped = await unwrapOne(wrap, wrappedBytes(wrap));
      const dek = verifyUnwrapped(envelope, unwrapped, wrap.thumbprint);
      attempts.push({ keyID: wrap.keyID, role: wrap.role, outcome: "success" });
      return { dek, wrap, attempts };
    } catch (error) {
      const reason: AgentUnwrapError["reason"] =
        error instanceof KcvMismatchError ? "KcvMismatch" : isKeyAccessError(error) ? error.reason : "Error";
      attempts.push({
        keyID: wrap.keyID,
        role: wrap.role,
        outcome: reason,
        message: (error as Error).message,
      });
      first ??= { reason, error };
      // Fall back to the next wrap only past a key that is not found; see the comment at the top.
      const isLast = index === order.length - 1;
      if (reason !== "KeyNotFound" || isLast) break;
    }
  }
  const failure = first as { reason: AgentUnwrapError["reason"]; error: unknown };
  const tried = attempts.map(
    (a) => `${a.role} ${a.keyID}: ${a.outcome}${a.message ? ` (${a.message})` : ""}`,
  );
  throw new AgentUnwrapError(
    `cannot unwrap DEK ${envelope.dekID}: ${failure.reason}. Tried ${tried.join("; ")}`,
    failure.reason,
    attempts,
    { cause: failure.error },
  );
}
