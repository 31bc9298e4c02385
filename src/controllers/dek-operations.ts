import {
  addWrap,
  bindEnvelope,
  computeKcv,
  createEnvelope,
  decodeEnvelopeSecret,
  dropWrap,
  type Envelope,
  type EnvelopeOwner,
  encodeEnvelope,
  envelopeSecret,
  findWrapByThumbprint,
  generateDek,
  isOwnerBindingError,
  newDekID,
  type OwnerBindingError,
  ownerSubject,
  precheckOwnerBinding,
  protectorWrap,
  setProtector,
  verifyOwnerBinding,
  verifyUnwrapped,
  type Wrap,
  wrappedBytes,
  zeroize,
} from "../crypto/index.js";
import { parseLocalKeyID } from "../kms/local.js";
import {
  isKeyAccessError,
  KeyAccessError,
  type KeyReference,
  type KmsRegistry,
  refForKeyID,
} from "../kms/provider.js";
import {
  ApiError,
  isAlreadyExists,
  isNotFound,
  type KubeClient,
  type KubeObject,
  removeFinalizer,
} from "../runtime/index.js";
import { labelValueFor } from "../runtime/names.js";
import { IN_USE_FINALIZER } from "./deletion-protection.js";
import {
  ENVELOPE_LABEL,
  OWNER_KIND_LABEL,
  OWNER_NAME_ANNOTATION,
  OWNER_NAME_LABEL,
  SecretKind,
} from "./resources.js";

/** A KEK ready to wrap: where it is, the exact version and its thumbprint. */
export interface Kek {
  ref: KeyReference;
  keyID: string;
  thumbprint: string;
  /** the KeyProtector naming it (absent for the service-managed key) */
  keyProtectorName?: string;
}

export interface EnvelopeSecret {
  secret: KubeObject;
  envelope: Envelope;
  /**
   * From the cache: the envelope is a summary (its retained wraps have no bytes, see
   * envelope-summary.ts). Whatever unwraps or writes reads it whole first (`whole`).
   */
  partial?: true;
}

/**
 * R31: on whose behalf an envelope is used, and the DEK id that owner's status already records
 * (if any). Every unwrap checks the envelope's owner binding against `owner`; an envelope with
 * no binding (written before owner binding existed) passes only when `recordedDekID` is its DEK.
 */
export interface OwnerCheck {
  owner: EnvelopeOwner;
  recordedDekID?: string | undefined;
}

const recorded = (envelope: Envelope, check: OwnerCheck) => envelope.dekID === check.recordedDekID;

/** How many refusals (after an unwrap) are remembered, so a planted Secret costs one unwrap per version. */
const REFUSALS_KEPT = 1024;

/** Whether a wrap's key id names a version of the key a reference points at (R3 aside: by location). */
export function keyIDBelongsTo(ref: KeyReference, keyID: string): boolean {
  if (ref.provider === "Local") {
    const parsed = parseLocalKeyID(keyID);
    return parsed !== undefined && parsed.namespace === ref.namespace && parsed.name === ref.keyName;
  }
  const base = `${(ref.vaultURL ?? "").replace(/\/+$/, "")}/keys/${ref.keyName}/`.toLowerCase();
  return keyID.toLowerCase().startsWith(base);
}

/**
 * DEK work for the controllers (R1, R2, R4, R16): create an envelope with exactly one wrap,
 * unwrap with KCV check, add a wrap under another key. Plaintext DEKs exist only inside these
 * methods and are zeroed before they return.
 */
export class DekOperations {
  /**
   * Envelope Secret versions refused for an owner after an unwrap (a tag that did not match):
   * the same version is refused again without asking the KMS, so a planted Secret cannot make
   * the operator unwrap with its keys on every reconcile. Kept in memory, oldest dropped first.
   */
  private readonly refusals = new Map<string, OwnerBindingError>();

  constructor(
    private readonly kms: KmsRegistry,
    private readonly client: KubeClient,
  ) {}

  async read(namespace: string, name: string): Promise<EnvelopeSecret | undefined> {
    try {
      const secret = await this.client.get(SecretKind, namespace, name);
      return {
        secret,
        envelope: decodeEnvelopeSecret(secret as { type?: string; data?: Record<string, string> }),
      };
    } catch (error) {
      if (isNotFound(error)) return undefined;
      throw error;
    }
  }

