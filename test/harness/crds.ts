import { execFileSync } from "node:child_process";
import { join } from "node:path";

/** The CRDs of this repository (crds/), generated from src/api. */
export const CRDS_DIR = join(import.meta.dirname, "..", "..", "crds");

/**
 * Applies our CRDs to a control plane with kubectl (server-side) and waits until the API server
 * serves all three kinds (Established): the shared harness, the tests that start a control plane
 * of their own, and the benchmark.
 */
export function installCrds(kubectl: string | undefined, kubeconfig: string): void {
  if (!kubectl) throw new Error("kubectl is needed to install the CRDs");
  const run = (args: string[]) =>
    execFileSync(kubectl, ["--kubeconfig", kubeconfig, ...args], { stdio: "pipe" });
  run(["apply", "--server-side", "-f", CRDS_DIR]);
  run([
    "wait",
    "--for=condition=Established",
    "--timeout=60s",
    "crd/keyprotectors.tde.dev",
    "crd/encryptedservers.tde.dev",
    "crd/encrypteddatabases.tde.dev",
  ]);
}
