import type { EnvelopeOwner, OwnerBindingError } from "../crypto/index.js";
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
