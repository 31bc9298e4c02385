import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));

/** Where the harness finds kube-apiserver, etcd and kubectl. */
export interface ControlPlaneBinaries {
  kubeApiserver: string;
  etcd: string;
  /** kubectl, when available (KUBEBUILDER_ASSETS may not ship it). */
  kubectl: string | undefined;
}

function fromFolder(folder: string): ControlPlaneBinaries | undefined {
  const kubeApiserver = join(folder, "kube-apiserver");
  const etcd = join(folder, "etcd");
  if (!existsSync(kubeApiserver) || !existsSync(etcd)) return undefined;
  const kubectl = join(folder, "kubectl");
  return { kubeApiserver, etcd, kubectl: existsSync(kubectl) ? kubectl : undefined };
}

/**
 * Uses KUBEBUILDER_ASSETS when it names a folder holding both binaries; otherwise builds them
 * from the Go module proxy once and reuses the cached build (see assets/build-binaries.sh).
 */
export function ensureControlPlaneBinaries(log: (line: string) => void = () => {}): ControlPlaneBinaries {
  const assets = process.env.KUBEBUILDER_ASSETS;
  if (assets) {
    const found = fromFolder(assets);
    if (found) {
      if (!found.kubectl) {
        const built = buildOrReuse(log);
        found.kubectl = built.kubectl;
      }
      return found;
    }
    log(`KUBEBUILDER_ASSETS=${assets} lacks kube-apiserver or etcd; using the cached build instead`);
  }
  return buildOrReuse(log);
}

function buildOrReuse(log: (line: string) => void): ControlPlaneBinaries {
  const script = join(here, "assets", "build-binaries.sh");
  log("locating or building kube-apiserver, etcd and kubectl (first run: about 10 minutes)");
  const folder = execFileSync("bash", [script], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
    maxBuffer: 16 * 1024 * 1024,
  }).trim();
  const found = fromFolder(folder);
  if (!found) throw new Error(`build-binaries.sh reported ${folder} but the binaries are not there`);
  return found;
}
