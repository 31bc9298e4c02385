import { createPrivateKey } from "node:crypto";
import { inject } from "vitest";
import { AzureKeyVaultProvider } from "../../../src/kms/azure-key-vault.js";
import type { KeyReference } from "../../../src/kms/provider.js";
import { createTestNamespace, testKubeConfig } from "../../harness/kube.js";
import { kekProviderContract } from "./contract.js";

const vault = inject("lowkeyVault");
const title = `KMS contract: Azure Key Vault provider on Lowkey Vault through the real SDK${
  vault.available ? "" : ` (skipped: ${vault.reason})`
}`;

kekProviderContract(title, vault.available, async () => {
  if (!vault.available) throw new Error("unreachable");
  const { ManagedIdentityCredential } = await import("@azure/identity");
  const { KeyClient } = await import("@azure/keyvault-keys");
  process.env.IDENTITY_ENDPOINT = vault.identityEndpoint;
  process.env.IDENTITY_HEADER = "header";
  const namespace = await createTestNamespace(testKubeConfig(), "kms-azure");
  const credential = new ManagedIdentityCredential();
  const admin = new KeyClient(vault.baseURL, credential, { disableChallengeResourceVerification: true });
  const provider = new AzureKeyVaultProvider({
    disableChallengeResourceVerification: true,
    credentialFactory: () => credential,
    maxRetries: 1,
  });
  const ref = (name: string): KeyReference => ({
    provider: "AzureKeyVault",
    namespace,
    vaultURL: vault.baseURL,
    keyName: name,
    identity: { type: "ManagedIdentity" },
  });
  const newestVersion = async (name: string) => (await admin.getKey(name)).properties.version ?? "";
  return {
    provider,
    namespace,
    // Lowkey Vault reports its own recovery level and days; R5's check is covered by the Local run.
    recoverable90: false,
    async createKey(name, options = {}) {
      await admin.createRsaKey(name, {
        keySize: options.size ?? 2048,
        ...(options.notBefore ? { notBefore: options.notBefore } : {}),
        ...(options.expiresOn ? { expiresOn: options.expiresOn } : {}),
      });
      return ref(name);
    },
    rotateKey: async (r) => {
      await admin.createRsaKey(r.keyName, { keySize: 2048 });
    },
    setEnabled: async (r, enabled) => {
      await admin.updateKeyProperties(r.keyName, await newestVersion(r.keyName), { enabled });
    },
    deleteKey: async (r) => {
      await (await admin.beginDeleteKey(r.keyName)).pollUntilDone();
    },
    recoverKey: async (r) => {
      await (await admin.beginRecoverDeletedKey(r.keyName)).pollUntilDone();
    },
    async importKey(name, pem) {
      const jwk = createPrivateKey(pem).export({ format: "jwk" });
      const b = (v: unknown) => Buffer.from(String(v), "base64url");
      await admin.importKey(name, {
        kty: "RSA",
        n: b(jwk.n),
        e: b(jwk.e),
        d: b(jwk.d),
        p: b(jwk.p),
        q: b(jwk.q),
        dp: b(jwk.dp),
        dq: b(jwk.dq),
        qi: b(jwk.qi),
      });
      return ref(name);
    },
    async revoked(r) {
      // An identity whose token endpoint no longer answers: authentication fails.
      const revokedProvider = new AzureKeyVaultProvider({
        disableChallengeResourceVerification: true,
        maxRetries: 0,
        credentialFactory: async () => {
          const { ClientSecretCredential } = await import("@azure/identity");
          return new ClientSecretCredential("00000000-0000-0000-0000-000000000000", "revoked", "wrong", {
            authorityHost: "https://127.0.0.1:1",
          });
        },
      });
      return { provider: revokedProvider, ref: { ...r, identity: { type: "ClientSecret" } } };
    },
  };
});
