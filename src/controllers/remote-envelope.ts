import { shortThumbprint } from "../api/index.js";
import type { Envelope, Wrap } from "../crypto/index.js";
import type { EnvelopeSecret } from "./dek-operations.js";

/** A key of this cluster that can unwrap: its thumbprint (R3) and its own key id, with version. */
export interface LocalKey {
  thumbprint: string;
  keyID: string;
}

/**
 * R3, R20 across clusters: the primary's envelope as this cluster's keys read it. Its wraps carry
 * the primary's vault's key ids, which mean nothing here; a wrap is kept only when its thumbprint
 * is on the primary's current key list and a key of this cluster holds the same key material,
 * and its key id becomes that key's. The wrapped bytes are untouched (RSA-OAEP under the same
 * key material unwraps anywhere), so the DEK is only ever unwrapped here, never sent. Pure.
 */
export function localizedEnvelope(
  source: EnvelopeSecret,
  cluster: string,
  current: ReadonlySet<string>,
  keyFor: (thumbprint: string) => LocalKey | undefined,
): { ok: true; source: EnvelopeSecret } | { ok: false; missing: string[]; message: string } {
  const wraps: Wrap[] = [];
  for (const w of source.envelope.wraps) {
    const local = current.has(w.thumbprint) ? keyFor(w.thumbprint) : undefined;
    if (local) wraps.push({ ...w, keyID: local.keyID });
  }
  if (wraps.length === 0) {
    const missing = source.envelope.wraps.map((w) => w.thumbprint).filter((t) => current.has(t));
    return {
      ok: false,
      missing,
      message: `no usable KeyProtector in this namespace holds a key of the primary's current key list (${missing.map(shortThumbprint).join(", ") || "none"}): import the same key material into this region's vault and add a KeyProtector for it (R20)`,
    };
  }
  const envelope: Envelope = { ...source.envelope, wraps };
  const meta = source.secret.metadata ?? {};
  // named by cluster too: a refusal remembered for this Secret never applies to a local one
  const secret = { ...source.secret, metadata: { ...meta, namespace: `${cluster}:${meta.namespace ?? ""}` } };
  return { ok: true, source: { secret, envelope } };
}
