import { randomBytes } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { KeyFileError, parseKeyFile, renderKeyFile } from "../../../src/agent/key-file.js";

const dek = Buffer.from("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1eff", "hex");

describe("R26 key-file formats", () => {
  it("raw is the 32 key bytes and nothing else", () => {
    const file = renderKeyFile(dek, "raw");
    expect(file.equals(dek)).toBe(true);
    file.fill(0);
    expect(dek[31]).toBe(0xff);
  });

  it("hex is 64 lowercase hex characters and a newline", () => {
    expect(renderKeyFile(dek, "hex").toString()).toBe(`${dek.toString("hex")}\n`);
  });

  it("mariadb is file_key_management lines <id>;<64 hex>, key 1 by default", () => {
    expect(renderKeyFile(dek, "mariadb").toString()).toBe(`1;${dek.toString("hex")}\n`);
    expect(renderKeyFile(dek, "mariadb", [1, 2, 100]).toString()).toBe(
      [1, 2, 100].map((id) => `${id};${dek.toString("hex")}\n`).join(""),
    );
  });

  it("refuses a key that is not 32 bytes and key ids MariaDB would not read", () => {
    expect(() => renderKeyFile(Buffer.alloc(16), "raw")).toThrow(KeyFileError);
    expect(() => renderKeyFile(dek, "mariadb", [])).toThrow(/at least one key id/);
    expect(() => renderKeyFile(dek, "mariadb", [0])).toThrow(/1 to 4294967295/);
    expect(() => renderKeyFile(dek, "mariadb", [1.5])).toThrow(KeyFileError);
  });

  it("round-trips every format for any key", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (bytes) => {
        for (const format of ["raw", "hex", "mariadb"] as const) {
          const parsed = parseKeyFile(renderKeyFile(bytes, format), format);
          expect(parsed.size).toBe(1);
          expect(parsed.get(1)?.equals(Buffer.from(bytes))).toBe(true);
        }
      }),
    );
  });

  it("reads MariaDB files as the plugin writes them: comments, blank lines, CRLF, upper-case hex", () => {
    const other = randomBytes(32);
    const text = `# keys\r\n\r\n1;${dek.toString("hex").toUpperCase()}\r\n2;${other.toString("hex")}\n`;
    const keys = parseKeyFile(Buffer.from(text), "mariadb");
    expect([...keys.keys()]).toEqual([1, 2]);
    expect(keys.get(1)?.equals(dek)).toBe(true);
    expect(keys.get(2)?.equals(other)).toBe(true);
  });

  it.each([
    ["raw", Buffer.alloc(31), /32 bytes/],
    ["hex", Buffer.from("abc\n"), /64 hex characters/],
    ["hex", Buffer.from(`${"zz".repeat(32)}\n`), /not hex/],
    ["hex", Buffer.from(`${dek.toString("hex")}\n${dek.toString("hex")}\n`), /exactly one line/],
    ["mariadb", Buffer.from(""), /holds no key/],
    ["mariadb", Buffer.from(`${dek.toString("hex")}\n`), /line 1: expected/],
    ["mariadb", Buffer.from(`x;${dek.toString("hex")}\n`), /not a number/],
    ["mariadb", Buffer.from(`0;${dek.toString("hex")}\n`), /out of range/],
    [
      "mariadb",
      Buffer.from(`1;${dek.toString("hex")}\n1;${dek.toString("hex")}\n`),
      /line 2: key id 1 appears twice/,
    ],
  ] as const)("refuses a malformed %s file", (format, content, message) => {
    expect(() => parseKeyFile(content, format)).toThrow(message);
  });

  it("never puts key bytes in an error message", () => {
    const secret = `1;${dek.toString("hex").slice(0, 62)}zz\n`;
    try {
      parseKeyFile(Buffer.from(secret), "mariadb");
      expect.unreachable();
    } catch (error) {
      expect((error as Error).message).not.toContain(dek.toString("hex").slice(0, 16));
    }
  });
});
