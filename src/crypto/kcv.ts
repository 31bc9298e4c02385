/**
 * Key check value (R2): the first 8 bytes of HMAC-SHA256(DEK, "tde.dev/kcv"), hex. It proves an
 * unwrap gave back the right DEK without revealing anything useful about the DEK.
 */
import { createHmac, timingSafeEqual } from "node:crypto";

export const KCV_LABEL = "tde.dev/kcv";
/** Hex characters in a KCV (8 bytes). */
export const KCV_HEX_LENGTH = 16;
const KCV_PATTERN = /^[0-9a-f]{16}$/;

export function computeKcv(dek: Uint8Array): string {
  return createHmac("sha256", dek).update(KCV_LABEL).digest().subarray(0, 8).toString("hex");
}

export function isKcv(value: string): boolean {
  return KCV_PATTERN.test(value);
}

/** Constant-time comparison of the DEK's KCV with the expected one. */
export function kcvMatches(dek: Uint8Array, expected: string): boolean {
  if (!isKcv(expected)) return false;
  const actual = Buffer.from(computeKcv(dek), "hex");
  return timingSafeEqual(actual, Buffer.from(expected, "hex"));
}
