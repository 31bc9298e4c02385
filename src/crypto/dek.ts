/**
 * Data-encryption keys (R1): 32 random bytes (AES-256) that live only in memory.
 * Nothing here writes, logs or serialises a DEK; callers zero it when done.
 */
import { randomBytes, randomUUID } from "node:crypto";

/** Bytes in a DEK: AES-256. */
export const DEK_LENGTH = 32;

/** A fresh DEK: 32 bytes from the operating system's CSPRNG. */
export function generateDek(): Buffer {
  // allocUnsafeSlow-backed buffers are not pooled, so zeroing one cannot miss a shared slab copy.
  const dek = Buffer.allocUnsafeSlow(DEK_LENGTH);
  randomBytes(DEK_LENGTH).copy(dek);
  return dek;
}

/** A new DEK id: a random UUID, safe to show anywhere (it says nothing about the key). */
export function newDekID(): string {
  return randomUUID();
}

/** Overwrites key bytes with zeros. Best effort: JavaScript may have copied them before. */
export function zeroize(bytes: Uint8Array | undefined): void {
  bytes?.fill(0);
}

/** Runs `use` with the DEK and zeroes it afterwards, whatever `use` does. */
export async function withDek<T>(dek: Buffer, use: (dek: Buffer) => Promise<T> | T): Promise<T> {
  try {
    return await use(dek);
  } finally {
    zeroize(dek);
  }
}

/** True when `bytes` has the length of a DEK. */
export function isDekLength(bytes: Uint8Array): boolean {
  return bytes.length === DEK_LENGTH;
}
