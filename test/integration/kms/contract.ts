/**
 * THE KMS contract: one suite that runs unchanged against every KekProvider (Local on the real
 * API server; Azure on Lowkey Vault, on a real Azure Key Vault, or replayed from recordings of
 * Lowkey Vault). Each provider supplies its admin hooks.
 *
 * Every request a test makes is deterministic, so that recorded vault exchanges can be replayed:
 * fixed key names (`h.keyName`), DEKs derived from their test's label (`fixedDek`), a fixed
 * `proveAccess` probe, and key material generated once per run only where the recording
 * normalizes it away (an imported key's JWK).
 */
import { createHash, generateKeyPairSync } from "node:crypto";
import * as k8s from "@kubernetes/client-node";
import { beforeAll, describe, expect, it } from "vitest";
import { newDekID } from "../../../src/crypto/dek.js";
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

/** A provider whose every call goes through a path that can answer 429 with Retry-After. */
export interface ThrottledPath {
  provider: KekProvider;
  ref: KeyReference;
  /** from now on, answer the next request (only) 429 with Retry-After: `seconds` */
  throttleOnce(seconds: number): Promise<void>;
  /** from now on, answer every request 429 with Retry-After: `seconds` */
  throttleAlways(seconds: number): Promise<void>;
  /** how many 429s the provider has seen (before its own retries) */
  throttledSeen(): number;
  stop(): Promise<void>;
}

