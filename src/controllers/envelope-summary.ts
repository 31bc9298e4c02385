/**
 * What the operator's cache of envelope Secrets holds of each (a transform at the informer, as
 * controller-runtime's cache transforms): the Secret's metadata and type, and the envelope decoded
 * once (not at every reconcile), without its retained wraps' bytes (envelopeSummary). That is all
 * a decision needs (which keys wrap the DEK, in which role, since when, for whom) and what a
 * rotation unwraps (the protector's wrap); an envelope with retained wraps is read whole when it is
 * unwrapped or rewritten (DekOperations.whole), so memory does not grow with the rotations an
 * envelope has been through. An envelope that does not decode is kept as it is, for its owner to
 * report (R2).
 */
import { decodeEnvelopeSecret, type Envelope, envelopeSummary, isEnvelopeSummary } from "../crypto/index.js";
import type { KubeObject } from "../runtime/index.js";
import type { EnvelopeSecret } from "./dek-operations.js";

const SUMMARY = Symbol("tde.dev/envelope-summary");

type Cached = KubeObject & { [SUMMARY]?: Envelope; data?: Record<string, string>; type?: string };

/**
 * The cache's form of an envelope Secret: a new object, `secret` itself untouched; `share` gives
 * the envelope's repeated strings the cache's copy (the decoded envelope is frozen).
 */
export function envelopeCacheForm(secret: KubeObject, share?: (s: string) => string): KubeObject {
  let envelope: Envelope;
  try {
    envelope = decodeEnvelopeSecret(secret as Cached);
  } catch {
    return secret;
  }
  const { data: _data, ...rest } = secret as Cached;
  return Object.assign(rest, { [SUMMARY]: envelopeSummary(envelope, share) });
}

/**
 * A cached envelope Secret with its envelope: the summary (`partial`) when the cache holds one,
 * else decoded from its data (throws EnvelopeError when it does not decode).
 */
export function envelopeFromCache(secret: KubeObject): EnvelopeSecret {
  const summary = (secret as Cached)[SUMMARY];
  if (summary) return { secret, envelope: summary, ...(isEnvelopeSummary(summary) ? { partial: true } : {}) };
  return { secret, envelope: decodeEnvelopeSecret(secret as Cached) };
}
