import { randomBytes } from "node:crypto";
import { rootCertificates } from "node:tls";
import type { KeyReference } from "../../src/kms/provider.js";
import { LowkeyVault, locateLowkeyVaultJar } from "../../test/harness/lowkey-vault.js";
import { pool, round } from "./util.js";

export type LowkeyResult =
  | { skipped: true; reason: string }
  | {
      skipped: false;
      calls: number;
      concurrency: number;
      wrapMeanMs: number;
      unwrapMeanMs: number;
      callsPerSecond: number;
      operatorRun: string;
    };

/**
 * The Lowkey Vault run: only when the harness finds a jar (LOWKEY_VAULT_JAR or its cache folder:
 * it is on no registry this project can reach). It measures the Azure Key Vault provider's wrap and unwrap
 * against Lowkey Vault at the operator's KMS concurrency: the KMS part of every floor with a real
 * vault's HTTP and TLS in place of the artificial latency.
 */
export async function lowkeyRun(
  calls: number,
  concurrency: number,
  log: (l: string) => void,
): Promise<LowkeyResult> {
  const jar = locateLowkeyVaultJar(log);
  if (!jar.available) return { skipped: true, reason: jar.reason };
  const vault = new LowkeyVault();
  const info = await vault.start(jar);
  log(`Lowkey Vault ${jar.version} at ${info.baseURL} (Java ${jar.javaVersion})`);
  try {
    const { ManagedIdentityCredential } = await import("@azure/identity");
    const { KeyClient } = await import("@azure/keyvault-keys");
    const { AzureKeyVaultProvider } = await import("../../src/kms/azure-key-vault.js");
    process.env.IDENTITY_ENDPOINT = info.identityEndpoint;
    process.env.IDENTITY_HEADER = "header";
    const credential = new ManagedIdentityCredential();
    // trusted through the harness's own CA (never with verification off)
    const clientOptions = {
      disableChallengeResourceVerification: true,
      tlsOptions: { ca: [...rootCertificates, info.caPem] },
    };
    const admin = new KeyClient(info.baseURL, credential, clientOptions);
    await admin.createRsaKey("bench", { keySize: 2048, keyOps: ["wrapKey", "unwrapKey"] });
    const provider = new AzureKeyVaultProvider({
      disableChallengeResourceVerification: true,
      credentialFactory: () => credential,
      maxRetries: 1,
      clientOptions,
    });
    const ref: KeyReference = {
      provider: "AzureKeyVault",
      namespace: "bench",
      vaultURL: info.baseURL,
      keyName: "bench",
      identity: { type: "ManagedIdentity" },
    };
    await provider.wrap(ref, randomBytes(32)); // token and client warm-up
    let wrapMs = 0;
    let unwrapMs = 0;
    const started = Date.now();
    await pool(
      Array.from({ length: calls }, (_, i) => i),
      concurrency,
      async () => {
        const t0 = performance.now();
        const w = await provider.wrap(ref, randomBytes(32));
        const t1 = performance.now();
        await provider.unwrap({ ...ref, keyID: w.keyID }, w.wrapped);
        wrapMs += t1 - t0;
        unwrapMs += performance.now() - t1;
      },
    );
    const seconds = (Date.now() - started) / 1000;
    return {
      skipped: false,
      calls: 2 * calls,
      concurrency,
      wrapMeanMs: round(wrapMs / calls),
      unwrapMeanMs: round(unwrapMs / calls),
      callsPerSecond: round((2 * calls) / seconds, 1),
      operatorRun:
        "not run: the operator process builds its Azure provider without disableChallengeResourceVerification, which Lowkey Vault needs",
    };
  } finally {
    await vault.stop();
  }
}