  /**
   * The envelope with its wraps' bytes: `current` itself, or (from the cache) the Secret read from
   * the API server. A Secret changed since the cache saw it is a conflict (409): the caller
   * re-plans on what is there now rather than act on what it did not decide on.
   */
  async whole(current: EnvelopeSecret): Promise<EnvelopeSecret> {
    if (!current.partial) return current;
    const meta = current.secret.metadata ?? {};
    const read = await this.read(meta.namespace ?? "", meta.name ?? "");
    if (!read)
      throw new ApiError(404, "NotFound", `the envelope Secret ${meta.namespace}/${meta.name} is gone`);
    if (read.secret.metadata?.resourceVersion !== meta.resourceVersion)
      throw new ApiError(
        409,
        "Conflict",
        `the envelope Secret ${meta.namespace}/${meta.name} changed since it was cached; planning again`,
      );
    return read;
  }

  /**
   * A new DEK wrapped once under `kek`, bound to its owner (R31), stored as a Secret of type
   * tde.dev/envelope. The Secret's name is deterministic: if it already exists (a crash after
   * creating it), that envelope is adopted if it proves to be this owner's (`adopt`) and the new
   * DEK is discarded, so a resource never has two DEKs.
   */
  async create(
    namespace: string,
    name: string,
    kek: Kek,
    owner: { kind: string; name: string },
    adopt: { candidates: readonly KeyReference[]; recordedDekID?: string | undefined },
  ): Promise<EnvelopeSecret> {
    const dek = generateDek();
    let envelope: Envelope;
    try {
      envelope = bindEnvelope(createEnvelope(newDekID(), computeKcv(dek)), dek, { ...owner, namespace });
      const wrapped = await this.kms.providerFor(kek.ref).wrap(refForKeyID(kek.ref, kek.keyID), dek);
      envelope = addWrap(envelope, {
        keyID: wrapped.keyID,
        thumbprint: kek.thumbprint,
        wrapped: wrapped.wrapped,
        role: "protector",
      });
    } finally {
      zeroize(dek);
    }
    return this.store(namespace, name, envelope, owner, adopt);
  }

  /**
   * R31: before the operator takes on an envelope its owner's status does not record (a crash
   * between writing the envelope and the status, or a Secret planted under the envelope's name),
   * it proves the envelope is this owner's: bound to it in clear (checked before any unwrap),
   * then unwrapped, KCV-checked and its binding tag verified. An envelope the status records is
   * taken as it is (no KMS call on a plain reconcile). Throws OwnerBindingError or the unwrap's
   * error; nothing is written.
   */
  async adopt(
    current: EnvelopeSecret,
    candidates: readonly KeyReference[],
    check: OwnerCheck,
  ): Promise<EnvelopeSecret> {
    if (recorded(current.envelope, check)) return current;
    const { dek } = await this.unwrapSecret(current, candidates, check);
    zeroize(dek);
    return current;
  }

  /** `unwrap` of a stored envelope, remembering a refusal of this Secret version (see `refusals`). */
  private async unwrapSecret(
    current: EnvelopeSecret,
    candidates: readonly KeyReference[],
    check: OwnerCheck,
  ): Promise<{ dek: Buffer; wrap: Wrap }> {
    const meta = current.secret.metadata;
    const key = meta?.resourceVersion
      ? `${meta.namespace}/${meta.name}@${meta.resourceVersion} for ${ownerSubject(check.owner)} (${check.recordedDekID ?? ""})`
      : undefined;
    const known = key ? this.refusals.get(key) : undefined;
    if (known) throw known;
    try {
      return await this.unwrap((await this.whole(current)).envelope, candidates, check);
    } catch (error) {
      if (key && isOwnerBindingError(error) && error.problem === "TagMismatch") {
        if (this.refusals.size >= REFUSALS_KEPT) this.refusals.delete(this.refusals.keys().next().value!);
        this.refusals.set(key, error);
      }
      throw error;
    }
  }