export interface ContractHooks {
  /** the provider under test (it may be made anew for each test) */
  readonly provider: KekProvider;
  /** Where envelopes are stored (a fresh namespace of the real API server). */
  namespace: string;
  /** Whether keys made here meet R5's recoverability default (Recoverable, 90 days). */
  recoverable90: boolean;
  /** Whether the provider itself waits for Retry-After and retries a 429 (the Azure SDK does). */
  retriesThrottled: boolean;
  /** the name to give a key of this test (fixed, so that recordings replay; unique per suite) */
  keyName(base: string): string;
  createKey(name: string, options?: ContractKeyOptions): Promise<KeyReference>;
  /** Adds a version; returns it (it is the key's current version now). */
  rotateKey(ref: KeyReference): Promise<string>;
  /** The vault's current version: what it answers for the key without a version (an admin read). */
  currentVersion(ref: KeyReference): Promise<string>;
  /** Enables or disables the current version. */
  setEnabled(ref: KeyReference, enabled: boolean): Promise<void>;
  deleteKey(ref: KeyReference): Promise<void>;
  recoverKey(ref: KeyReference): Promise<void>;
  importKey(name: string, privateKeyPem: string): Promise<KeyReference>;
  /** The same key seen through an identity that has lost its rights. */
  revoked(ref: KeyReference): Promise<{ provider: KekProvider; ref: KeyReference }>;
  throttled(ref: KeyReference): Promise<ThrottledPath>;
  /** The same key through an endpoint nothing listens on. */
  unreachable(ref: KeyReference): Promise<{ provider: KekProvider; ref: KeyReference }>;
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

/** 32 bytes fixed by `label`: a test DEK whose wrap request is the same on every run. */
export function fixedDek(label: string): Buffer {
  return createHash("sha256").update(`tde-operator contract DEK: ${label}`).digest();
}
const PROBE = fixedDek("proveAccess probe");
const prove = (provider: KekProvider, ref: KeyReference) =>
  proveAccess(provider, ref, undefined, undefined, PROBE);

/** One generated key pair per run, for the import test (its JWK is normalized out of recordings). */
let importPem: string | undefined;
function importMaterial(): string {
  if (!importPem) {
    const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    importPem = privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  }
  return importPem;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Registers the contract tests. */
export function kekProviderContract(title: string, setup: () => Promise<ContractHooks>): void {
  describe(title, () => {
    let h: ContractHooks;
    beforeAll(async () => {
      h = await setup();
    });

    it("R2 wraps and unwraps a DEK with RSA-OAEP-256, naming the exact key version", async () => {
      const ref = await h.createKey(h.keyName("rt"));
      const dek = fixedDek("rt");
      const description = await h.provider.describe(ref);
      const wrapped = await h.provider.wrap(ref, dek);
      expect(wrapped.algorithm).toBe("RSA-OAEP-256");
      expect(wrapped.keyID).toBe(description.keyID);
      expect(wrapped.wrapped.equals(dek)).toBe(false);
      const back = await h.provider.unwrap(refForKeyID(ref, wrapped.keyID), wrapped.wrapped);
      expect(back.equals(dek)).toBe(true);
    });

    it("R5 R8 describes an RSA key: id with version, size, enabled, recovery level and days, thumbprint", async () => {
      const ref = await h.createKey(h.keyName("desc"), { size: 2048 });
      const d = await h.provider.describe(ref);
      expect(d.keyType).toMatch(/^RSA/);
      expect(d.keySize).toBe(2048);
      expect(d.enabled).toBe(true);
      expect(d.keyID).toContain(d.version);
      expect(d.version).toBe(await h.currentVersion(ref));
      expect(d.thumbprint).toMatch(/^[0-9a-f]{64}$/);
      expect(d.publicKeyKnown).toBe(true);
      expect(d.recoveryLevel).toBeTruthy();
      if (h.recoverable90) {
        expect(d.recoveryLevel).toBe("Recoverable");
        expect(d.recoverableDays).toBe(90);
        expect(checkRequirements(d)).toEqual([]);
      }
      const proof = await prove(h.provider, ref);
      expect(proof).toMatchObject({
        ok: true,
        permissions: ["get", "wrapKey", "unwrapKey"],
        thumbprint: d.thumbprint,
      });
    });

    it("R6 a new key version is detected; the old version still unwraps what it wrapped", async () => {
      const ref = await h.createKey(h.keyName("rot"));
      const before = await h.provider.describe(ref);
      const dek = fixedDek("rot");
      const oldWrap = await h.provider.wrap(ref, dek);
      const rotated = await h.rotateKey(ref);
      const after = await h.provider.describe(ref);
      expect(after.version).toBe(rotated);
      expect(after.version).not.toBe(before.version);
      expect(after.thumbprint).not.toBe(before.thumbprint);
      const versions = await h.provider.listVersions(ref);
      // the two versions may carry the same createdOn second: their order is not asserted
      expect(versions.map((v) => v.version).sort()).toEqual([after.version, before.version].sort());
      const newWrap = await h.provider.wrap(ref, dek);
      expect(newWrap.keyID).toBe(after.keyID);
      expect((await h.provider.unwrap(refForKeyID(ref, oldWrap.keyID), oldWrap.wrapped)).equals(dek)).toBe(
        true,
      );
      // a pinned version stays pinned
      expect((await h.provider.describe({ ...ref, keyVersion: before.version })).keyID).toBe(before.keyID);
    });

    it("R6 five versions made within one second: an unpinned reference is the vault's current version, every time", async () => {
      const ref = await h.createKey(h.keyName("five"));
      const made = [(await h.provider.describe(ref)).version];
      const started = Date.now();
      for (let i = 0; i < 4; i++) made.push(await h.rotateKey(ref));
      const seconds = (Date.now() - started) / 1000;
      const versions = await h.provider.listVersions(ref);
      expect(versions.map((v) => v.version).sort()).toEqual([...made].sort());
      // the case this test is about: versions whose createdOn (one-second resolution) ties
      const createdSeconds = versions.map((v) => Math.floor((v.createdOn?.getTime() ?? 0) / 1000));
      expect(new Set(createdSeconds).size, `5 versions in ${seconds} s`).toBeLessThan(createdSeconds.length);
      const current = await h.currentVersion(ref);
      expect(current).toBe(made.at(-1));
      for (let i = 0; i < 5; i++) {
        expect((await h.provider.describe(ref)).version).toBe(current);
        expect((await h.provider.wrap(ref, fixedDek("five"))).keyID).toContain(current);
      }
    });

    it("R10 a disabled key gives KeyDisabled on wrap, unwrap, describe and proveAccess; re-enabling restores access", async () => {
      const ref = await h.createKey(h.keyName("dis"));
      const wrapped = await h.provider.wrap(ref, fixedDek("dis"));
      await h.setEnabled(ref, false);
      expect(await reasonOf(h.provider.wrap(ref, fixedDek("dis-2")))).toBe("KeyDisabled");
      expect(await reasonOf(h.provider.unwrap(refForKeyID(ref, wrapped.keyID), wrapped.wrapped))).toBe(
        "KeyDisabled",
      );
      const d = await h.provider.describe(ref);
      expect(d.enabled).toBe(false);
      expect(checkRequirements(d).map((u) => u.reason)).toContain("KeyDisabled");
      expect(await prove(h.provider, ref)).toMatchObject({ ok: false, reason: "KeyDisabled" });
      await h.setEnabled(ref, true);
      expect((await prove(h.provider, ref)).ok).toBe(true);
    });

    it("R6 R10 with the current version disabled, an unpinned reference reports it disabled and never falls back to an older version", async () => {
      const ref = await h.createKey(h.keyName("curdis"));
      const first = await h.provider.describe(ref);
      const second = await h.rotateKey(ref);
      await h.setEnabled(ref, false);
      const d = await h.provider.describe(ref);
      expect(d.version).toBe(second);
      expect(d.enabled).toBe(false);
      expect(checkRequirements(d).map((u) => u.reason)).toContain("KeyDisabled");
      expect(await reasonOf(h.provider.wrap(ref, fixedDek("curdis")))).toBe("KeyDisabled");
      expect(await prove(h.provider, ref)).toMatchObject({ ok: false, reason: "KeyDisabled" });
      // the older version is still enabled, and still usable when pinned
      const pinned = { ...ref, keyVersion: first.version };
      expect((await h.provider.describe(pinned)).enabled).toBe(true);
      expect((await h.provider.wrap(pinned, fixedDek("curdis"))).keyID).toBe(first.keyID);
    });

    it("R10 a deleted key gives KeyNotFound; a recovered key works again with the same thumbprint", async () => {
      const ref = await h.createKey(h.keyName("del"));
      const before = await h.provider.describe(ref);
      const dek = fixedDek("del");
      const wrapped = await h.provider.wrap(ref, dek);
      await h.deleteKey(ref);
      expect(await reasonOf(h.provider.describe(ref))).toBe("KeyNotFound");
      expect(await reasonOf(h.provider.wrap(ref, fixedDek("del-2")))).toBe("KeyNotFound");
      expect(await reasonOf(h.provider.unwrap(refForKeyID(ref, wrapped.keyID), wrapped.wrapped))).toBe(
        "KeyNotFound",
      );
      await h.recoverKey(ref);
      expect((await h.provider.describe(ref)).thumbprint).toBe(before.thumbprint);
      expect((await h.provider.unwrap(refForKeyID(ref, wrapped.keyID), wrapped.wrapped)).equals(dek)).toBe(
        true,
      );
    });

    it("R10 a key that does not exist gives KeyNotFound", async () => {
      const ref = { ...(await h.createKey(h.keyName("exists"))), keyName: h.keyName("missing") };
      expect(await reasonOf(h.provider.describe(ref))).toBe("KeyNotFound");
      expect(await reasonOf(h.provider.wrap(ref, fixedDek("missing")))).toBe("KeyNotFound");
    });

    it("R10 an expired key gives KeyExpired; R5 reports KeyExpired", async () => {
      const ref = await h.createKey(h.keyName("exp"), { expiresOn: new Date(Date.now() - 60_000) });
      expect(await reasonOf(h.provider.wrap(ref, fixedDek("exp")))).toBe("KeyExpired");
      const reasons = checkRequirements(await h.provider.describe(ref)).map((u) => u.reason);
      expect(reasons).toContain("KeyExpired");
    });

    it("R5 a key with a future expiry is refused unless allowExpiry", async () => {
      const ref = await h.createKey(h.keyName("expf"), { expiresOn: new Date(Date.now() + 86_400_000) });
      const d = await h.provider.describe(ref);
      expect(checkRequirements(d).map((u) => u.reason)).toContain("KeyHasExpiry");
      expect(checkRequirements(d, { allowExpiry: true }).map((u) => u.reason)).not.toContain("KeyHasExpiry");
      expect((await prove(h.provider, ref)).ok).toBe(true);
    });

    it("R5 a not-yet-active key gives KeyNotYetActive", async () => {
      const ref = await h.createKey(h.keyName("nbf"), { notBefore: new Date(Date.now() + 86_400_000) });
      expect(await reasonOf(h.provider.wrap(ref, fixedDek("nbf")))).toBe("KeyNotYetActive");
      expect(checkRequirements(await h.provider.describe(ref)).map((u) => u.reason)).toContain(
        "KeyNotYetActive",
      );
    });

    it("R5 a key of a size not allowed gives KeySizeNotAllowed", async () => {
      const ref = await h.createKey(h.keyName("big"), { size: 4096 });
      const d = await h.provider.describe(ref);
      expect(d.keySize).toBe(4096);
      expect(checkRequirements(d).map((u) => u.reason)).toContain("KeySizeNotAllowed");
      expect(checkRequirements(d, { allowedKeySizes: [4096] }).map((u) => u.reason)).not.toContain(
        "KeySizeNotAllowed",
      );
    });

    it("R5 R10 a revoked identity gives PermissionDenied or AuthenticationFailed", async () => {
      const ref = await h.createKey(h.keyName("rev"));
      const revoked = await h.revoked(ref);
      const proof = await prove(revoked.provider, revoked.ref);
      expect(proof.ok).toBe(false);
      if (!proof.ok) {
        expect(["PermissionDenied", "AuthenticationFailed"]).toContain(proof.reason);
        expect(proof.permissions).toEqual([]);
      }
    });

    it("R10 a vault answering 429 with Retry-After once: after that wait the call succeeds", async () => {
      const ref = await h.createKey(h.keyName("thr1"));
      const path = await h.throttled(ref);
      try {
        await path.provider.describe(path.ref); // the challenge and token first: the 429 hits a key operation
        await path.throttleOnce(1);
        const started = Date.now();
        if (h.retriesThrottled) {
          // the provider (the Azure SDK's pipeline) waits for Retry-After and retries by itself
          const wrapped = await path.provider.wrap(path.ref, fixedDek("thr1"));
          expect(Date.now() - started).toBeGreaterThanOrEqual(950);
          expect(wrapped.keyID).toContain(await h.currentVersion(ref));
        } else {
          // the provider reports it; the watchdog's next probe, after the wait, succeeds
          const error = await path.provider.wrap(path.ref, fixedDek("thr1")).catch((e: unknown) => e);
          expect(error).toMatchObject({ reason: "Throttled", retryAfterMs: 1_000 });
          await sleep((error as KeyAccessError).retryAfterMs!);
          expect((await path.provider.wrap(path.ref, fixedDek("thr1"))).keyID).toContain(
            await h.currentVersion(ref),
          );
        }
        expect(path.throttledSeen()).toBe(1);
      } finally {
        await path.stop();
      }
    });

    it("R10 a vault that keeps answering 429: Throttled, with the vault's Retry-After", async () => {
      const ref = await h.createKey(h.keyName("thr"));
      const path = await h.throttled(ref);
      try {
        await path.provider.describe(path.ref);
        await path.throttleAlways(2);
        const error = await path.provider.wrap(path.ref, fixedDek("thr")).catch((e: unknown) => e);
        expect(error).toBeInstanceOf(KeyAccessError);
        expect((error as KeyAccessError).reason).toBe("Throttled");
        expect((error as KeyAccessError).retryAfterMs).toBe(2_000);
        expect(path.throttledSeen()).toBeGreaterThanOrEqual(1);
        const proof = await prove(path.provider, path.ref);
        expect(proof).toMatchObject({ ok: false, reason: "Throttled", retryAfterMs: 2_000 });
      } finally {
        await path.stop();
      }
    });

    it("R10 a vault nothing listens on (a closed port) gives VaultUnreachable", async () => {
      const ref = await h.createKey(h.keyName("down"));
      const down = await h.unreachable(ref);
      expect(await reasonOf(down.provider.describe(down.ref))).toBe("VaultUnreachable");
      const proof = await prove(down.provider, down.ref);
      expect(proof).toMatchObject({ ok: false, reason: "VaultUnreachable", permissions: [] });
    });

    it("R3 the same key material imported into two places has one thumbprint", async () => {
      const pem = importMaterial();
      const refA = await h.importKey(h.keyName("imp-a"), pem);
      const a = { ...(await h.provider.describe(refA)), ref: refA };
      const b = await h.provider.describe(await h.importKey(h.keyName("imp-b"), pem));
      expect(a.keyID).not.toBe(b.keyID);
      expect(a.thumbprint).toBe(b.thumbprint);
      const other = await h.provider.describe(await h.createKey(h.keyName("imp-c")));
      expect(other.thumbprint).not.toBe(a.thumbprint);
      expect((await prove(h.provider, refForKeyID(a.ref, a.keyID))).ok).toBe(true);
    });

    it("R2 an envelope survives a round trip through the real API server as a tde.dev/envelope Secret", async () => {
      const ref = await h.createKey(h.keyName("env"));
      const second = await h.createKey(h.keyName("env2"));
      const dek = fixedDek("env");
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
      const name = `envelope-${newDekID().slice(0, 8).toLowerCase()}`;
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
