import { createHmac, generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { DEK_LENGTH, generateDek, newDekID, withDek, zeroize } from "../../../src/crypto/dek.js";
import { computeKcv, kcvMatches } from "../../../src/crypto/kcv.js";
import { publicKeyDer, rsaKeySize, thumbprint, thumbprintOfDer } from "../../../src/crypto/thumbprint.js";

describe("R1 DEK", () => {
  it("R1 a DEK is 32 random bytes, different each time", () => {
    const a = generateDek();
    const b = generateDek();
    expect(a.length).toBe(DEK_LENGTH);
    expect(a.equals(b)).toBe(false);
  });

  it("R1 withDek zeroes the DEK after use, even when the use throws", async () => {
    const dek = generateDek();
    await expect(
      withDek(dek, () => {
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    expect(dek.every((b) => b === 0)).toBe(true);
    const other = generateDek();
    zeroize(other);
    expect(other.every((b) => b === 0)).toBe(true);
  });

  it("gives DEK ids that are unique and carry no key bytes", () => {
    expect(newDekID()).not.toBe(newDekID());
  });
});

describe("R2 KCV", () => {
  it("R2 is the first 8 bytes of HMAC-SHA256(DEK, 'tde.dev/kcv') in hex", () => {
    const dek = Buffer.alloc(32, 7);
    const expected = createHmac("sha256", dek).update("tde.dev/kcv").digest("hex").slice(0, 16);
    expect(computeKcv(dek)).toBe(expected);
    expect(kcvMatches(dek, expected)).toBe(true);
    expect(kcvMatches(Buffer.alloc(32, 8), expected)).toBe(false);
    expect(kcvMatches(dek, "not-a-kcv")).toBe(false);
  });
});

describe("R3 thumbprint", () => {
  const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });

  it("R3 is SHA-256 of the DER SubjectPublicKeyInfo, the same from a KeyObject, its private half or its JWK", () => {
    const jwk = publicKey.export({ format: "jwk" }) as { n: string; e: string };
    const fromKey = thumbprint(publicKey);
    expect(fromKey).toMatch(/^[0-9a-f]{64}$/);
    expect(thumbprint(privateKey)).toBe(fromKey);
    expect(thumbprint({ n: jwk.n, e: jwk.e })).toBe(fromKey);
    expect(thumbprint({ n: Buffer.from(jwk.n, "base64url"), e: Buffer.from(jwk.e, "base64url") })).toBe(
      fromKey,
    );
    expect(thumbprintOfDer(publicKeyDer(publicKey))).toBe(fromKey);
    expect(rsaKeySize(publicKey)).toBe(2048);
  });

  it("R3 a modulus with a leading zero byte (as some vaults return it) is the same key", () => {
    const jwk = publicKey.export({ format: "jwk" }) as { n: string; e: string };
    const padded = Buffer.concat([Buffer.from([0]), Buffer.from(jwk.n, "base64url")]);
    expect(thumbprint({ n: padded, e: Buffer.from(jwk.e, "base64url") })).toBe(thumbprint(publicKey));
  });

  it("R3 different key material gives a different thumbprint", () => {
    const other = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey;
    expect(thumbprint(other)).not.toBe(thumbprint(publicKey));
  });

  it("refuses a non-RSA key", () => {
    const ec = generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey;
    expect(() => thumbprint(ec)).toThrow(/expected an RSA key/);
  });
});
