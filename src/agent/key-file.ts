/**
 * The key files database engines read (R26). Pure: a DEK in, the file's bytes out, and the
 * reverse for checks. Callers zero both the DEK and the rendered bytes when done.
 *
 * - raw: the 32 key bytes, nothing else (engines that read a binary key file).
 * - hex: 64 lowercase hex characters and a newline.
 * - mariadb: the `file_key_management` plugin's plain-text format, one `<id>;<hex key>` line
 *   per key id. A 64-hex-character key is AES-256. MariaDB uses key id 1 for the redo log,
 *   temporary files and tables without ENCRYPTION_KEY_ID, so key 1 is the default.
 */

export type KeyFileFormat = "raw" | "hex" | "mariadb";
export const KEY_FILE_FORMATS: readonly KeyFileFormat[] = ["raw", "hex", "mariadb"];

/** The largest key id MariaDB accepts (an unsigned 32-bit number). */
export const MARIADB_MAX_KEY_ID = 4_294_967_295;
const KEY_BYTES = 32;

export class KeyFileError extends Error {
  override readonly name = "KeyFileError";
}

/** Renders the key file for `format`. The result holds key material: zero it after writing. */
export function renderKeyFile(
  dek: Uint8Array,
  format: KeyFileFormat,
  keyIDs: readonly number[] = [1],
): Buffer {
  if (dek.length !== KEY_BYTES) throw new KeyFileError(`a DEK has ${KEY_BYTES} bytes, not ${dek.length}`);
  switch (format) {
    case "raw": {
      // Buffer.alloc is never pooled: zeroing it later cannot miss a copy in a shared slab.
      const out = Buffer.alloc(KEY_BYTES);
      out.set(dek);
      return out;
    }
    case "hex":
      return hexLines([""], dek);
    case "mariadb": {
      if (keyIDs.length === 0) throw new KeyFileError("a MariaDB key file needs at least one key id");
      for (const id of keyIDs) {
        if (!Number.isInteger(id) || id < 1 || id > MARIADB_MAX_KEY_ID) {
          throw new KeyFileError(
            `MariaDB key ids are whole numbers from 1 to ${MARIADB_MAX_KEY_ID}, not ${id}`,
          );
        }
      }
      return hexLines(
        keyIDs.map((id) => `${id};`),
        dek,
      );
    }
  }
}

/**
 * Writes each prefix followed by the key in hex and a newline, directly into one buffer, so no
 * JavaScript string ever holds the key (strings cannot be zeroed).
 */
function hexLines(prefixes: readonly string[], dek: Uint8Array): Buffer {
  const lineLength = (p: string) => Buffer.byteLength(p) + KEY_BYTES * 2 + 1;
  const out = Buffer.alloc(prefixes.reduce((n, p) => n + lineLength(p), 0));
  let at = 0;
  for (const prefix of prefixes) {
    at += out.write(prefix, at, "utf8");
    for (const byte of dek) {
      out[at++] = HEX_DIGITS[byte >> 4] as number;
      out[at++] = HEX_DIGITS[byte & 0x0f] as number;
    }
    out[at++] = 0x0a;
  }
  return out;
}

const HEX_DIGITS = Buffer.from("0123456789abcdef", "ascii");

function hexValue(code: number): number {
  if (code >= 0x30 && code <= 0x39) return code - 0x30;
  if (code >= 0x61 && code <= 0x66) return code - 0x61 + 10;
  if (code >= 0x41 && code <= 0x46) return code - 0x41 + 10;
  return -1;
}

function decodeHex(bytes: Uint8Array, what: string): Buffer {
  if (bytes.length !== KEY_BYTES * 2) {
    throw new KeyFileError(`${what}: expected ${KEY_BYTES * 2} hex characters, found ${bytes.length}`);
  }
  const out = Buffer.alloc(KEY_BYTES);
  for (let i = 0; i < KEY_BYTES; i++) {
    const hi = hexValue(bytes[2 * i] as number);
    const lo = hexValue(bytes[2 * i + 1] as number);
    if (hi < 0 || lo < 0) {
      out.fill(0);
      throw new KeyFileError(`${what}: not hex`);
    }
    out[i] = (hi << 4) | lo;
  }
  return out;
}

/** Splits on newlines, dropping a trailing carriage return on each line. */
function lines(content: Uint8Array): Buffer[] {
  const buffer = Buffer.from(content.buffer, content.byteOffset, content.length);
  const result: Buffer[] = [];
  let start = 0;
  for (let i = 0; i <= buffer.length; i++) {
    if (i === buffer.length || buffer[i] === 0x0a) {
      let end = i;
      if (end > start && buffer[end - 1] === 0x0d) end -= 1;
      result.push(buffer.subarray(start, end));
      start = i + 1;
    }
  }
  return result;
}

/**
 * Reads a key file back: the keys it holds by id (raw and hex hold one key, reported as id 1).
 * For tests and for checking a written file; never logs what it reads.
 */
export function parseKeyFile(content: Uint8Array, format: KeyFileFormat): Map<number, Buffer> {
  const keys = new Map<number, Buffer>();
  switch (format) {
    case "raw":
      if (content.length !== KEY_BYTES) {
        throw new KeyFileError(`a raw key file holds ${KEY_BYTES} bytes, not ${content.length}`);
      }
      keys.set(1, Buffer.from(content));
      return keys;
    case "hex": {
      const meaningful = lines(content).filter((l) => l.length > 0);
      if (meaningful.length !== 1) throw new KeyFileError("a hex key file holds exactly one line");
      keys.set(1, decodeHex(meaningful[0] as Buffer, "hex key file"));
      return keys;
    }
    case "mariadb": {
      lines(content).forEach((line, index) => {
        const where = `line ${index + 1}`;
        if (line.length === 0 || line[0] === 0x23 /* # */) return;
        const separator = line.indexOf(0x3b /* ; */);
        if (separator < 0) throw new KeyFileError(`${where}: expected "<id>;<hex key>"`);
        const idText = line.subarray(0, separator).toString("ascii");
        if (!/^[0-9]+$/.test(idText)) throw new KeyFileError(`${where}: the key id is not a number`);
        const id = Number(idText);
        if (id < 1 || id > MARIADB_MAX_KEY_ID)
          throw new KeyFileError(`${where}: key id ${id} is out of range`);
        if (keys.has(id)) throw new KeyFileError(`${where}: key id ${id} appears twice`);
        keys.set(id, decodeHex(line.subarray(separator + 1), where));
      });
      if (keys.size === 0) throw new KeyFileError("the MariaDB key file holds no key");
      return keys;
    }
  }
}
