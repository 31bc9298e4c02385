import { execFile, execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const here = dirname(fileURLToPath(import.meta.url));
const execFileAsync = promisify(execFile);

let cached: string | undefined;

/**
 * The path of a pinned Helm binary: TDE_HELM names one explicitly; otherwise it is built from the
 * Go module proxy once (assets/build-helm.sh) and reused from the cache.
 */
export function ensureHelm(log: (line: string) => void = () => {}): string {
  if (cached) return cached;
  const explicit = process.env.TDE_HELM;
  if (explicit) {
    if (!existsSync(explicit)) throw new Error(`TDE_HELM=${explicit} does not exist`);
    cached = explicit;
    return cached;
  }
  log("locating or building helm (first run: a few minutes)");
  const path = execFileSync("bash", [join(here, "assets", "build-helm.sh")], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  }).trim();
  if (!existsSync(path)) throw new Error(`build-helm.sh reported ${path} but it is not there`);
  cached = path;
  return cached;
}

/** Runs helm with its state kept out of the user's home (no repositories, no cache needed). */
export async function helm(args: string[]): Promise<{ stdout: string; stderr: string }> {
  const bin = ensureHelm();
  const home = join(here, "..", "..", ".tmp", "helm");
  return execFileAsync(bin, args, {
    maxBuffer: 32 * 1024 * 1024,
    env: {
      ...process.env,
      HELM_CACHE_HOME: join(home, "cache"),
      HELM_CONFIG_HOME: join(home, "config"),
      HELM_DATA_HOME: join(home, "data"),
    },
  });
}
