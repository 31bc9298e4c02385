import { describe, expect, it } from "vitest";
import { keyWithoutVersion, sameKeyOtherVersion } from "../../../src/kms/key-id.js";

describe("key ids without their version (R16: a rotation is a new version of the same key)", () => {
  it.each([
    ["https://v1.vault.azure.net/keys/kek/0123abcd", "https://v1.vault.azure.net/keys/kek"],
    ["local://tenant-a/kek/3", "local://tenant-a/kek"],
    // no version, or a shape no provider makes: the id names only itself
    ["https://v1.vault.azure.net/keys/kek", "https://v1.vault.azure.net/keys/kek"],
    ["local://tenant-a/kek", "local://tenant-a/kek"],
    ["local://tenant-a/kek/", "local://tenant-a/kek/"],
    ["https://v1.vault.azure.net/secrets/kek/1", "https://v1.vault.azure.net/secrets/kek/1"],
    ["kek", "kek"],
  ])("%s names the key %s", (id, key) => {
    expect(keyWithoutVersion(id)).toBe(key);
  });

  it("tells a new version of one key from another key", () => {
    expect(sameKeyOtherVersion("local://ns/kek/1", "local://ns/kek/2")).toBe(true);
    expect(
      sameKeyOtherVersion("https://v.vault.azure.net/keys/kek/a1", "https://v.vault.azure.net/keys/kek/b2"),
    ).toBe(true);
    expect(sameKeyOtherVersion("local://ns/kek/1", "local://ns/kek/1")).toBe(false);
    expect(sameKeyOtherVersion("local://ns/kek/1", "local://ns/other/2")).toBe(false);
    expect(sameKeyOtherVersion("local://ns/kek/1", "local://other-ns/kek/2")).toBe(false);
    expect(sameKeyOtherVersion("local://ns/kek/1", "https://v.vault.azure.net/keys/kek/1")).toBe(false);
  });
});
