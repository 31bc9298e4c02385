import { describe, expect, it } from "vitest";
import { parseKeyID } from "../../../src/kms/azure-key-vault.js";

describe("Key Vault key ids", () => {
  it("splits a versioned key id into vault, name and version", () => {
    expect(parseKeyID("https://shop-kv.vault.azure.net/keys/orders-kek/0123abcd")).toEqual({
      vaultURL: "https://shop-kv.vault.azure.net",
      name: "orders-kek",
      version: "0123abcd",
    });
  });

  it("keeps the port of a vault on a non-default port (Lowkey Vault) and allows no version", () => {
    expect(parseKeyID("https://localhost:8443/keys/k1/")).toEqual({
      vaultURL: "https://localhost:8443",
      name: "k1",
    });
  });

  it("refuses what is not a key id", () => {
    for (const bad of [
      "orders-kek",
      "https://shop-kv.vault.azure.net/secrets/orders-kek/1",
      "https://shop-kv.vault.azure.net/keys",
      "https://shop-kv.vault.azure.net/keys/a/b/c",
      "ftp://shop-kv.vault.azure.net/keys/a/b",
    ]) {
      expect(parseKeyID(bad), bad).toBeUndefined();
    }
  });
});
