import { generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { publicKeyDer, thumbprintOfDer } from "../../../src/crypto/thumbprint.js";
import type { KekProvider, KeyDescription, KeyReference } from "../../../src/kms/provider.js";
import { KeyAccessError } from "../../../src/kms/provider.js";
import { checkRequirements, proveAccess } from "../../../src/kms/requirements.js";

const now = new Date("2025-06-01T00:00:00Z");
const der = publicKeyDer(generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey);
function key(overrides: Partial<KeyDescription> = {}): KeyDescription {
  return {
    keyID: "https://v.vault.azure.net/keys/k/abc",
    version: "abc",
    keyType: "RSA",
    keySize: 2048,
    enabled: true,
    recoveryLevel: "Recoverable",
    recoverableDays: 90,
    publicKeyDer: der,
    thumbprint: thumbprintOfDer(der),
    publicKeyKnown: true,
    ...overrides,
  };
}
const reasons = (k: KeyDescription, r = {}) => checkRequirements(k, r, now).map((u) => u.reason);

describe("R5 key requirements", () => {
  it("R5 a 2048 or 3072-bit enabled RSA key in a Recoverable/90-day vault meets every default", () => {
    expect(checkRequirements(key(), {}, now)).toEqual([]);
    expect(reasons(key({ keySize: 3072, keyType: "RSA-HSM" }))).toEqual([]);
  });

  it.each<[string, Partial<KeyDescription>, object, string[]]>([
    ["an EC key", { keyType: "EC", keySize: 0 }, {}, ["KeyTypeNotRSA"]],
    ["a 4096-bit key by default", { keySize: 4096 }, {}, ["KeySizeNotAllowed"]],
    ["a disabled key", { enabled: false }, {}, ["KeyDisabled"]],
    ["a key active only tomorrow", { notBefore: new Date("2025-06-02T00:00:00Z") }, {}, ["KeyNotYetActive"]],
    ["a key with a future expiry", { expiresOn: new Date("2026-01-01T00:00:00Z") }, {}, ["KeyHasExpiry"]],
    [
      "an expired key, even with allowExpiry",
      { expiresOn: new Date("2025-01-01T00:00:00Z") },
      { allowExpiry: true },
      ["KeyExpired"],
    ],
    ["a Purgeable vault", { recoveryLevel: "Purgeable" }, {}, ["NotRecoverable"]],
    [
      "Recoverable+Purgeable (no purge protection)",
      { recoveryLevel: "Recoverable+Purgeable" },
      {},
      ["NotRecoverable"],
    ],
    ["7 retention days", { recoverableDays: 7 }, {}, ["RecoverableDaysTooFew"]],
  ])("R5 %s is reported", (_what, overrides, requirements, expected) => {
    expect(reasons(key(overrides), requirements)).toEqual(expected);
  });

  it("R5 every unmet requirement is reported separately", () => {
    const bad = key({
      keySize: 4096,
      enabled: false,
      expiresOn: new Date("2026-01-01T00:00:00Z"),
      recoveryLevel: "Purgeable",
    });
    expect(reasons(bad)).toEqual(["KeySizeNotAllowed", "KeyDisabled", "KeyHasExpiry", "NotRecoverable"]);
  });

  it("R5 the requirements can relax the defaults", () => {
    expect(reasons(key({ keySize: 4096 }), { allowedKeySizes: [4096] })).toEqual([]);
    expect(reasons(key({ expiresOn: new Date("2026-01-01T00:00:00Z") }), { allowExpiry: true })).toEqual([]);
    expect(reasons(key({ recoveryLevel: "Purgeable" }), { requireRecoverable: false })).toEqual([]);
    expect(reasons(key({ recoverableDays: 30 }), { minimumRecoverableDays: 30 })).toEqual([]);
  });

  it("R27 messages say what to do", () => {
    for (const unmet of checkRequirements(key({ keySize: 4096, recoveryLevel: "Purgeable" }), {}, now)) {
      expect(unmet.message).toMatch(/; (use|enable|set|remove|create|extend|wait)/);
    }
  });
});

function fakeProvider(behaviour: Partial<KekProvider>): KekProvider {
  return {
    name: "Local",
    describe: async () => key(),
    listVersions: async () => [key()],
    wrap: async (_ref, dek) => ({
      keyID: "k/1",
      algorithm: "RSA-OAEP-256",
      wrapped: Buffer.from(dek).reverse(),
    }),
    unwrap: async (_ref, wrapped) => Buffer.from(wrapped).reverse(),
    ...behaviour,
  };
}
const ref: KeyReference = { provider: "Local", namespace: "ns", keyName: "k" };

describe("R5 proveAccess", () => {
  it("R5 a round trip proves get, wrapKey and unwrapKey", async () => {
    expect(await proveAccess(fakeProvider({}), ref)).toMatchObject({
      ok: true,
      permissions: ["get", "wrapKey", "unwrapKey"],
      keyID: "k/1",
    });
  });

  it("R5 says which step failed and why, with the permissions proven before it", async () => {
    const denied = fakeProvider({
      unwrap: async () => {
        throw new KeyAccessError("PermissionDenied", "no unwrapKey");
      },
    });
    expect(await proveAccess(denied, ref)).toMatchObject({
      ok: false,
      permissions: ["get", "wrapKey"],
      failedAt: "unwrapKey",
      reason: "PermissionDenied",
    });
    const throttled = fakeProvider({
      describe: async () => {
        throw new KeyAccessError("Throttled", "slow down", { retryAfterMs: 5000 });
      },
    });
    expect(await proveAccess(throttled, ref)).toMatchObject({
      ok: false,
      failedAt: "get",
      reason: "Throttled",
      retryAfterMs: 5000,
    });
  });

  it("R5 an unwrap that gives back other bytes is not proof", async () => {
    const liar = fakeProvider({ unwrap: async () => Buffer.alloc(32) });
    expect(await proveAccess(liar, ref)).toMatchObject({
      ok: false,
      reason: "RoundTripMismatch",
      failedAt: "verify",
    });
  });
});
