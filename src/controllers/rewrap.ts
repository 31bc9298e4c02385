import { Reason } from "../api/index.js";
import type { KeyAccessError } from "../kms/provider.js";
import { kmsRetry, type Step } from "./step.js";

/** Why Ready is False, when something holds the resource back. */
export interface ReadyBlock {
  reason: string;
  message: string;
}

/**
 * R16: a re-wrap under the new protector failed with a KMS error. The DEK stays under its current
 * protector (the old wrap is untouched); Ready says why; and the pass is retried with per-key
 * backoff, honouring the vault's Retry-After: the key's probe may well be healthy, and then no
 * other event would ever bring the resource back to the re-wrap (issue #15).
 */
export function rewrapFailed(
  error: KeyAccessError,
  targetKeyID: string,
): { ready: ReadyBlock; outcome: Step } {
  return {
    ready: {
      reason: error.reason,
      message: `re-wrapping the DEK under ${targetKeyID} failed: ${error.message}; the DEK stays under its current protector`,
    },
    outcome: kmsRetry(error),
  };
}

/**
 * R5, R16: a new protector whose key does not meet its requirements or is not accessible cannot
 * take the DEK yet: Ready says why, and the DEK stays under its current protector.
 */
export function cannotTakeDEK(resolved: {
  notReadyMessage?: string;
  access: { detail?: string };
}): ReadyBlock {
  return {
    reason: Reason.KeyProtectorNotReady,
    message: `the new protector cannot take the DEK yet (${resolved.notReadyMessage ?? resolved.access.detail ?? "not accessible"}); the DEK stays under its current protector`,
  };
}
