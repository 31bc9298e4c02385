import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import type { TestProject } from "vitest/node";
import { ControlPlane } from "./control-plane.js";
import { installCrds } from "./crds.js";
import { createLeakCanaryDir, LEAK_CANARY_ENV, scanRun } from "./leak-scan.js";
import { LowkeyVault, type LowkeyVaultInfo, locateLowkeyVaultJar } from "./lowkey-vault.js";

declare module "vitest" {
  export interface ProvidedContext {
    kubeconfigPath: string;
    apiServer: string;
    kubectlPath: string;
    /** the run directory of the run-wide leak scan (test/harness/leak-scan.ts) */
    leakCanaryDir: string;
    /** Lowkey Vault, started once per run when the harness has a jar (test/harness/lowkey-vault.ts) */
    lowkeyVault:
      | (Omit<LowkeyVaultInfo, "logFile"> & {
          available: true;
          /** which jar and Java run it */
          jar: string;
          version: string;
          java: string;
          javaVersion: string;
        })
      | { available: false; reason: string };
  }
}

const log = (line: string) => process.stderr.write(`[harness] ${line}\n`);

/** Starts the real control plane and Lowkey Vault once per run for every integration test file. */
export default async function setup(project: TestProject) {
  // before any worker starts: the workers inherit the variable (and may inject the path)
  const canaryDir = mkdtempSync(join(tmpdir(), "tde-leak-canary-"));
  createLeakCanaryDir(canaryDir);
  process.env[LEAK_CANARY_ENV] = canaryDir;
  project.provide("leakCanaryDir", canaryDir);

  const controlPlane = new ControlPlane({ log });
  const info = await controlPlane.start();
  project.provide("kubeconfigPath", info.kubeconfigPath);
  project.provide("apiServer", info.server);
  project.provide("kubectlPath", info.binaries.kubectl ?? "");
  installCrds(info.binaries.kubectl, info.kubeconfigPath);

  // a playback-only run (npm run test:azure:playback) needs no vault
  const jar =
    process.env.TDE_AZURE_MODE === "playback"
      ? { available: false as const, reason: "TDE_AZURE_MODE=playback: no vault is started" }
      : locateLowkeyVaultJar(log);
  let vault: LowkeyVault | undefined;
  if (jar.available) {
    vault = new LowkeyVault();
    const v = await vault.start(jar);
    log(
      `Lowkey Vault ${jar.version} ready at ${v.baseURL} and ${v.secondBaseURL} (CA ${v.caFile}; log ${v.logFile})`,
    );
    project.provide("lowkeyVault", {
      available: true,
      baseURL: v.baseURL,
      secondBaseURL: v.secondBaseURL,
      port: v.port,
      identityEndpoint: v.identityEndpoint,
      caFile: v.caFile,
      caPem: v.caPem,
      jar: jar.jar,
      version: jar.version,
      java: jar.java,
      javaVersion: jar.javaVersion,
    });
  } else {
    log(
      `Lowkey Vault unavailable: the Azure contract and smoke tests replay test/fixtures/azure, the live journeys are skipped: ${jar.reason}`,
    );
    project.provide("lowkeyVault", { available: false, reason: jar.reason });
  }

  return async () => {
    try {
      await leakScan(info.kubeconfigPath, canaryDir);
    } finally {
      await vault?.stop();
      await controlPlane.stop();
    }
  };
}

/**
 * R1 over the whole run, while the control plane still holds everything the tests left: every
 * object of every listable type, every operator log and metrics text, searched for every DEK the
 * run's operators wrapped. A DEK found fails the run (teardown throws), naming where, never the DEK.
 */
async function leakScan(kubeconfigPath: string, canaryDir: string): Promise<void> {
  const started = Date.now();
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfigPath);
  const r = await scanRun(canaryDir, kc);
  const mb = (n: number) => `${(n / 1e6).toFixed(1)} MB`;
  log(
    `leak scan: ${r.deks} DEKs (${r.recordedDeks} recorded by in-process operators, ${r.recoveredDeks} recovered ` +
      `from ${r.envelopes} envelopes, ${r.recoveredOnly} of them only there), ${r.objects} objects of ` +
      `${r.resourceTypes} resource types (${mb(r.objectBytes)}), ${r.logFiles} logs (${mb(r.logBytes)}), ` +
      `${r.metricsFiles} metrics texts (${mb(r.metricsBytes)}), ${((Date.now() - started) / 1000).toFixed(1)} s: ` +
      `${r.leaks.length} found`,
  );
  for (const failure of r.listFailures) log(`leak scan: could not list ${failure}`);
  if (r.leaks.length > 0 || r.listFailures.length > 0) {
    const lines = [
      ...r.leaks.map((l) => `  DEK found: ${l}`),
      ...r.listFailures.map((f) => `  not scanned: ${f}`),
    ];
    throw new Error(
      `R1 leak scan failed (${r.leaks.length} leaks, ${r.listFailures.length} types not listed); the run ` +
        `directory is kept at ${canaryDir}:\n${lines.join("\n")}`,
    );
  }
  rmSync(canaryDir, { recursive: true, force: true });
}
