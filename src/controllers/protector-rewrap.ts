import { isOwnerBindingError, protectorWrap } from "../crypto/index.js";
import { sameKeyOtherVersion } from "../kms/key-id.js";
import { isKeyAccessError } from "../kms/provider.js";
import type { Result } from "../runtime/index.js";
import type { EnvelopeSecret, Kek } from "./dek-operations.js";
import type { OwnerStatus, PassFrame } from "./owner-pass.js";
import type { Owner } from "./pass.js";
import { type ReadyBlock, rewrapFailed } from "./rewrap.js";

/**
 * R16: the online re-wrap of a server's or a database's DEK under its new protector, SHARED by
 * both: unwrap, wrap, prove, then switch (the old wrap is retained), counted in
 * `tde_rotations_total` and recorded in the status. A move to another key is the resource's own
 * change and its own `ProtectorChanged` Event; a new version of the same key (a rotation) moves
 * every DEK under that key at once, so it is told once, on the KeyProtector (`KeyRotated`), not in
 * thousands of identical Events that would be a third of the rotation's API writes. A KMS
 * failure leaves the DEK under its current protector, says so on Ready and retries the pass with
 * backoff (`rewrapFailed`); an envelope that is not its owner's is refused (R31).
 */
export async function rewrapProtector<S extends OwnerStatus, T extends Owner<S>>(
  frame: PassFrame<S, T>,
  envelope: EnvelopeSecret,
  kek: Kek,
): Promise<{ envelope: EnvelopeSecret; block?: ReadyBlock } | { result: Result | undefined }> {
  const { ctx, of } = frame;
  const from = protectorWrap(envelope.envelope)?.keyID;
  try {
    const rewrapped = await ctx.dek.addWrap(envelope, frame.candidates(), kek, "protector", frame.check);
    ctx.envelopes.writeThrough(rewrapped.secret);
    ctx.metrics?.rotations.inc({ kind: of.kind, result: "success" });
    if (!rotatedInPlace(from, kek.keyID))
      void ctx.events.normal(
        frame.obj,
        "ProtectorChanged",
        `${of.noun} DEK re-wrapped from ${from} to ${kek.keyID}; the old wrap is retained`,
      );
    return { envelope: rewrapped };
  } catch (error) {
    ctx.metrics?.rotations.inc({ kind: of.kind, result: "error" });
    if (isOwnerBindingError(error)) return { result: await frame.refuse(error) };
    if (!isKeyAccessError(error)) throw error;
    const failed = rewrapFailed(error, kek.keyID);
    frame.draft.outcome = failed.outcome;
    return { envelope, block: failed.ready };
  }
}

/** R12, R16: a re-wrap under a new version of the key that wrapped the DEK (told on its KeyProtector). */
export function rotatedInPlace(fromKeyID: string | undefined, toKeyID: string): boolean {
  return fromKeyID !== undefined && sameKeyOtherVersion(fromKeyID, toKeyID);
}
