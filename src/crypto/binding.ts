/**
 * Owner binding (R31, R2): every envelope the operator writes names the resource it was made for
 * (kind, namespace, name) and carries a tag, HMAC-SHA256 over "kind/namespace/name" under a key
 * derived from the DEK with HKDF-SHA256 and a purpose label. Only a holder of the DEK can make a
 * tag, so a copy of one resource's envelope planted as another's is recognised: its clear owner
 * is not the one expected, or its tag does not match. The tag is a PRF output under a key derived
 * for this purpose only: it tells nothing about the DEK (nor does it relate to the KCV).
 *
 * The uid is left out on purpose: a dropped database's retained envelope (R25) still serves a
 * restore, or a re-creation, under the same name.
 */
import { createHmac, hkdfSync, timingSafeEqual } from "node:crypto";
import { isDekLength } from "./dek.js";
import {
  type Envelope,
  EnvelopeError,
  type EnvelopeOwner,
  isOwnerPart,
  type OwnerBinding,
  withOwnerBinding,
} from "./envelope.js";
import { kcvMatches } from "./kcv.js";

/** HKDF info: the purpose (and version) of the derived key. */
export const OWNER_BINDING_LABEL = "tde.dev/owner-binding/v1";
const BINDING_KEY_LENGTH = 32;

/** "kind/namespace/name": unambiguous, as no part may contain "/". */
export function ownerSubject(owner: EnvelopeOwner): string {
  for (const part of [owner.kind, owner.namespace, owner.name]) {
    if (!isOwnerPart(part)) {
      throw new EnvelopeError("an owner needs a kind, a namespace and a name, none empty or with a '/'");
    }
  }
  return `${owner.kind}/${owner.namespace}/${owner.name}`;
}

/** The binding tag of this DEK to this owner, hex (64 characters). */
export function computeOwnerTag(dek: Uint8Array, owner: EnvelopeOwner): string {
  if (!isDekLength(dek)) throw new EnvelopeError("an owner binding is made from a 32-byte DEK");
  const subject = ownerSubject(owner);
  const key = Buffer.from(hkdfSync("sha256", dek, Buffer.alloc(0), OWNER_BINDING_LABEL, BINDING_KEY_LENGTH));
  try {
    return createHmac("sha256", key).update(subject, "utf8").digest("hex");
  } finally {
    key.fill(0);
  }
}

/**
 * The envelope bound to `owner` (any earlier binding replaced). The DEK must be the envelope's
 * (KCV checked): a tag made from another key would make the envelope unusable.
 */
export function bindEnvelope(envelope: Envelope, dek: Uint8Array, owner: EnvelopeOwner): Envelope {
  if (!isDekLength(dek) || !kcvMatches(dek, envelope.kcv)) {
    throw new EnvelopeError(`the key given to bind DEK ${envelope.dekID} is not that DEK (KCV mismatch)`);
  }
  const binding: OwnerBinding = {
    kind: owner.kind,
    namespace: owner.namespace,
    name: owner.name,
    tag: computeOwnerTag(dek, owner),
  };
  return withOwnerBinding(envelope, binding);
}

export function sameOwner(a: EnvelopeOwner, b: EnvelopeOwner): boolean {
  return a.kind === b.kind && a.namespace === b.namespace && a.name === b.name;
}

/** Why an envelope is refused for an owner. */
export type OwnerBindingProblem =
  /** no binding, and the owner's status does not already record this DEK */
  | "Unbound"
  /** the clear binding names another resource */
  | "OtherOwner"
  /** the clear binding names this owner but the tag was not made with this DEK for it */
  | "TagMismatch";

/**
 * The envelope is not this owner's: it must not be adopted, unwrapped for a re-wrap or copied.
 * The message names the DEK id and owners only, never key bytes.
 */
export class OwnerBindingError extends Error {
  override readonly name = "OwnerBindingError";
  constructor(
    readonly problem: OwnerBindingProblem,
    readonly dekID: string,
    readonly expected: EnvelopeOwner,
    readonly stated?: EnvelopeOwner,
  ) {
    super(ownerBindingMessage(problem, dekID, expected, stated));
  }
}

function ownerBindingMessage(
  problem: OwnerBindingProblem,
  dekID: string,
  expected: EnvelopeOwner,
  stated: EnvelopeOwner | undefined,
): string {
  const want = `${expected.kind} ${expected.namespace}/${expected.name}`;
  switch (problem) {
    case "Unbound":
      return `the envelope of DEK ${dekID} carries no owner binding and ${want} never recorded it: it was not made for ${want} by the operator`;
    case "OtherOwner":
      return `the envelope of DEK ${dekID} is bound to ${stated ? `${stated.kind} ${stated.namespace}/${stated.name}` : "another resource"}, not to ${want}: it is a copy of another resource's envelope`;
    case "TagMismatch":
      return `the owner binding of the envelope of DEK ${dekID} does not match ${want}: it was altered, or copied from another resource's envelope`;
  }
}

/** What may be done with an envelope before unwrapping it for an owner. */
export type BindingPrecheck =
  /** bound to this owner in clear: unwrap, then `verifyOwnerBinding` */
  | "verify"
  /** written before owner binding, and the owner's status records this DEK: accepted as it is */
  | "legacy";

/**
 * The checks that need no DEK, made before any unwrap so that an envelope that is plainly
 * someone else's is never even unwrapped: an unbound envelope is accepted only when the owner's
 * status already records its DEK (`recorded`: written before owner binding existed); a binding
 * naming another owner is refused. Throws OwnerBindingError.
 */
export function precheckOwnerBinding(
  envelope: Envelope,
  owner: EnvelopeOwner,
  recorded: boolean,
): BindingPrecheck {
  const binding = envelope.ownerBinding;
  if (!binding) {
    if (recorded) return "legacy";
    throw new OwnerBindingError("Unbound", envelope.dekID, owner);
  }
  if (!sameOwner(binding, owner)) {
    throw new OwnerBindingError("OtherOwner", envelope.dekID, owner, {
      kind: binding.kind,
      namespace: binding.namespace,
      name: binding.name,
    });
  }
  return "verify";
}

/**
 * After an unwrap and its KCV check: a bound envelope's tag must be the one this DEK makes for
 * this owner (constant-time comparison), and an unbound one must pass the precheck. On a
 * refusal the DEK is zeroed and an OwnerBindingError thrown. Returns the DEK.
 */
export function verifyOwnerBinding(
  envelope: Envelope,
  dek: Buffer,
  owner: EnvelopeOwner,
  recorded: boolean,
): Buffer {
  try {
    if (precheckOwnerBinding(envelope, owner, recorded) === "legacy") return dek;
    const expected = Buffer.from(computeOwnerTag(dek, owner), "hex");
    const stated = Buffer.from(envelope.ownerBinding?.tag ?? "", "hex");
    if (stated.length !== expected.length || !timingSafeEqual(stated, expected)) {
      throw new OwnerBindingError("TagMismatch", envelope.dekID, owner);
    }
    return dek;
  } catch (error) {
    dek.fill(0);
    throw error;
  }
}

export function isOwnerBindingError(error: unknown): error is OwnerBindingError {
  return error instanceof OwnerBindingError;
}
