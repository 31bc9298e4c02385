/**
 * Key thumbprints (R3): SHA-256 of the DER SubjectPublicKeyInfo of an RSA public key, hex.
 * The same key material gives the same thumbprint in every vault, whatever its URL.
 */
import { createHash, createPublicKey, KeyObject } from "node:crypto";

/** An RSA public key as JWK members: bytes (as vault SDKs return them) or base64url strings. */
export interface RsaJwkPublic {
  n: Uint8Array | string;
  e: Uint8Array | string;
}

export type PublicKeyInput = KeyObject | RsaJwkPublic;

function toBase64Url(value: Uint8Array | string): string {
  if (typeof value === "string") {
    return toBase64Url(Buffer.from(value, "base64url"));
  }
  // Big-endian integers: strip leading zero bytes so "00 c3 ..." and "c3 ..." are one key.
  let start = 0;
  while (start < value.length - 1 && value[start] === 0) start++;
  return Buffer.from(value.subarray(start)).toString("base64url");
}

/** The public KeyObject for any accepted input (a private KeyObject gives its public half). */
export function rsaPublicKey(input: PublicKeyInput): KeyObject {
  let key: KeyObject;
  if (input instanceof KeyObject) {
    key = input.type === "public" ? input : createPublicKey(input);
  } else {
    key = createPublicKey({
      key: { kty: "RSA", n: toBase64Url(input.n), e: toBase64Url(input.e) },
      format: "jwk",
    });
  }
  if (key.asymmetricKeyType !== "rsa") {
    throw new Error(`expected an RSA key, got ${key.asymmetricKeyType ?? "an unknown key type"}`);
  }
  return key;
}

/** DER-encoded SubjectPublicKeyInfo. */
export function publicKeyDer(input: PublicKeyInput): Buffer {
  return rsaPublicKey(input).export({ type: "spki", format: "der" });
}

/** SHA-256 hex of the DER SubjectPublicKeyInfo of the key. */
export function thumbprint(input: PublicKeyInput): string {
  return thumbprintOfDer(publicKeyDer(input));
}

/** SHA-256 hex of an already DER-encoded SubjectPublicKeyInfo. */
export function thumbprintOfDer(der: Uint8Array): string {
  return createHash("sha256").update(der).digest("hex");
}

/** Modulus size in bits. */
export function rsaKeySize(input: PublicKeyInput): number {
  const details = rsaPublicKey(input).asymmetricKeyDetails;
  return details?.modulusLength ?? 0;
}

const THUMBPRINT_PATTERN = /^[0-9a-f]{64}$/;
export function isThumbprint(value: string): boolean {
  return THUMBPRINT_PATTERN.test(value);
}
