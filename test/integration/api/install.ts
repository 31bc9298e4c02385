import { join } from "node:path";
import { kubectl } from "../../harness/kube.js";

export const repoRoot = join(import.meta.dirname, "..", "..", "..");

export const CRD_NAMES = ["keyprotectors.tde.dev", "encryptedservers.tde.dev", "encrypteddatabases.tde.dev"];

/** Applies the committed CRDs (server-side, so concurrent test files do not conflict) and waits for Established. */
export async function installCrds(): Promise<void> {
  await kubectl(["apply", "--server-side", "--force-conflicts", "-f", join(repoRoot, "crds")]);
  await kubectl([
    "wait",
    "--for=condition=Established",
    "--timeout=30s",
    ...CRD_NAMES.map((n) => `customresourcedefinition/${n}`),
  ]);
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
