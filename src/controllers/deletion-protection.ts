/**
 * R33: a KeyProtector, a Local KEK Secret and an envelope Secret are held by a finalizer, like
 * Kubernetes' protection of a PersistentVolumeClaim in use: the finalizer is added once to every
 * such object, and when a deletion is asked it is removed only once nothing depends on the
 * object. Until then the object stays (Terminating, still usable) and the dependants are named.
 */

/** The finalizer that holds a key or an envelope while something depends on it. */
export const IN_USE_FINALIZER = "tde.dev/in-use";

/** What to do about an object's protection: add the finalizer, release it, wait, or nothing. */
export type ProtectionStep = "add" | "release" | "wait" | "none";

export interface ProtectionInput {
  /** a deletion was asked (metadata.deletionTimestamp) */
  deleting: boolean;
  /** the object carries IN_USE_FINALIZER */
  protected: boolean;
  /** who depends on it, for people to read ("EncryptedServer shop/orders") */
  dependants: readonly string[];
}

export function protectionStep(input: ProtectionInput): ProtectionStep {
  if (!input.deleting) return input.protected ? "none" : "add";
  if (!input.protected) return "none";
  return input.dependants.length > 0 ? "wait" : "release";
}

/** How many dependants a message names before it says how many more there are. */
const NAMED = 10;

/**
 * The message of a waiting deletion: which object, who depends on it (sorted, the first ten
 * named), and what to do. Stable for the same dependants, so a waiting deletion rewrites nothing.
 */
export function deletionBlockedMessage(
  subject: string,
  dependants: readonly string[],
  advice: string,
): string {
  const sorted = [...dependants].sort();
  const named = sorted.slice(0, NAMED).join(", ");
  const more = sorted.length > NAMED ? ` and ${sorted.length - NAMED} more` : "";
  const count = sorted.length === 1 ? "1 dependant uses it" : `${sorted.length} dependants use it`;
  return `the deletion of ${subject} waits (R33): ${count}: ${named}${more}. ${advice}; it is deleted as soon as nothing uses it, and stays usable until then`;
}
