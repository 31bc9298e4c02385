import { randomBytes } from "node:crypto";
import type { KeyReference } from "../../src/kms/provider.js";
import { LowkeyVault } from "../../test/harness/lowkey-vault.js";
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
 * The Lowkey Vault run: only when LOWKEY_VAULT_JAR names the jar (it is not on the Maven
 * registry this project can reach). It measures the Azure Key Vault provider's wrap and unwrap
 * against Lowkey Vault at the operator's KMS concurrency: the KMS part of every floor with a real
 * vault's HTTP and TLS in place of the artificial latency.
 */
export async function lowkeyRun(
  calls: number,
  concurrency: number,
  log: (l: string) => void,
): Promise<LowkeyResult> {
  const jar = process.env.LOWKEY_VAULT_JAR;
  if (!jar) {
    return {
      skipped: true,
      reason:
        "LOWKEY_VAULT_JAR is not set: Lowkey Vault (com.github.nagyesta.lowkey-vault:lowkey-vault-app) is not on the Maven registry reachable here; set LOWKEY_VAULT_JAR=/path/to/lowkey-vault-app.jar to run it",
    };
  }
  const vault = new LowkeyVault();
  const info = await vault.start(jar);
  log(`Lowkey Vault at ${info.baseURL}`);
  try {
    const { ManagedIdentityCredential } = await import("@azure/identity");
    const { KeyClient } = await import("@azure/keyvault-keys");
    const { AzureKeyVaultProvider } = await import("../../src/kms/azure-key-vault.js");
    process.env.IDENTITY_ENDPOINT = info.identityEndpoint;
    process.env.IDENTITY_HEADER = "header";
    const credential = new ManagedIdentityCredential();
    const admin = new KeyClient(info.baseURL, credential, { disableChallengeResourceVerification: true });
    await admin.createRsaKey("bench", { keySize: 2048 });
    const provider = new AzureKeyVaultProvider({
      disableChallengeResourceVerification: true,
      credentialFactory: () => credential,
      maxRetries: 1,
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
