/**
 * The KMS contract against the Azure Key Vault provider through the real SDK: live against
 * Lowkey Vault (when the harness has a jar) or a real Azure Key Vault (TDE_TEST_AZURE_VAULT_URL),
 * else replayed from test/fixtures/azure/kms-contract/ (recorded against Lowkey Vault with
 * `npm run test:azure:record`). Never skipped.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { rootCertificates } from "node:tls";
import type { TokenCredential } from "@azure/identity";
import type { KeyClient, KeyClientOptions } from "@azure/keyvault-keys";
import { beforeEach } from "vitest";
import { AzureKeyVaultProvider } from "../../../src/kms/azure-key-vault.js";
import type { KeyReference } from "../../../src/kms/provider.js";
import { azureTestVault, importRsaPem } from "../../harness/azure-test-vault.js";
import { FaultProxy } from "../../harness/fault-proxy.js";
import { createTestNamespace, testKubeConfig } from "../../harness/kube.js";
import { generateServerTls } from "../../harness/pki.js";
import { freePort } from "../../harness/ports.js";
import { kekProviderContract } from "./contract.js";

/** Lowkey Vault allows a key only the operations it was made with (Azure: all of its type's). */
const KEY_OPS = ["encrypt", "decrypt", "wrapKey", "unwrapKey"];

const vault = azureTestVault("kms-contract");
const playback = vault.kind === "playback";

let credential: TokenCredential;
let admin: KeyClient;
let provider: AzureKeyVaultProvider;
/** the current version of each key, remembered when made (a disabled version cannot be read back) */
const current = new Map<string, string>();

function makeProvider(
  options: { clientOptions?: KeyClientOptions; onThrottled?: () => void; disableChallenge?: boolean } = {},
) {
  return new AzureKeyVaultProvider({
    disableChallengeResourceVerification:
      options.disableChallenge ?? vault.disableChallengeResourceVerification,
    credentialFactory: () => credential,
    maxRetries: 1,
    clientOptions: options.clientOptions ?? vault.clientOptions,
    ...(options.onThrottled ? { onThrottled: options.onThrottled } : {}),
  });
}

// a client per test: each recording holds its own challenge exchange and replays alone
beforeEach(async () => {
  const { KeyClient } = await import("@azure/keyvault-keys");
  credential = await vault.credential();
  admin = new KeyClient(vault.vaultURL, credential, vault.clientOptions);
  provider = makeProvider();
});

const pollMs = playback ? 0 : 200;

kekProviderContract(
  `KMS contract: Azure Key Vault provider through the real SDK ${vault.label}`,
  async () => {
    const namespace = await createTestNamespace(testKubeConfig(), "kms-azure");
    const ref = (name: string, vaultURL = vault.vaultURL): KeyReference => ({
      provider: "AzureKeyVault",
      namespace,
      vaultURL,
      keyName: name,
      identity: { type: "ManagedIdentity" },
    });
    return {
      get provider() {
        return provider;
      },
      namespace,
      // Lowkey Vault keeps deleted keys Recoverable for 90 days; a real vault: whatever it is set to
      recoverable90: vault.kind !== "azure",
      retriesThrottled: true,
      keyName: (base) => vault.keyName(`kc-${base}`),
      async createKey(name, options = {}) {
        const key = await admin.createRsaKey(name, {
          keySize: options.size ?? 2048,
          keyOps: KEY_OPS,
          ...(options.notBefore ? { notBefore: options.notBefore } : {}),
          ...(options.expiresOn ? { expiresOn: options.expiresOn } : {}),
        });
        current.set(name, key.properties.version!);
        return ref(name);
      },
      async rotateKey(r) {
        const key = await admin.createRsaKey(r.keyName, { keySize: 2048, keyOps: KEY_OPS });
        current.set(r.keyName, key.properties.version!);
        return key.properties.version!;
      },
      currentVersion: async (r) => (await admin.getKey(r.keyName)).properties.version!,
      async setEnabled(r, enabled) {
        await admin.updateKeyProperties(r.keyName, current.get(r.keyName)!, { enabled });
      },
      async deleteKey(r) {
        await (await admin.beginDeleteKey(r.keyName, { intervalInMs: pollMs })).pollUntilDone();
      },
      async recoverKey(r) {
        await (await admin.beginRecoverDeletedKey(r.keyName, { intervalInMs: pollMs })).pollUntilDone();
      },
      async importKey(name, pem) {
        const key = await importRsaPem(admin, name, pem, [...KEY_OPS]);
        current.set(name, key.properties.version!);
        return ref(name);
      },
      async revoked(r) {
        // An identity whose authority does not answer: authentication fails (Lowkey Vault enforces
        // no permissions, so a real PermissionDenied is the classifier's unit tests' and real Azure's).
        const { ClientSecretCredential } = await import("@azure/identity");
        const revokedCredential = new ClientSecretCredential(
          "00000000-0000-0000-0000-000000000000",
          "revoked",
          "wrong",
          { authorityHost: "https://127.0.0.1:1" },
        );
        const revokedProvider = new AzureKeyVaultProvider({
          disableChallengeResourceVerification: vault.disableChallengeResourceVerification,
          maxRetries: 0,
          credentialFactory: () => revokedCredential,
          clientOptions: vault.clientOptions,
        });
        return { provider: revokedProvider, ref: { ...r, identity: { type: "ClientSecret" } } };
      },
      async throttled(r) {
        let seen = 0;
        const onThrottled = () => {
          seen++;
        };
        if (playback) {
          // the recorded 429s (with their Retry-After) are served as they were
          const url = vault.url("proxy", () => "");
          return {
            provider: makeProvider({ onThrottled }),
            ref: ref(r.keyName, url),
            throttleOnce: async () => {},
            throttleAlways: async () => {},
            throttledSeen: () => seen,
            stop: async () => {},
          };
        }
        // the fault proxy, terminating TLS with a certificate of its own CA, in front of the vault
        const dir = mkdtempSync(join(tmpdir(), "tde-kms-proxy-"));
        const tls = generateServerTls(dir, ["127.0.0.1"], "fault-proxy");
        const proxy = await FaultProxy.start({
          upstream: {
            url: vault.vaultURL,
            ...(vault.caPem ? { ca: [...rootCertificates, vault.caPem].join("\n") } : {}),
          },
          tls: { cert: readFileSync(tls.cert), key: readFileSync(tls.key) },
        });
        const url = vault.url("proxy", () => proxy.url);
        const through = makeProvider({
          onThrottled,
          // the proxy is not under the vault's domain (for a real vault too)
          disableChallenge: true,
          clientOptions: {
            ...vault.clientOptions,
            tlsOptions: { ca: [...rootCertificates, ...(vault.caPem ? [vault.caPem] : []), tls.caPem] },
          },
        });
        return {
          provider: through,
          ref: ref(r.keyName, url),
          throttleOnce: (seconds) => proxy.throttle(seconds, 1),
          throttleAlways: (seconds) => proxy.throttle(seconds),
          throttledSeen: () => seen,
          async stop() {
            await proxy.stop();
            rmSync(dir, { recursive: true, force: true });
          },
        };
      },
      async unreachable(r) {
        // a port the kernel gave out and nothing listens on
        const port = playback ? 0 : await freePort();
        const closed = vault.url("closed", () => `https://127.0.0.1:${port}`);
        return { provider: makeProvider(), ref: ref(r.keyName, closed) };
      },
    };
  },
);
