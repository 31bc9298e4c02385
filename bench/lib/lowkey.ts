import { randomBytes } from "node:crypto";
import { rootCertificates } from "node:tls";
import { parseDuration } from "../../src/api/duration.js";
import type { KeyReference } from "../../src/kms/provider.js";
import { LowkeyVault, type LowkeyVaultInfo, locateLowkeyVaultJar } from "../../test/harness/lowkey-vault.js";
import type { BenchCluster } from "./cluster.js";
import { ApiFloor } from "./floor.js";
import { kmsDelta, OperatorProcess } from "./operator-process.js";
import type { BenchSettings } from "./scenarios.js";
import { pool, round, sleep, waitUntil } from "./util.js";
import { keyName, Workload } from "./workload.js";

export type LowkeyResult =
  | { skipped: true; reason: string }
  | {
      skipped: false;
      lowkey: string;
      /** the provider alone, at the operator's KMS concurrency: the vault's real latency */
      provider: {
        calls: number;
        concurrency: number;
        describeMeanMs: number;
        wrapMeanMs: number;
        unwrapMeanMs: number;
        callsPerSecond: number;
      };
      /** the operator process converging on AzureKeyVault KeyProtectors */
      convergence: {
        databases: number;
        servers: number;
        keys: number;
        wallMs: number;
        floor: { apiMs: number; kmsMs: number; ms: number };
        ratioToFloor: number;
        kmsPerDek: { describe: number; list: number; wrap: number; unwrap: number };
        probesPerInterval: number;
        peakRssMiB: number;
      };
    };

const MiB = 1024 * 1024;

/**
 * The Lowkey Vault scenario: the Azure Key Vault provider measured alone against Lowkey Vault (its
 * real HTTP, TLS and crypto latency), then the operator process converging on AzureKeyVault
 * KeyProtectors there, with its floor computed from that latency. Runs when the harness finds a
 * Lowkey Vault jar and a Java for it (test/harness/lowkey-vault.ts), and says why when not.
 */