  private async store(
    namespace: string,
    name: string,
    envelope: Envelope,
    owner: { kind: string; name: string },
    adopt: { candidates: readonly KeyReference[]; recordedDekID?: string | undefined },
  ): Promise<EnvelopeSecret> {
    const body = envelopeSecret(namespace, name, envelope, {
      labels: {
        [ENVELOPE_LABEL]: "true",
        [OWNER_KIND_LABEL]: owner.kind,
        [OWNER_NAME_LABEL]: labelValueFor(owner.name),
      },
      annotations: { [OWNER_NAME_ANNOTATION]: owner.name },
    }) as unknown as KubeObject;
    // R33: held while its owner lives, from its first write (no second write to protect it)
    body.metadata = { ...body.metadata, finalizers: [IN_USE_FINALIZER] };
    try {
      const secret = await this.client.create(SecretKind, namespace, body);
      return { secret, envelope };
    } catch (error) {
      if (!isAlreadyExists(error)) throw error;
      const existing = await this.read(namespace, name);
      if (!existing) throw error;
      return this.adopt(existing, adopt.candidates, {
        owner: { ...owner, namespace },
        recordedDekID: adopt.recordedDekID,
      });
    }
  }

  /**
   * Unwraps the DEK on `check.owner`'s behalf: the protector's wrap first, then retained wraps
   * only while the keys tried are gone (KeyNotFound, R16: revocation holds), each with the
   * reference of the KeyProtector whose key it is. R31: an envelope that is plainly
   * not the owner's (bound to another, or unbound and unrecorded) is refused before any KMS call;
   * after the unwrap and the KCV check, the binding tag must match the owner. Returns the
   * verified DEK; the caller zeroes it.
   */
  async unwrap(
    envelope: Envelope,
    candidates: readonly KeyReference[],
    check: OwnerCheck,
  ): Promise<{ dek: Buffer; wrap: Wrap }> {
    precheckOwnerBinding(envelope, check.owner, recorded(envelope, check));
    const { dek, wrap } = await this.unwrapAny(envelope, candidates);
    return { dek: verifyOwnerBinding(envelope, dek, check.owner, recorded(envelope, check)), wrap };
  }

  private async unwrapAny(
    envelope: Envelope,
    candidates: readonly KeyReference[],
  ): Promise<{ dek: Buffer; wrap: Wrap }> {
    const ordered = [...envelope.wraps].sort((a, b) => rank(a) - rank(b));
    let firstError: unknown;
    for (const wrap of ordered) {
      const ref = candidates.find((c) => keyIDBelongsTo(c, wrap.keyID));
      if (!ref) continue;
      try {
        const bytes = await this.kms
          .providerFor(ref)
          .unwrap(refForKeyID(ref, wrap.keyID), wrappedBytes(wrap));
        return { dek: verifyUnwrapped(envelope, bytes, wrap.thumbprint), wrap };
      } catch (error) {
        firstError ??= error;
        // R16: only a key that is gone lets the next wrap be tried. A disabled, expired or
        // forbidden protector is how a customer revokes access; an older wrap must not undo it.
        if (!mayFallBack(error)) break;
      }
    }
    if (firstError) throw firstError;
    throw new KeyAccessError(
      "KeyNotFound",
      `no KeyProtector in this namespace names a key that wraps DEK ${envelope.dekID}; create one for ${protectorWrap(envelope)?.keyID ?? "its protector"}`,
    );
  }

  /**
   * R16: adds a wrap under `target`, proven before it is written (unwrap the new wrap and check
   * the KCV), as the protector (the old protector is kept as retained) or as a retained key.
   * One Secret update carries it, so a crash leaves the old envelope or the new one, never half.
   * The unwrap is on `check.owner`'s behalf (R31); an envelope written before owner binding gets
   * its binding in the same update.
   */
  async addWrap(
    current: EnvelopeSecret,
    candidates: readonly KeyReference[],
    target: Kek,
    role: "protector" | "retained",
    check: OwnerCheck,
  ): Promise<EnvelopeSecret> {
    const seen = findWrapByThumbprint(current.envelope, target.thumbprint);
    if (seen && (role !== "protector" || seen.role === "protector")) return current;
    current = await this.whole(current);
    const existing = findWrapByThumbprint(current.envelope, target.thumbprint);
    if (existing) {
      // proven when it was added: switching roles needs no KMS call
      if (role !== "protector" || existing.role === "protector") return current;
      return this.write(current, setProtector(current.envelope, target.thumbprint));
    }
    const { dek } = await this.unwrapSecret(current, candidates, check);
    let next: Envelope;
    try {
      const provider = this.kms.providerFor(target.ref);
      const wrapped = await provider.wrap(refForKeyID(target.ref, target.keyID), dek);
      const proof = await provider.unwrap(refForKeyID(target.ref, wrapped.keyID), wrapped.wrapped);
      zeroize(verifyUnwrapped(current.envelope, proof, target.thumbprint));
      next = addWrap(current.envelope, {
        keyID: wrapped.keyID,
        thumbprint: target.thumbprint,
        wrapped: wrapped.wrapped,
        role,
      });
      if (!next.ownerBinding) next = bindEnvelope(next, dek, check.owner);
    } finally {
      zeroize(dek);
    }
    return this.write(current, next);
  }

