/**
 * The vault an Azure test file talks to, live or from recordings (see azure-recording.ts):
 *
 * - live, Lowkey Vault (the default when the harness has a jar): https://127.0.0.1:PORT and
 *   https://localhost:PORT, trusted through the harness's own CA, the managed-identity token of
 *   Lowkey Vault's own endpoint; with TDE_AZURE_RECORD=1 the exchanges are recorded;
 * - live, a real Azure Key Vault: TDE_TEST_AZURE_VAULT_URL (and TDE_TEST_AZURE_VAULT2_URL for a
 *   second vault, else the same one), DefaultAzureCredential, challenge verification on, key
 *   names suffixed per run (a real vault keeps deleted names);
 * - playback (the default without a jar): placeholder URLs, a credential that never leaves the
 *   process, every answer from test/fixtures/azure/<suite>/.
 *
 * `azureTestVault(suite)` registers the per-test recording hooks; call it at the top of a file.
 */
import { createPrivateKey, randomBytes } from "node:crypto";
import { join } from "node:path";
import { rootCertificates } from "node:tls";
import type { TokenCredential } from "@azure/identity";
import type { KeyClient, KeyClientOptions, KeyOperation, KeyVaultKey } from "@azure/keyvault-keys";
import { afterEach, beforeEach, inject } from "vitest";
import {
  AzureRecorder,
  chooseMode,
  FIXTURES_DIR,
  type ModeChoice,
  playbackCredential,
} from "./azure-recording.js";

export interface AzureTestVault {
  choice: ModeChoice;
  /** "lowkey" (live), "azure" (live, a real vault) or "playback" */
  kind: "lowkey" | "azure" | "playback";
  recorder: AzureRecorder;
  /** the vault (real, or its placeholder in playback) */
  vaultURL: string;
  /** a second, separate vault */
  secondVaultURL: string;
  /** the CA that issued Lowkey Vault's certificate (live Lowkey only) */
  caPem?: string;
  caFile?: string;
  /** Lowkey Vault's managed-identity token endpoint (live Lowkey only) */
  identityEndpoint?: string;
  /** the credential every client of the test uses */
  credential(): Promise<TokenCredential>;
  /** options for every KeyClient/provider of the test: the recorder as httpClient, the CA, the challenge */
  clientOptions: KeyClientOptions;
  disableChallengeResourceVerification: boolean;
  /** a key name: fixed (Lowkey, playback: requests must be the recorded ones), per run against real Azure */
  keyName(base: string): string;
  /** the real URL of another origin (a proxy, a closed port) live, its placeholder in playback */
  url(name: "proxy" | "closed", real: () => string): string;
  /** "(live against Lowkey Vault)" etc., for test titles */
  label: string;
}

export function azureTestVault(suite: string): AzureTestVault {
  const lowkey = inject("lowkeyVault");
  const realURL = process.env.TDE_TEST_AZURE_VAULT_URL;
  const choice = chooseMode(lowkey.available, process.env);
  const recorder = new AzureRecorder(choice.mode, choice.record, join(FIXTURES_DIR, suite));
  const kind = choice.mode === "playback" ? "playback" : realURL ? "azure" : "lowkey";
  const runSuffix = randomBytes(3).toString("hex");
  let vaultURL: string;
  let secondVaultURL: string;
  let credential: () => Promise<TokenCredential>;
  const lk = lowkey.available ? lowkey : undefined;
  if (kind === "playback") {
    vaultURL = recorder.origin("vault", "");
    secondVaultURL = recorder.origin("vault2", "");
    credential = async () => playbackCredential;
  } else if (kind === "azure") {
    vaultURL = recorder.origin("vault", realURL!);
    secondVaultURL = recorder.origin("vault2", process.env.TDE_TEST_AZURE_VAULT2_URL ?? realURL!);
    credential = async () => new (await import("@azure/identity")).DefaultAzureCredential();
  } else {
    vaultURL = recorder.origin("vault", lk!.baseURL);
    secondVaultURL = recorder.origin("vault2", lk!.secondBaseURL);
    // Lowkey Vault's token endpoint, as App Service's managed identity (IDENTITY_ENDPOINT/HEADER)
    process.env.IDENTITY_ENDPOINT = lk!.identityEndpoint;
    process.env.IDENTITY_HEADER = "header";
    credential = async () => new (await import("@azure/identity")).ManagedIdentityCredential();
  }
  const disable = kind !== "azure";
  const clientOptions: KeyClientOptions = {
    httpClient: recorder,
    disableChallengeResourceVerification: disable,
    ...(kind === "lowkey" ? { tlsOptions: { ca: [...rootCertificates, lk!.caPem] } } : {}),
  };

  // the test's own title names its recording: the suite's title carries the mode
  beforeEach((ctx) => {
    recorder.startTest(ctx.task.name);
  });
  afterEach((ctx) => {
    recorder.finishTest(ctx.task.result?.state !== "fail");
  });

  return {
    choice,
    kind,
    recorder,
    vaultURL,
    secondVaultURL,
    ...(kind === "lowkey"
      ? { caPem: lk!.caPem, caFile: lk!.caFile, identityEndpoint: lk!.identityEndpoint }
      : {}),
    credential,
    clientOptions,
    disableChallengeResourceVerification: disable,
    keyName: (base) => (kind === "azure" ? `${base}-${runSuffix}` : base),
    url: (name, real) => recorder.origin(name, kind === "playback" ? "" : real()),
    label: `(${choice.why})`,
  };
}

/** A PEM private key imported into a vault as an RSA key (a BYOK import): the same material in any vault has the same thumbprint (R3). */
export async function importRsaPem(
  admin: Pick<KeyClient, "importKey">,
  name: string,
  pem: string,
  keyOps: KeyOperation[],
): Promise<KeyVaultKey> {
  const jwk = createPrivateKey(pem).export({ format: "jwk" });
  const b = (v: unknown) => Buffer.from(String(v), "base64url");
  return admin.importKey(name, {
    kty: "RSA",
    keyOps,
    n: b(jwk.n),
    e: b(jwk.e),
    d: b(jwk.d),
    p: b(jwk.p),
    q: b(jwk.q),
    dp: b(jwk.dp),
    dq: b(jwk.dq),
    qi: b(jwk.qi),
  });
}
