import { Reason } from "../api/index.js";
import { type EnvelopeOwner, isOwnerBindingError, type OwnerBindingError } from "../crypto/index.js";
import { isKeyAccessError } from "../kms/provider.js";
import type { KubeObject } from "../runtime/index.js";

/** The owner an envelope of this object is bound to: kind, namespace and name (not uid, R25). */
export function ownerOf(kind: "EncryptedServer" | "EncryptedDatabase", obj: KubeObject): EnvelopeOwner {
  return { kind, namespace: obj.metadata?.namespace ?? "", name: obj.metadata?.name ?? "" };
}

/**
 * What the Ready condition and the Warning event say when an envelope is refused: which Secret,
 * why (the error names the DEK id and owners only, never key material) and what to do.
 * `own`: the Secret is the resource's own envelope (deleting a foreign one lets the operator
 * create the resource's DEK); otherwise it is the primary's or the restore source's.
 */
export function foreignEnvelopeMessage(
  error: OwnerBindingError,
  secret: { namespace: string; name: string },
  own: boolean,
): string {
  const where = `${secret.namespace}/${secret.name}`;
  const owner = `${error.expected.kind} ${error.expected.namespace}/${error.expected.name}`;
  return (
    `the envelope Secret ${where} is not ${owner}'s: ${error.message}. Its DEK was not re-wrapped or copied and the Secret was not changed (R31). ` +
    (own
      ? `Delete the Secret if it is not ${owner}'s own envelope: the operator then creates a new DEK for ${owner}`
      : `Delete that foreign Secret, or put ${owner}'s own envelope back in its place; until then nothing is copied from it`)
  );
}

/** What a reconciler reports when an envelope use is refused: the Ready condition, and whether to warn. */
export interface EnvelopeRefusal {
  reason: string;
  message: string;
  /** the envelope is not this resource's (R31): a Warning event too */
  foreign: boolean;
  /** look again after this long (an adoption waiting for the key that proves the envelope) */
  requeueAfterMs?: number;
}

/** How long an adoption whose unwrap failed waits before trying the key again. */
const ADOPTION_RETRY_MS = 30_000;

/**
 * R31: the refusal for an envelope use that failed, or undefined when the error is not one (the
 * caller throws it). An envelope that is not its owner's is refused for good until the Secret
 * changes; an envelope the status does not record (`adopting`) whose unwrap failed waits for
 * the key that would prove it is the resource's own.
 */
export function envelopeRefusal(
  error: unknown,
  secret: { namespace: string; name: string },
  options: { own: boolean; adopting: boolean; noun: "server" | "database" },
): EnvelopeRefusal | undefined {
  if (isOwnerBindingError(error)) {
    return {
      reason: Reason.ForeignEnvelope,
      message: foreignEnvelopeMessage(error, secret, options.own),
      foreign: true,
    };
  }
  if (options.adopting && isKeyAccessError(error)) {
    const { noun } = options;
    return {
      reason: error.reason,
      message: `the envelope Secret ${secret.namespace}/${secret.name} exists but this ${noun}'s status does not record it: it is taken on once it unwraps and proves to be this ${noun}'s (R31), and the unwrap failed: ${error.message}`,
      foreign: false,
      requeueAfterMs: ADOPTION_RETRY_MS,
    };
  }
  return undefined;
}
