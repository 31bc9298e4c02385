import { Reason } from "../api/index.js";

/**
 * R1, R2, R4: what a server or database observed of its own envelope Secret, against the DEK id
 * its status records. Once a status records a DEK id the operator never makes another DEK for
 * that resource: a missing, unreadable or different envelope is reported, never replaced.
 */
export interface EnvelopeObservation {
  kind: "EncryptedServer" | "EncryptedDatabase";
  namespace: string;
  /** the envelope Secret's name */
  secretName: string;
  /** the DEK id the resource's status records, if any */
  recordedDekID?: string | undefined;
  /** what the Secret holds: absent, unreadable (why), or an envelope of this DEK id */
  found: { missing: true } | { unreadable: string } | { dekID: string };
}

/** A terminal condition: Ready=False and Stalled=True with this reason and message, an Event, a metric. */
export interface EnvelopeLoss {
  reason:
    | typeof Reason.EnvelopeMissing
    | typeof Reason.EnvelopeUnreadable
    | typeof Reason.EnvelopeDEKMismatch;
  message: string;
}

/**
 * Undefined when the envelope is as the status says (or nothing is recorded yet and the Secret is
 * absent: the DEK is still to be made). A Secret that cannot be read is reported even before a
 * DEK id is recorded, since no new envelope can be written in its place. Messages name the Secret
 * and the DEK id, never key material, and say what to do.
 */
export function envelopeLoss(o: EnvelopeObservation): EnvelopeLoss | undefined {
  const secret = `${o.namespace}/${o.secretName}`;
  const what = o.kind === "EncryptedServer" ? "server" : "database";
  const dek = o.recordedDekID ? `DEK ${o.recordedDekID}` : "this resource's DEK";
  const fix =
    `Restore the Secret ${secret} from a backup (it holds the DEK only wrapped, so a backup of it is safe to keep), ` +
    `or, if no copy of it exists, restore the ${what}'s data from a copy into a new resource (spec.restore). ` +
    `The operator never makes a new DEK for a resource whose status records one: data encrypted under ${dek} could never be decrypted again`;
  if ("unreadable" in o.found) {
    return {
      reason: Reason.EnvelopeUnreadable,
      message: `the envelope Secret ${secret} holding ${dek} cannot be read: ${o.found.unreadable}. ${fix}.`,
    };
  }
  if (!o.recordedDekID) return undefined;
  if ("missing" in o.found) {
    return {
      reason: Reason.EnvelopeMissing,
      message: `the envelope Secret ${secret} holding ${dek} is missing. ${fix}.`,
    };
  }
  if (o.found.dekID !== o.recordedDekID) {
    return {
      reason: Reason.EnvelopeDEKMismatch,
      message: `the envelope Secret ${secret} holds DEK ${o.found.dekID}, but this ${what}'s status records ${dek}: it was replaced and is not used. ${fix}.`,
    };
  }
  return undefined;
}
