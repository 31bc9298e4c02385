import { execFileSync } from "node:child_process";
import { join } from "node:path";
import type { TestProject } from "vitest/node";
import { ControlPlane } from "./control-plane.js";
import { LowkeyVault, locateLowkeyVaultJar } from "./lowkey-vault.js";

declare module "vitest" {
  export interface ProvidedContext {
    kubeconfigPath: string;
    apiServer: string;
    kubectlPath: string;
    lowkeyVault:
      | { available: true; baseURL: string; identityEndpoint: string }
      | { available: false; reason: string };
  }
}

const log = (line: string) => process.stderr.write(`[harness] ${line}\n`);

/** Starts the real control plane and Lowkey Vault once per run for every integration test file. */
export default async function setup(project: TestProject) {
  const controlPlane = new ControlPlane({ log });
  const info = await controlPlane.start();
  project.provide("kubeconfigPath", info.kubeconfigPath);
  project.provide("apiServer", info.server);
  project.provide("kubectlPath", info.binaries.kubectl ?? "");
  installCrds(info.binaries.kubectl, info.kubeconfigPath);

  const jar = locateLowkeyVaultJar(log);
  let vault: LowkeyVault | undefined;
  if (jar.available) {
    vault = new LowkeyVault();
    const v = await vault.start(jar.jar);
    log(`Lowkey Vault ready at ${v.baseURL}`);
    project.provide("lowkeyVault", {
      available: true,
      baseURL: v.baseURL,
      identityEndpoint: v.identityEndpoint,
    });
  } else {
    log(`Lowkey Vault unavailable; its tests are skipped and reported as skipped: ${jar.reason}`);
    project.provide("lowkeyVault", { available: false, reason: jar.reason });
  }

  return async () => {
    await vault?.stop();
    await controlPlane.stop();
  };
}

/** Every integration test may rely on our CRDs being installed and Established. */
function installCrds(kubectl: string | undefined, kubeconfig: string): void {
  if (!kubectl) throw new Error("kubectl is needed to install the CRDs");
  const crds = join(import.meta.dirname, "..", "..", "crds");
  const run = (args: string[]) =>
    execFileSync(kubectl, ["--kubeconfig", kubeconfig, ...args], { stdio: "pipe" });
  run(["apply", "--server-side", "-f", crds]);
  run([
    "wait",
    "--for=condition=Established",
    "--timeout=60s",
    "crd/keyprotectors.tde.dev",
    "crd/encryptedservers.tde.dev",
    "crd/encrypteddatabases.tde.dev",
  ]);
}