export async function lowkeyRun(
  cluster: BenchCluster,
  settings: BenchSettings,
  shape: { databases: number; servers: number; keys: number; concurrency: number },
  log: (l: string) => void,
): Promise<LowkeyResult> {
  const located = locateLowkeyVaultJar(log);
  if (!located.available) return { skipped: true, reason: located.reason };
  const vault = new LowkeyVault();
  const info = await vault.start(located);
  log(`Lowkey Vault ${located.version} at ${info.baseURL} (Java ${located.javaVersion})`);
  const env = {
    IDENTITY_ENDPOINT: info.identityEndpoint,
    IDENTITY_HEADER: "bench",
    NODE_EXTRA_CA_CERTS: info.caFile,
  };
  Object.assign(process.env, env);
  let op: OperatorProcess | undefined;
  try {
    const { ManagedIdentityCredential } = await import("@azure/identity");
    const { KeyClient } = await import("@azure/keyvault-keys");
    const credential = new ManagedIdentityCredential();
    const tlsOptions = { ca: [...rootCertificates, info.caPem] };
    const admin = new KeyClient(info.baseURL, credential, {
      disableChallengeResourceVerification: true,
      tlsOptions,
    });
    const keyOps = ["encrypt", "decrypt", "wrapKey", "unwrapKey"] as const;
    await pool(
      Array.from({ length: shape.keys }, (_, i) => i),
      4,
      async (i) => {
        await admin.createRsaKey(keyName(i), { keySize: 2048, keyOps: [...keyOps] });
      },
    );
    const provider = await providerLatency(info, credential, settings.kmsConcurrency);

    const namespace = "bench-lowkey";
    await cluster.createNamespace(namespace);
    const operatorNamespace = "tde-system-lowkey";
    await cluster.createNamespace(operatorNamespace);
    const floorNs = `${namespace}-floor`;
    await cluster.createNamespace(floorNs);
    const apiFloor = await new ApiFloor(cluster, floorNs, shape.concurrency).convergence(
      shape.servers,
      shape.databases,
    );
    const workload = new Workload(cluster, {
      namespace,
      servers: shape.servers,
      keys: shape.keys,
      databases: shape.databases,
      grace: "10m",
      concurrency: shape.concurrency,
      keyProtector: (i) => ({
        provider: "AzureKeyVault",
        azureKeyVault: { vaultURL: info.baseURL, keyName: keyName(i) },
        identity: { type: "ManagedIdentity" },
        requirements: { requireRecoverable: false },
      }),
    });
    await workload.watch();
    op = await OperatorProcess.start({
      kubeconfig: cluster.kubeconfigPath,
      operatorNamespace,
      watchNamespaces: [namespace],
      probeInterval: settings.probeInterval,
      latencyMs: 0,
      workers: settings.workers,
      kmsConcurrency: settings.kmsConcurrency,
      logFile: `${settings.logDir}/operator-lowkey.log`,
      runFrom: settings.runFrom,
      ...(settings.runtimeEnv !== undefined ? { runtimeEnv: settings.runtimeEnv } : {}),
      extraArgs: ["--azure-disable-challenge-resource-verification"],
      env,
    });
    await sleep(1_000);
    const m0 = await op.scrape();
    const started = Date.now();
    await workload.createAll();
    await waitUntil(
      "every resource Ready on Lowkey Vault",
      () => workload.allReady(),
      settings.timeoutMs,
      100,
      () => workload.progress(),
    );
    const wallMs = Date.now() - started;
    const m1 = await op.scrape();
    // probes in a quiet window of three intervals: one per distinct key (and the service-managed key)
    const intervals = 3;
    const p0 = (await op.scrape()).probes;
    await sleep(intervals * parseDuration(settings.probeInterval));
    const probesPerInterval = round(((await op.scrape()).probes - p0) / intervals, 2);
    await workload.stopWatching();

    const deks = shape.servers + shape.databases;
    const kms = kmsDelta(m0, m1);
    const kmsFloorMs = (deks * provider.wrapMeanMs) / settings.kmsConcurrency;
    const floorMs = Math.max(apiFloor.ms, kmsFloorMs);
    return {
      skipped: false,
      lowkey: `${located.version} on Java ${located.javaVersion}`,
      provider,
      convergence: {
        databases: shape.databases,
        servers: shape.servers,
        keys: shape.keys,
        wallMs,
        floor: { apiMs: apiFloor.ms, kmsMs: round(kmsFloorMs), ms: round(floorMs) },
        ratioToFloor: round(wallMs / floorMs),
        kmsPerDek: {
          describe: round(kms.beyondProbes.describe / deks, 3),
          list: round(kms.beyondProbes.list / deks, 3),
          wrap: round(kms.beyondProbes.wrap / deks, 3),
          unwrap: round(kms.beyondProbes.unwrap / deks, 3),
        },
        probesPerInterval,
        peakRssMiB: round(op.peakRssBytes / MiB, 1),
      },
    };
  } finally {
    await op?.stop();
    await vault.stop();
  }
}

/** The Azure provider alone: describe, wrap and unwrap at the operator's KMS concurrency. */
async function providerLatency(
  info: LowkeyVaultInfo,
  credential: import("@azure/identity").TokenCredential,
  concurrency: number,
) {
  const { AzureKeyVaultProvider } = await import("../../src/kms/azure-key-vault.js");
  const provider = new AzureKeyVaultProvider({
    disableChallengeResourceVerification: true,
    caCertificates: info.caPem,
    credentialFactory: () => credential,
    maxRetries: 1,
  });
  const ref: KeyReference = {
    provider: "AzureKeyVault",
    namespace: "bench",
    vaultURL: info.baseURL,
    keyName: keyName(0),
    identity: { type: "ManagedIdentity" },
  };
  const current = await provider.describe(ref); // token and client warm-up
  const calls = 300;
  let describeMs = 0;
  let wrapMs = 0;
  let unwrapMs = 0;
  const started = Date.now();
  await pool(
    Array.from({ length: calls }, (_, i) => i),
    concurrency,
    async () => {
      const t0 = performance.now();
      await provider.describe(ref);
      const t1 = performance.now();
      const w = await provider.wrap({ ...ref, keyID: current.keyID }, randomBytes(32));
      const t2 = performance.now();
      await provider.unwrap({ ...ref, keyID: w.keyID }, w.wrapped);
      describeMs += t1 - t0;
      wrapMs += t2 - t1;
      unwrapMs += performance.now() - t2;
    },
  );
  const seconds = (Date.now() - started) / 1000;
  return {
    calls: 3 * calls,
    concurrency,
    describeMeanMs: round(describeMs / calls, 2),
    wrapMeanMs: round(wrapMs / calls, 2),
    unwrapMeanMs: round(unwrapMs / calls, 2),
    callsPerSecond: round((3 * calls) / seconds, 1),
  };
}
