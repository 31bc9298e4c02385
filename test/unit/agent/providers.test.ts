import { describe, expect, it } from "vitest";
import { keyReferenceFor, providerUnwrapper } from "../../../src/agent/providers.js";
import type { Wrap } from "../../../src/crypto/index.js";
import { type KekProvider, KeyAccessError, type KeyReference } from "../../../src/kms/provider.js";

const wrap = (keyID: string): Wrap => ({
  keyID,
  thumbprint: "a".repeat(64),
  algorithm: "RSA-OAEP-256",
  wrapped: "d3JhcHBlZA==",
  addedAt: "2026-01-01T00:00:00.000Z",
  role: "protector",
});

describe("R26 the agent finds each wrap's KEK by its key id", () => {
  it("maps a local key id to the Local provider in the key's namespace, version pinned", () => {
    expect(keyReferenceFor(wrap("local://shop/kek/0123abcd"), { type: "Default" })).toEqual({
      provider: "Local",
      namespace: "shop",
      keyName: "kek",
      keyID: "local://shop/kek/0123abcd",
    });
  });

  it("maps a Key Vault key id to the Azure provider with the pod's identity", () => {
    const id = "https://contoso.vault.azure.net/keys/db-kek/4f2a9c";
    expect(keyReferenceFor(wrap(id), { type: "WorkloadIdentity", clientID: "cid", tenantID: "tid" })).toEqual(
      {
        provider: "AzureKeyVault",
        namespace: "",
        keyName: "db-kek",
        keyID: id,
        identity: { type: "WorkloadIdentity", clientID: "cid", tenantID: "tid" },
      },
    );
  });

  it("refuses any other key id as KeyNotFound", () => {
    expect(() => keyReferenceFor(wrap("vault://elsewhere/k/1"), { type: "Default" })).toThrow(KeyAccessError);
  });

  it("sends each wrap to its provider", async () => {
    const seen: string[] = [];
    const fake = (name: KekProvider["name"]): KekProvider => ({
      name,
      describe: () => Promise.reject(new Error("unused")),
      listVersions: () => Promise.reject(new Error("unused")),
      wrap: () => Promise.reject(new Error("unused")),
      unwrap: async (ref: KeyReference) => {
        seen.push(`${name} ${ref.keyID}`);
        return Buffer.alloc(32);
      },
    });
    const unwrapOne = providerUnwrapper({
      identity: { type: "Default" },
      kubeconfig: undefined,
      local: fake("Local"),
      azure: fake("AzureKeyVault"),
    });
    await unwrapOne(wrap("local://ns/k/1"), Buffer.from("x"));
    await unwrapOne(wrap("https://v.vault.azure.net/keys/k/2"), Buffer.from("x"));
    expect(seen).toEqual(["Local local://ns/k/1", "AzureKeyVault https://v.vault.azure.net/keys/k/2"]);
  });
});
