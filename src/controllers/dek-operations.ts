import {
  addWrap,
  computeKcv,
  createEnvelope,
  decodeEnvelopeSecret,
  type Envelope,
  encodeEnvelope,
  envelopeSecret,
  findWrapByThumbprint,
  generateDek,
  newDekID,
  protectorWrap,
  setProtector,
  verifyUnwrapped,
  type Wrap,
  wrappedBytes,
  zeroize,
} from "../crypto/index.js";
import { parseLocalKeyID } from "../kms/local.js";
import { KeyAccessError, type KeyReference, type KmsRegistry, refForKeyID } from "../kms/provider.js";
import { isAlreadyExists, isNotFound, type KubeClient, type KubeObject } from "../runtime/index.js";
import { ENVELOPE_LABEL, OWNER_KIND_LABEL, OWNER_NAME_LABEL, SecretKind } from "./resources.js";

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
}

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
   * A new DEK wrapped once under `kek`, stored as a Secret of type tde.dev/envelope. The Secret's
   * name is deterministic: if it already exists (a crash after creating it), that envelope is
   * returned and the new DEK is discarded, so a resource never has two DEKs.
   */
  async create(
    namespace: string,
    name: string,
    kek: Kek,
    owner: { kind: string; name: string },
  ): Promise<EnvelopeSecret> {
    const dek = generateDek();
    let envelope: Envelope;
    try {
      envelope = createEnvelope(newDekID(), computeKcv(dek));
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
    return this.store(namespace, name, envelope, owner);
  }

  private async store(
    namespace: string,
    name: string,
    envelope: Envelope,
    owner: { kind: string; name: string },
  ): Promise<EnvelopeSecret> {
    const body = envelopeSecret(namespace, name, envelope, {
      labels: { [ENVELOPE_LABEL]: "true", [OWNER_KIND_LABEL]: owner.kind, [OWNER_NAME_LABEL]: owner.name },
    }) as unknown as KubeObject;
    try {
      const secret = await this.client.create(SecretKind, namespace, body);
      return { secret, envelope };
    } catch (error) {
      if (!isAlreadyExists(error)) throw error;
      const existing = await this.read(namespace, name);
      if (!existing) throw error;
      return existing;
    }
  }

  /**
   * Unwraps the DEK: the protector's wrap first, then retained wraps, each with the reference of
   * the KeyProtector whose key it is. Returns the verified DEK; the caller zeroes it.
   */
  async unwrap(
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
   */
  async addWrap(
    current: EnvelopeSecret,
    candidates: readonly KeyReference[],
    target: Kek,
    role: "protector" | "retained",
  ): Promise<EnvelopeSecret> {
    const existing = findWrapByThumbprint(current.envelope, target.thumbprint);
    if (existing) {
      // proven when it was added: switching roles needs no KMS call
      if (role !== "protector" || existing.role === "protector") return current;
      return this.write(current, setProtector(current.envelope, target.thumbprint));
    }
    const { dek } = await this.unwrap(current.envelope, candidates);
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
    } finally {
      zeroize(dek);
    }
    return this.write(current, next);
  }

  /**
   * R20, R24: a copy of another envelope's DEK (same id and KCV) wrapped once under `kek`, for a
   * secondary or a restore. The source is unwrapped with the source namespace's keys and the
   * copy is proven before it is stored. Idempotent like `create`.
   */
  async copy(
    source: Envelope,
    sourceCandidates: readonly KeyReference[],
    namespace: string,
    name: string,
    kek: Kek,
    owner: { kind: string; name: string },
  ): Promise<EnvelopeSecret> {
    const { dek } = await this.unwrap(source, sourceCandidates);
    let envelope: Envelope;
    try {
      const provider = this.kms.providerFor(kek.ref);
      const wrapped = await provider.wrap(refForKeyID(kek.ref, kek.keyID), dek);
      const proof = await provider.unwrap(refForKeyID(kek.ref, wrapped.keyID), wrapped.wrapped);
      zeroize(verifyUnwrapped(source, proof, kek.thumbprint));
      envelope = addWrap(createEnvelope(source.dekID, source.kcv), {
        keyID: wrapped.keyID,
        thumbprint: kek.thumbprint,
        wrapped: wrapped.wrapped,
        role: "protector",
      });
    } finally {
      zeroize(dek);
    }
    return this.store(namespace, name, envelope, owner);
  }

  /** Writes a changed envelope with the read's resourceVersion (a conflict is retried by the caller's requeue). */
  async write(current: EnvelopeSecret, envelope: Envelope): Promise<EnvelopeSecret> {
    const meta = current.secret.metadata ?? {};
    const body = { ...current.secret, data: encodeEnvelope(envelope) } as KubeObject;
    const secret = await this.client.replace(SecretKind, meta.namespace ?? "", meta.name ?? "", body);
    return { secret, envelope };
  }

  async delete(namespace: string, name: string): Promise<void> {
    try {
      await this.client.delete(SecretKind, namespace, name);
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }
}

function rank(wrap: Wrap): number {
  return wrap.role === "protector" ? 0 : 1;
}
