import { execFile, execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

/**
 * The real health and alerting tools the tests ask (R27, R28), built from the Go module proxy
 * once and cached under ~/.cache/tde-operator (scripts/ensure-deps.mjs --tests builds them before
 * any test runs, so no test compiles):
 * - kstatus: sigs.k8s.io/cli-utils v0.37.2 `status.Compute`, what Flux's health checks and kpt read;
 * - argo-health: deploy/gitops/argocd/health.lua run by gopher-lua v1.1.1 in Argo CD's Lua
 *   environment (base, table, package and a reduced os only);
 * - flux-health: a Flux Kustomization's healthCheckExprs evaluated by Flux's own
 *   github.com/fluxcd/pkg/runtime/cel StatusEvaluator (v0.117.0);
 * - promtool: `promtool test rules` and `promtool check metrics`.
 */

const here = dirname(fileURLToPath(import.meta.url));
const execFileAsync = promisify(execFile);

function built(script: string, what: string): string {
  const path = execFileSync("bash", [join(here, "assets", script)], {
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  }).trim();
  if (!existsSync(path)) throw new Error(`${script} reported ${path} for ${what} but it is not there`);
  return path;
}

let healthFolder: string | undefined;
let promtoolPath: string | undefined;

function healthTool(name: "kstatus" | "argo-health" | "flux-health"): string {
  healthFolder ??= built("build-health-tools.sh", "the health tools");
  return join(healthFolder, name);
}

/** The promtool binary: TDE_PROMTOOL names one; otherwise the cached build (assets/build-promtool.sh). */
export function ensurePromtool(): string {
  if (promtoolPath) return promtoolPath;
  const explicit = process.env.TDE_PROMTOOL;
  if (explicit && !existsSync(explicit)) throw new Error(`TDE_PROMTOOL=${explicit} does not exist`);
  promtoolPath = explicit ?? built("build-promtool.sh", "promtool");
  return promtoolPath;
}

/** What kstatus's status.Compute says about an object. */
export interface KstatusResult {
  status: "InProgress" | "Failed" | "Current" | "Terminating" | "NotFound" | "Unknown";
  message: string;
  /** the Reconciling/Stalled conditions kstatus derived (empty when the object carries its own) */
  conditions: Array<{ type: string; status: string; reason: string; message: string }>;
}

/** What Argo CD's health check (our health.lua) says about an object. */
export interface ArgoHealth {
  status: "Healthy" | "Progressing" | "Degraded" | "Suspended" | "Missing" | "Unknown";
  message: string;
}

async function runPerObject<T>(bin: string, args: string[], objects: readonly unknown[]): Promise<T[]> {
  const input = objects.map((o) => JSON.stringify(o)).join("\n");
  const child = execFileAsync(bin, args, { maxBuffer: 16 * 1024 * 1024 });
  child.child.stdin?.end(input);
  const { stdout } = await child;
  const results = stdout
    .trim()
    .split("\n")
    .filter((l) => l)
    .map((l) => JSON.parse(l) as T & { error?: string });
  if (results.length !== objects.length)
    throw new Error(`${bin} answered ${results.length} results for ${objects.length} objects`);
  for (const r of results) if (r.error) throw new Error(`${bin}: ${r.error}`);
  return results;
}

/** kstatus's verdict on each object, in order. */
export function kstatus(objects: readonly unknown[]): Promise<KstatusResult[]> {
  return runPerObject<KstatusResult>(healthTool("kstatus"), [], objects);
}

/** Argo CD's verdict on each object with the health script at `scriptPath`, in order. */
export function argoHealth(scriptPath: string, objects: readonly unknown[]): Promise<ArgoHealth[]> {
  return runPerObject<ArgoHealth>(healthTool("argo-health"), [scriptPath], objects);
}

/** What Flux's healthCheckExprs make of an object: Unknown (with the error) when they cannot be evaluated. */
export interface FluxHealth {
  status: "InProgress" | "Failed" | "Current" | "Unknown";
  message: string;
}

/** Flux's verdict on each object under `healthCheckExprs` (a Kustomization's list), in order. */
export async function fluxHealth(
  healthCheckExprs: unknown[],
  objects: readonly unknown[],
): Promise<FluxHealth[]> {
  const dir = mkdtempSync(join(tmpdir(), "tde-flux-"));
  const file = join(dir, "exprs.json");
  writeFileSync(file, JSON.stringify(healthCheckExprs));
  try {
    return await runPerObject<FluxHealth>(healthTool("flux-health"), [file], objects);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs promtool with the arguments; resolves with its output whatever the exit code. */
export async function promtool(
  args: string[],
  input?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const bin = ensurePromtool();
  try {
    const child = execFileAsync(bin, args, { maxBuffer: 16 * 1024 * 1024 });
    child.child.stdin?.end(input ?? "");
    const { stdout, stderr } = await child;
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    if (typeof e.code !== "number") throw error;
    return { code: e.code, stdout: e.stdout ?? "", stderr: e.stderr ?? "" };
  }
}