  /**
   * R20, R24: a copy of another envelope's DEK (same id and KCV) wrapped once under `kek`, for a
   * secondary or a restore, bound to its new owner. The source is unwrapped with the source
   * namespace's keys on behalf of the resource it belongs to (`sourceCheck`: the primary or the
   * restore's source, R31), and the copy is proven before it is stored. Idempotent like `create`.
   */
  async copy(
    sourceSecret: EnvelopeSecret,
    sourceCandidates: readonly KeyReference[],
    sourceCheck: OwnerCheck,
    namespace: string,
    name: string,
    kek: Kek,
    owner: { kind: string; name: string },
    adopt: { candidates: readonly KeyReference[]; recordedDekID?: string | undefined },
  ): Promise<EnvelopeSecret> {
    const source = sourceSecret.envelope;
    const { dek } = await this.unwrapSecret(sourceSecret, sourceCandidates, sourceCheck);
    let envelope: Envelope;
    try {
      const provider = this.kms.providerFor(kek.ref);
      const wrapped = await provider.wrap(refForKeyID(kek.ref, kek.keyID), dek);
      const proof = await provider.unwrap(refForKeyID(kek.ref, wrapped.keyID), wrapped.wrapped);
      zeroize(verifyUnwrapped(source, proof, kek.thumbprint));
      envelope = addWrap(
        bindEnvelope(createEnvelope(source.dekID, source.kcv), dek, { ...owner, namespace }),
        {
          keyID: wrapped.keyID,
          thumbprint: kek.thumbprint,
          wrapped: wrapped.wrapped,
          role: "protector",
        },
      );
    } finally {
      zeroize(dek);
    }
    return this.store(namespace, name, envelope, owner, adopt);
  }

  /** Writes a changed envelope with the read's resourceVersion (a conflict is retried by the caller's requeue). */
  async write(current: EnvelopeSecret, envelope: Envelope): Promise<EnvelopeSecret> {
    if (current.partial) throw new Error("an envelope from the cache is written only once read whole");
    const meta = current.secret.metadata ?? {};
    const body = { ...current.secret, data: encodeEnvelope(envelope) } as KubeObject;
    const secret = await this.client.replace(SecretKind, meta.namespace ?? "", meta.name ?? "", body);
    return { secret, envelope };
  }

  /** R16: drops retained wraps in one update, with no KMS call; a protector is never dropped here. */
  async dropRetained(current: EnvelopeSecret, wraps: readonly Wrap[]): Promise<EnvelopeSecret> {
    if (!wraps.some((w) => w.role === "retained")) return current;
    current = await this.whole(current);
    let next = current.envelope;
    for (const w of wraps) if (w.role === "retained") next = dropWrap(next, w.thumbprint);
    return next === current.envelope ? current : this.write(current, next);
  }

  /**
   * R25, R33: when the owner is deleted, its envelope is let go: `Shred` deletes it (every wrap of
   * the DEK), `Retain` keeps it but removes the in-use finalizer, so that a person can delete the
   * retained envelope later (nothing depends on it any more: a restore copies it first).
   */
  async release(namespace: string, name: string, policy: "Retain" | "Shred"): Promise<void> {
    try {
      if (policy === "Shred") await this.client.delete(SecretKind, namespace, name);
      const current = await this.client.get(SecretKind, namespace, name);
      await removeFinalizer(this.client, SecretKind, current, IN_USE_FINALIZER);
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }
}

/** Whether a failed unwrap lets a reader try the envelope's next wrap: only when the key is gone. */
export function mayFallBack(error: unknown): boolean {
  return isKeyAccessError(error) && error.reason === "KeyNotFound";
}

function rank(wrap: Wrap): number {
  return wrap.role === "protector" ? 0 : 1;
}
