/**
 * The operator as a separate process (`tsx src/main.ts`, as bench/lib/operator-process.ts starts
 * it), which the reliability suite can SIGKILL at any moment and restart, plus the scans it needs.
 * It runs by default as the shipped ServiceAccount, under the shipped RBAC, not as an admin.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { parseAllDocuments } from "yaml";
import { kubectl, testKubeConfig } from "../../harness/kube.js";
import { recordMetrics, registerLogFile } from "../../harness/leak-scan.js";
import { freePort } from "../../harness/ports.js";
import { kubeConfigForUser } from "../kms/users.js";

/** The DEK scan, kept in the harness (the global teardown runs it over the whole suite). */
export { dekForms, findLeaks } from "../../harness/leak-scan.js";

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function scratchDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `tde-${prefix}-`));
}

const repo = join(import.meta.dirname, "..", "..", "..");
const RBAC_KINDS = new Set(["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"]);
/** The namespace the shipped manifests (deploy/base, kustomization `namespace:`) install into. */
const SHIPPED_NAMESPACE = "tde-system";
const installed = new Map<string, Promise<{ user: string; kubeconfigPath: string }>>();

interface Manifest {
  kind: string;
  metadata: { name: string; namespace?: string };
  subjects?: { kind: string; name: string; namespace?: string }[];
}

/**
 * The shipped RBAC (`kubectl kustomize deploy/overlays/default`: the ServiceAccount, the
 * ClusterRole and its binding, the Role in the operator's own namespace and its binding), installed
 * for an operator whose namespace is `operatorNamespace` as `kustomize edit set namespace` would:
 * rules untouched, only the namespace changed (and the cluster-scoped binding named after it, so
 * two namespaces never overwrite one another's). Returns a kubeconfig file for the
 * ServiceAccount's identity (a client certificate for system:serviceaccount:NS:NAME, the user name
 * its token carries, so RBAC grants it exactly what it grants the ServiceAccount). Once per
 * namespace per worker.
 */
export function shippedServiceAccount(
  operatorNamespace: string,
): Promise<{ user: string; kubeconfigPath: string }> {
  let done = installed.get(operatorNamespace);
  if (!done) {
    done = installShippedRbac(operatorNamespace);
    installed.set(operatorNamespace, done);
    done.catch(() => installed.delete(operatorNamespace));
  }
  return done;
}

async function installShippedRbac(ns: string): Promise<{ user: string; kubeconfigPath: string }> {
  const { stdout } = await kubectl(["kustomize", join(repo, "deploy/overlays/default")]);
  const docs = parseAllDocuments(stdout)
    .map((d) => d.toJS() as Manifest)
    .filter((d) => d && RBAC_KINDS.has(d.kind));
  const sa = docs.find((d) => d.kind === "ServiceAccount");
  if (
    !sa ||
    !docs.some((d) => d.kind === "ClusterRoleBinding") ||
    !docs.some((d) => d.kind === "RoleBinding")
  ) {
    throw new Error("deploy/overlays/default no longer renders a ServiceAccount with its bindings");
  }
  for (const d of docs) {
    if (d.metadata.namespace === SHIPPED_NAMESPACE) d.metadata.namespace = ns;
    for (const subject of d.subjects ?? [])
      if (subject.namespace === SHIPPED_NAMESPACE) subject.namespace = ns;
    if (d.kind === "ClusterRoleBinding") d.metadata.name = `${d.metadata.name}-${ns}`;
  }
  try {
    await testKubeConfig()
      .makeApiClient(k8s.CoreV1Api)
      .createNamespace({ body: { metadata: { name: ns } } });
  } catch (error) {
    if ((error as { code?: number }).code !== 409) throw error;
  }
  await kubectl(
    ["apply", "--server-side", "--force-conflicts", "-f", "-"],
    docs.map((d) => JSON.stringify(d)).join("\n"),
  );
  const user = `system:serviceaccount:${ns}:${sa.metadata.name}`;
  const kc = kubeConfigForUser(user);
  // the API server authenticates these credentials as the ServiceAccount, not as an admin
  const review = await kc
    .makeApiClient(k8s.AuthenticationV1Api)
    .createSelfSubjectReview({ body: { apiVersion: "authentication.k8s.io/v1", kind: "SelfSubjectReview" } });
  if (review.status?.userInfo?.username !== user) {
    throw new Error(`expected to be ${user}, the API server says ${review.status?.userInfo?.username}`);
  }
  const kubeconfigPath = join(scratchDir("sa"), "kubeconfig");
  writeFileSync(kubeconfigPath, kc.exportConfig(), { mode: 0o600 });
  return { user, kubeconfigPath };
}

