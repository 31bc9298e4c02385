import { generateKeyPairSync } from "node:crypto";
import type { KeyVaultKey } from "@azure/keyvault-keys";
import { describe, expect, it } from "vitest";
import { thumbprint } from "../../../src/crypto/thumbprint.js";
import {
  describeVaultKey,
  describeVaultKeyProperties,
  identityCacheKey,
  newestFirst,
} from "../../../src/kms/azure-key-vault.js";
import { localKeyID, parseLocalKeyID } from "../../../src/kms/local.js";
import {
  DefaultKmsRegistry,
  describeRef,
  type KekProvider,
  KeyAccessError,
  type KmsObservation,
  observeProvider,
  refForKeyID,
} from "../../../src/kms/provider.js";

function stub(name: "Local" | "AzureKeyVault", fail?: Error): KekProvider {
  const go = async <T>(v: T) => {
    if (fail) throw fail;
    return v;
  };
  return {
    name,
    describe: () => go({} as never),
    listVersions: () => go([]),
    wrap: () => go({ keyID: "x", algorithm: "RSA-OAEP-256" as const, wrapped: Buffer.alloc(1) }),
    unwrap: () => go(Buffer.alloc(32)),
  };
}
const ref = { provider: "Local" as const, namespace: "ns", keyName: "k" };

describe("R28 the observation decorator", () => {
  it("R28 reports every call with provider, operation, a bounded outcome and seconds", async () => {
    const seen: KmsObservation[] = [];
    const ok = observeProvider(stub("Local"), (o) => seen.push(o));
    await ok.wrap(ref, Buffer.alloc(32));
    await ok.listVersions(ref);
    const failing = observeProvider(stub("AzureKeyVault", new KeyAccessError("KeyDisabled", "off")), (o) =>
      seen.push(o),
    );
    await expect(failing.unwrap(ref, Buffer.alloc(1))).rejects.toThrow("off");
    const broken = observeProvider(stub("Local", new Error("bug")), (o) => seen.push(o));
    await expect(broken.describe(ref)).rejects.toThrow("bug");
    expect(seen.map(({ provider, operation, outcome }) => [provider, operation, outcome])).toEqual([
      ["Local", "wrap", "success"],
      ["Local", "list", "success"],
      ["AzureKeyVault", "unwrap", "KeyDisabled"],
      ["Local", "describe", "Error"],
    ]);
    expect(seen.every((o) => o.seconds >= 0)).toBe(true);
  });

  it("an observer that throws does not change the result", async () => {
    const p = observeProvider(stub("Local"), () => {
      throw new Error("metrics down");
    });
    await expect(p.unwrap(ref, Buffer.alloc(1))).resolves.toHaveLength(32);
  });
});

describe("the KMS registry", () => {
  it("returns the provider for a reference, observed once, and refuses an unconfigured one", async () => {
    const seen: KmsObservation[] = [];
    const registry = new DefaultKmsRegistry({ local: stub("Local"), observe: (o) => seen.push(o) });
    const p = registry.providerFor(ref);
    expect(registry.providerFor(ref)).toBe(p);
    await p.wrap(ref, Buffer.alloc(32));
    expect(seen).toHaveLength(1);
    expect(() => registry.providerFor({ ...ref, provider: "AzureKeyVault" })).toThrow(
      /no KMS provider is configured for AzureKeyVault/,
    );
  });
});

describe("references and ids", () => {
  it("local key ids round-trip", () => {
    const id = localKeyID("ns", "k", "v1");
    expect(parseLocalKeyID(id)).toEqual({ namespace: "ns", name: "k", version: "v1" });
    expect(parseLocalKeyID("https://v/keys/k/1")).toBeUndefined();
    expect(describeRef(refForKeyID(ref, id))).toBe(id);
    expect(
      describeRef({
        provider: "AzureKeyVault",
        namespace: "n",
        vaultURL: "https://v.vault.azure.net/",
        keyName: "k",
      }),
    ).toBe("https://v.vault.azure.net/keys/k");
  });

  it("identity cache keys separate identities and share a credential between keys of one identity", () => {
    expect(identityCacheKey(undefined, "a")).toBe(identityCacheKey({ type: "Default" }, "b"));
    expect(identityCacheKey({ type: "ManagedIdentity", clientID: "1" }, "a")).not.toBe(
      identityCacheKey({ type: "ManagedIdentity", clientID: "2" }, "a"),
    );
    const secret = {
      type: "ClientSecret" as const,
      clientID: "1",
      tenantID: "t",
      clientSecretRef: { name: "s", key: "k" },
    };
    expect(identityCacheKey(secret, "a")).not.toBe(identityCacheKey(secret, "b"));
  });
});

describe("R8 R3 Azure key descriptions", () => {
  const { publicKey } = generateKeyPairSync("rsa", { modulusLength: 3072 });
  const jwk = publicKey.export({ format: "jwk" }) as { n: string; e: string };
  const props = {
    id: "https://v.vault.azure.net/keys/k/abc",
    name: "k",
    vaultUrl: "https://v.vault.azure.net",
    version: "abc",
    enabled: true,
    expiresOn: new Date("2030-01-01T00:00:00Z"),
    recoveryLevel: "Recoverable" as const,
    recoverableDays: 90,
    createdOn: new Date("2025-01-01T00:00:00Z"),
  };

  it("R8 maps id, version, type, size, dates, recovery and the R3 thumbprint of the vault's JWK", () => {
    const key: KeyVaultKey = {
      name: "k",
      id: props.id,
      keyType: "RSA",
      key: {
        kty: "RSA",
        n: Buffer.concat([Buffer.from([0]), Buffer.from(jwk.n, "base64url")]),
        e: Buffer.from(jwk.e, "base64url"),
      },
      properties: props,
    };
    expect(describeVaultKey(key)).toMatchObject({
      keyID: props.id,
      version: "abc",
      keyType: "RSA",
      keySize: 3072,
      enabled: true,
      expiresOn: props.expiresOn,
      recoveryLevel: "Recoverable",
      recoverableDays: 90,
      thumbprint: thumbprint(publicKey),
      publicKeyKnown: true,
    });
  });

  it("R8 a version known only by its properties has no thumbprint", () => {
    expect(describeVaultKeyProperties({ ...props, enabled: false })).toMatchObject({
      enabled: false,
      thumbprint: "",
      publicKeyKnown: false,
    });
  });

  it("R6 versions sort newest first", () => {
    const v = (version: string, t: number) => ({ version, createdOn: new Date(t) });
    expect(newestFirst([v("a", 1), v("c", 3), v("b", 2)]).map((x) => x.version)).toEqual(["c", "b", "a"]);
  });
});
