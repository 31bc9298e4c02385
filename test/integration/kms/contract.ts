/**
 * THE KMS contract: one suite that runs unchanged against every KekProvider (Local on the real
 * API server, Azure on Lowkey Vault). Each provider supplies its admin hooks.
 */
import { generateKeyPairSync } from "node:crypto";
import * as k8s from "@kubernetes/client-node";
import { beforeAll, describe, expect, it } from "vitest";
import { generateDek, newDekID } from "../../../src/crypto/dek.js";
import {
  addWrap,
  createEnvelope,
  decodeEnvelopeSecret,
  ENVELOPE_SECRET_TYPE,
  envelopeSecret,
  protectorWrap,
  verifyUnwrapped,
  wrappedBytes,
} from "../../../src/crypto/envelope.js";
import { computeKcv } from "../../../src/crypto/kcv.js";
import {
  type KekProvider,
  KeyAccessError,
  type KeyReference,
  refForKeyID,
} from "../../../src/kms/provider.js";
import { checkRequirements, proveAccess } from "../../../src/kms/requirements.js";
import { testKubeConfig } from "../../harness/kube.js";

export interface ContractKeyOptions {
  size?: number;
  notBefore?: Date;
  expiresOn?: Date;
}

export interface ContractHooks {
  provider: KekProvider;
  /** Where envelopes are stored (a fresh namespace of the real API server). */
  namespace: string;
  /** Whether keys made here meet R5's recoverability default (Recoverable, 90 days). */
  recoverable90: boolean;
  createKey(name: string, options?: ContractKeyOptions): Promise<KeyReference>;
  rotateKey(ref: KeyReference): Promise<void>;
  /** Enables or disables the newest version. */
  setEnabled(ref: KeyReference, enabled: boolean): Promise<void>;
  deleteKey(ref: KeyReference): Promise<void>;
  recoverKey(ref: KeyReference): Promise<void>;
  importKey(name: string, privateKeyPem: string): Promise<KeyReference>;
  /** The same key seen through an identity that has lost its rights. */
  revoked(ref: KeyReference): Promise<{ provider: KekProvider; ref: KeyReference }>;
}

async function reasonOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (error instanceof KeyAccessError) return error.reason;
    throw error;
  }
  return "no error";
}

const unique = (prefix: string) => `${prefix}-${Math.random().toString(16).slice(2, 8)}`;

