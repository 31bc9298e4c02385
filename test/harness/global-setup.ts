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
