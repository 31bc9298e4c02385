import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { expect } from "vitest";
import { kubectl } from "../../harness/kube.js";

export const repoRoot = join(import.meta.dirname, "..", "..", "..");

/** Applies the committed CRDs (server-side, so concurrent test files do not conflict) and waits for Established. */
export async function installCrds(kc: k8s.KubeConfig): Promise<void> {
  await kubectl(["apply", "--server-side", "--force-conflicts", "-f", join(repoRoot, "crds")]);
  const ext = kc.makeApiClient(k8s.ApiextensionsV1Api);
  for (const plural of ["keyprotectors", "encryptedservers", "encrypteddatabases"]) {
    await expect
      .poll(
        async () => {
          const crd = await ext.readCustomResourceDefinition({ name: `${plural}.tde.dev` });
          return crd.status?.conditions?.find((c) => c.type === "Established")?.status;
        },
        { timeout: 30_000, interval: 200 },
      )
      .toBe("True");
  }
}

/** Runs kubectl and returns its error output, or "" when it succeeded. */
export async function kubectlError(args: string[], input?: string): Promise<string> {
  try {
    await kubectl(args, input);
    return "";
  } catch (err) {
    const e = err as { stderr?: string; message?: string };
    return e.stderr || e.message || String(err);
  }
}
