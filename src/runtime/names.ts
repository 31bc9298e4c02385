import { createHash } from "node:crypto";

/**
 * R32: the names and label values the operator derives from a user's object name. Every name the
 * API server accepts for a server or database (a DNS-1123 subdomain: up to 253 characters,
 * lowercase letters, digits, '-' and '.') must give a derived name the API server accepts too, and
 * two different names must never give the same derived name. A value that fits is kept as it is
 * (readable, and unchanged for every object that worked before); one that does not is cut to a
 * readable prefix followed by a stable hash of the whole value.
 */

/** Kubernetes' limit for an object name (DNS-1123 subdomain). */
export const MAX_NAME_LENGTH = 253;
/** Kubernetes' limit for a label value. */
export const MAX_LABEL_VALUE_LENGTH = 63;
/** Hex characters of the SHA-256 of the whole value kept when a value is shortened (64 bits). */
const HASH_LENGTH = 16;

function hashOf(value: string): string {
  return createHash("sha256").update(value, "utf8").digest("hex").slice(0, HASH_LENGTH);
}

/**
 * `prefix + name` if it fits in `max` characters, else a prefix of it and `-<hash of the whole
 * name>`. The shortened part never ends in '.' or '-' before the hash, so the result is still a
 * DNS-1123 subdomain (each dot-separated part starts and ends with a letter or digit). Distinct
 * inputs give distinct outputs: a kept value is at most `max` long and a shortened one exactly
 * `max` long with a hash of its whole input, so the two kinds meet only on a 64-bit hash collision
 * between inputs that share the same first characters.
 */
export function boundedName(prefix: string, name: string, max: number = MAX_NAME_LENGTH): string {
  const whole = `${prefix}${name}`;
  if (whole.length <= max) return whole;
  const hash = hashOf(whole);
  const head = whole.slice(0, max - HASH_LENGTH - 1).replace(/[.-]+$/, "");
  return `${head}-${hash}`;
}

/**
 * A label value naming an object: the name itself when it fits (63 characters), else a readable
 * prefix and a hash of the whole name. Only for selecting and reading by eye: an owner is always
 * found by its full name (an annotation and the envelope's owner binding), never by this value.
 */
export function labelValueFor(name: string): string {
  return boundedName("", name, MAX_LABEL_VALUE_LENGTH);
}