export interface OperatorProcessOptions {
  operatorNamespace: string;
  watchNamespaces: string[];
  logFile: string;
  probeInterval?: string;
  latencyMs?: number;
  logLevel?: "debug" | "info" | "warn" | "error";
  /** campaign for this Lease under this identity instead of running with --no-leader-election */
  leaderElection?: { leaseName: string; identity: string };
  /**
   * the kubeconfig the operator runs with; default: the shipped ServiceAccount's, with the shipped
   * RBAC installed for `operatorNamespace` (`shippedServiceAccount`). `inject("kubeconfigPath")`
   * runs it as the harness's admin instead.
   */
  kubeconfigPath?: string;
  /** more flags (e.g. the Azure provider's) */
  extraArgs?: string[];
  /** more environment (e.g. NODE_EXTRA_CA_CERTS, IDENTITY_ENDPOINT) */
  env?: NodeJS.ProcessEnv;
}

export class OperatorProcess {
  private constructor(
    private readonly child: ChildProcess,
    readonly metricsPort: number,
    readonly logFile: string,
  ) {}

  /** Starts the operator; with `waitReady` (default) resolves once /readyz answers 200. */
  static async start(options: OperatorProcessOptions, waitReady = true): Promise<OperatorProcess> {
    const port = await freePort();
    const args = [
      "src/main.ts",
      "--kubeconfig",
      options.kubeconfigPath ?? (await shippedServiceAccount(options.operatorNamespace)).kubeconfigPath,
      "--operator-namespace",
      options.operatorNamespace,
      "--watch-namespaces",
      options.watchNamespaces.join(","),
      ...(options.leaderElection
        ? [
            "--leader-election",
            "--lease-name",
            options.leaderElection.leaseName,
            "--identity",
            options.leaderElection.identity,
          ]
        : ["--no-leader-election"]),
      "--metrics-port",
      String(port),
      "--probe-interval",
      options.probeInterval ?? "2s",
      "--local-kms-latency",
      String(options.latencyMs ?? 0),
      "--log-level",
      options.logLevel ?? "debug",
      ...(options.extraArgs ?? []),
    ];
    // the run-wide leak scan (global teardown) reads every operator's log
    registerLogFile(options.logFile);
    const fd = openSync(options.logFile, "a");
    // its own process group: the tsx wrapper and the node process it runs die together
    const child = spawn("node_modules/.bin/tsx", args, {
      stdio: ["ignore", fd, fd],
      detached: true,
      ...(options.env ? { env: { ...process.env, ...options.env } } : {}),
    });
    closeSync(fd);
    const op = new OperatorProcess(child, port, options.logFile);
    if (waitReady) {
      const deadline = Date.now() + 60_000;
      for (;;) {
        if (!op.alive) throw new Error(`the operator exited (${child.exitCode}); see ${options.logFile}`);
        try {
          if ((await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200) break;
        } catch {}
        if (Date.now() > deadline) throw new Error(`the operator never became ready; see ${options.logFile}`);
        await sleep(50);
      }
    }
    return op;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  /** SIGKILL to the whole process group: no shutdown hook runs. */
  async kill(): Promise<void> {
    await this.signal("SIGKILL");
  }

  /** SIGTERM (SIGKILL after 15 s); its last /metrics text is kept for the run-wide leak scan. */
  async stop(): Promise<void> {
    if (this.alive) {
      try {
        recordMetrics("operator-process", await this.metricsText());
      } catch {}
    }
    await this.signal("SIGTERM", 15_000);
  }

  private async signal(sig: NodeJS.Signals, graceMs = 0): Promise<void> {
    if (!this.alive || this.child.pid === undefined) return;
    const exited = new Promise<void>((resolve) => this.child.once("exit", () => resolve()));
    try {
      process.kill(-this.child.pid, sig);
    } catch {}
    if (graceMs > 0) {
      const timedOut = await Promise.race([exited.then(() => false), sleep(graceMs).then(() => true)]);
      if (!timedOut) return;
      try {
        process.kill(-this.child.pid, "SIGKILL");
      } catch {}
    }
    await exited;
  }

  /**
   * The lines of its log file (every process that wrote to it) where the API server refused the
   * operator a request: what its RBAC lacks. Under the shipped ServiceAccount this must stay empty.
   */
  refusals(): string[] {
    return readFileSync(this.logFile, "utf8")
      .split("\n")
      .filter((line) => /is forbidden: User/.test(line));
  }

  async metricsText(): Promise<string> {
    return (await fetch(`http://127.0.0.1:${this.metricsPort}/metrics`)).text();
  }

  /** Sum of a counter's samples in the /metrics text. */
  async counter(name: string): Promise<number> {
    let total = 0;
    for (const line of (await this.metricsText()).split("\n")) {
      if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) {
        total += Number(line.slice(line.lastIndexOf(" ") + 1));
      }
    }
    return total;
  }
}