/** Registers the contract tests. `title` may carry a skip reason; `enabled=false` skips every test. */
export function kekProviderContract(
  title: string,
  enabled: boolean,
  setup: () => Promise<ContractHooks>,
): void {
  describe(title, () => {
    let h: ContractHooks;
    beforeAll(async () => {
      if (enabled) h = await setup();
    });
    const test = it.skipIf(!enabled);

    test("R2 wraps and unwraps a DEK with RSA-OAEP-256, naming the exact key version", async () => {
      const ref = await h.createKey(unique("rt"));
      const dek = generateDek();
      const description = await h.provider.describe(ref);
      const wrapped = await h.provider.wrap(ref, dek);
      expect(wrapped.algorithm).toBe("RSA-OAEP-256");
      expect(wrapped.keyID).toBe(description.keyID);
      expect(wrapped.wrapped.equals(dek)).toBe(false);
      const back = await h.provider.unwrap(refForKeyID(ref, wrapped.keyID), wrapped.wrapped);
      expect(back.equals(dek)).toBe(true);
    });

    test("R5 R8 describes an RSA key: id with version, size, enabled, recovery level and days, thumbprint", async () => {
      const ref = await h.createKey(unique("desc"), { size: 2048 });
      const d = await h.provider.describe(ref);
      expect(d.keyType).toMatch(/^RSA/);
      expect(d.keySize).toBe(2048);
      expect(d.enabled).toBe(true);
      expect(d.keyID).toContain(d.version);
      expect(d.thumbprint).toMatch(/^[0-9a-f]{64}$/);
      expect(d.publicKeyKnown).toBe(true);
      expect(d.recoveryLevel).toBeTruthy();
      if (h.recoverable90) {
        expect(d.recoveryLevel).toBe("Recoverable");
        expect(d.recoverableDays).toBe(90);
        expect(checkRequirements(d)).toEqual([]);
      }
      const proof = await proveAccess(h.provider, ref);
      expect(proof).toMatchObject({
        ok: true,
        permissions: ["get", "wrapKey", "unwrapKey"],
        thumbprint: d.thumbprint,
      });
    });

    test("R6 a new key version is detected; the old version still unwraps what it wrapped", async () => {
      const ref = await h.createKey(unique("rot"));
      const before = await h.provider.describe(ref);
      const dek = generateDek();
      const oldWrap = await h.provider.wrap(ref, dek);
      await h.rotateKey(ref);
      const after = await h.provider.describe(ref);
      expect(after.version).not.toBe(before.version);
      expect(after.thumbprint).not.toBe(before.thumbprint);
      const versions = await h.provider.listVersions(ref);
      expect(versions.map((v) => v.version)).toEqual([after.version, before.version]);
      const newWrap = await h.provider.wrap(ref, dek);
      expect(newWrap.keyID).toBe(after.keyID);
      expect((await h.provider.unwrap(refForKeyID(ref, oldWrap.keyID), oldWrap.wrapped)).equals(dek)).toBe(
        true,
      );
      // a pinned version stays pinned
      expect((await h.provider.describe({ ...ref, keyVersion: before.version })).keyID).toBe(before.keyID);
    });

    test("R10 a disabled key gives KeyDisabled; R5 reports it; re-enabling restores access", async () => {
      const ref = await h.createKey(unique("dis"));
      const wrapped = await h.provider.wrap(ref, generateDek());
      await h.setEnabled(ref, false);
      expect(await reasonOf(h.provider.wrap(ref, generateDek()))).toBe("KeyDisabled");
      expect(await reasonOf(h.provider.unwrap(refForKeyID(ref, wrapped.keyID), wrapped.wrapped))).toBe(
        "KeyDisabled",
      );
      const d = await h.provider.describe(ref);
      expect(d.enabled).toBe(false);
      expect(checkRequirements(d).map((u) => u.reason)).toContain("KeyDisabled");
      expect(await proveAccess(h.provider, ref)).toMatchObject({ ok: false, reason: "KeyDisabled" });
      await h.setEnabled(ref, true);
      expect((await proveAccess(h.provider, ref)).ok).toBe(true);
    });

    test("R6 with the current version disabled, an unpinned reference reports KeyDisabled and never moves back to an older version", async () => {
      const ref = await h.createKey(unique("newest"));
      const first = await h.provider.describe(ref);
      await h.rotateKey(ref);
      const current = await h.provider.describe(ref);
      await h.setEnabled(ref, false);
      const d = await h.provider.describe(ref);
      expect(d.version).toBe(current.version);
      expect(d.version).not.toBe(first.version);
      expect(d.enabled).toBe(false);
      expect(await reasonOf(h.provider.wrap(ref, generateDek()))).toBe("KeyDisabled");
      expect(await proveAccess(h.provider, ref)).toMatchObject({ ok: false, reason: "KeyDisabled" });
      // the older version is still enabled, and pinned it still works: only the unpinned reference is refused
      expect((await h.provider.wrap({ ...ref, keyVersion: first.version }, generateDek())).keyID).toBe(
        first.keyID,
      );
    });

    test("R10 a deleted key gives KeyNotFound; a recovered key works again with the same thumbprint", async () => {
      const ref = await h.createKey(unique("del"));
      const before = await h.provider.describe(ref);
      const dek = generateDek();
      const wrapped = await h.provider.wrap(ref, dek);
      await h.deleteKey(ref);
      expect(await reasonOf(h.provider.describe(ref))).toBe("KeyNotFound");
      expect(await reasonOf(h.provider.wrap(ref, generateDek()))).toBe("KeyNotFound");
      expect(await reasonOf(h.provider.unwrap(refForKeyID(ref, wrapped.keyID), wrapped.wrapped))).toBe(
        "KeyNotFound",
      );
      await h.recoverKey(ref);
      expect((await h.provider.describe(ref)).thumbprint).toBe(before.thumbprint);
      expect((await h.provider.unwrap(refForKeyID(ref, wrapped.keyID), wrapped.wrapped)).equals(dek)).toBe(
        true,
      );
    });

    test("R10 a key that does not exist gives KeyNotFound", async () => {
      const ref = { ...(await h.createKey(unique("exists"))), keyName: unique("missing") };
      expect(await reasonOf(h.provider.describe(ref))).toBe("KeyNotFound");
    });

    test("R10 an expired key gives KeyExpired; R5 reports KeyExpired", async () => {
      const ref = await h.createKey(unique("exp"), { expiresOn: new Date(Date.now() - 60_000) });
      expect(await reasonOf(h.provider.wrap(ref, generateDek()))).toBe("KeyExpired");
      const reasons = checkRequirements(await h.provider.describe(ref)).map((u) => u.reason);
      expect(reasons).toContain("KeyExpired");
    });

    test("R5 a key with a future expiry is refused unless allowExpiry", async () => {
      const ref = await h.createKey(unique("expf"), { expiresOn: new Date(Date.now() + 86_400_000) });
      const d = await h.provider.describe(ref);
      expect(checkRequirements(d).map((u) => u.reason)).toContain("KeyHasExpiry");
      expect(checkRequirements(d, { allowExpiry: true }).map((u) => u.reason)).not.toContain("KeyHasExpiry");
      expect((await proveAccess(h.provider, ref)).ok).toBe(true);
    });

    test("R5 a not-yet-active key gives KeyNotYetActive", async () => {
      const ref = await h.createKey(unique("nbf"), { notBefore: new Date(Date.now() + 86_400_000) });
      expect(await reasonOf(h.provider.wrap(ref, generateDek()))).toBe("KeyNotYetActive");
      expect(checkRequirements(await h.provider.describe(ref)).map((u) => u.reason)).toContain(
        "KeyNotYetActive",
      );
    });

    test("R5 a key of a size not allowed gives KeySizeNotAllowed", async () => {
      const ref = await h.createKey(unique("big"), { size: 4096 });
      const d = await h.provider.describe(ref);
      expect(d.keySize).toBe(4096);
      expect(checkRequirements(d).map((u) => u.reason)).toContain("KeySizeNotAllowed");
      expect(checkRequirements(d, { allowedKeySizes: [4096] }).map((u) => u.reason)).not.toContain(
        "KeySizeNotAllowed",
      );
    });

    test("R5 R10 a revoked identity gives PermissionDenied or AuthenticationFailed", async () => {
      const ref = await h.createKey(unique("rev"));
      const revoked = await h.revoked(ref);
      const proof = await proveAccess(revoked.provider, revoked.ref);
      expect(proof.ok).toBe(false);
      if (!proof.ok) {
        expect(["PermissionDenied", "AuthenticationFailed"]).toContain(proof.reason);
        expect(proof.permissions).toEqual([]);
      }
    });

    test("R3 the same key material imported into two places has one thumbprint", async () => {
      const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
      const pem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
      const a = await h.provider.describe(await h.importKey(unique("imp-a"), pem));
      const b = await h.provider.describe(await h.importKey(unique("imp-b"), pem));
      expect(a.keyID).not.toBe(b.keyID);
      expect(a.thumbprint).toBe(b.thumbprint);
      const other = await h.provider.describe(await h.createKey(unique("imp-c")));
      expect(other.thumbprint).not.toBe(a.thumbprint);
    });

    test("R2 an envelope survives a round trip through the real API server as a tde.dev/envelope Secret", async () => {
      const ref = await h.createKey(unique("env"));
      const second = await h.createKey(unique("env2"));
      const dek = generateDek();
      const kcv = computeKcv(dek);
      const w1 = await h.provider.wrap(ref, dek);
      const w2 = await h.provider.wrap(second, dek);
      const t1 = (await h.provider.describe(refForKeyID(ref, w1.keyID))).thumbprint;
      const t2 = (await h.provider.describe(refForKeyID(second, w2.keyID))).thumbprint;
      let envelope = createEnvelope(newDekID(), kcv);
      envelope = addWrap(envelope, {
        keyID: w1.keyID,
        thumbprint: t1,
        wrapped: w1.wrapped,
        role: "protector",
      });
      envelope = addWrap(envelope, { keyID: w2.keyID, thumbprint: t2, wrapped: w2.wrapped });
      dek.fill(0);

      const core = testKubeConfig().makeApiClient(k8s.CoreV1Api);
      const name = unique("envelope");
      await core.createNamespacedSecret({
        namespace: h.namespace,
        body: envelopeSecret(h.namespace, name, envelope),
      });
      const stored = await core.readNamespacedSecret({ namespace: h.namespace, name });
      expect(stored.type).toBe(ENVELOPE_SECRET_TYPE);
      const decoded = decodeEnvelopeSecret(stored as { type?: string; data?: Record<string, string> });
      expect(decoded).toEqual(envelope);
      const protector = protectorWrap(decoded)!;
      const back = await h.provider.unwrap(refForKeyID(ref, protector.keyID), wrappedBytes(protector));
      expect(computeKcv(verifyUnwrapped(decoded, back, protector.thumbprint))).toBe(kcv);
      const retained = decoded.wraps.find((w) => w.role === "retained")!;
      const back2 = await h.provider.unwrap(refForKeyID(second, retained.keyID), wrappedBytes(retained));
      expect(computeKcv(verifyUnwrapped(decoded, back2))).toBe(kcv);
    });
  });
}
