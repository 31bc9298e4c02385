/**
 * The operator as a separate process (`tsx src/main.ts`, as bench/lib/operator-process.ts starts
 * it), which the reliability suite can SIGKILL at any moment and restart, plus the scans it needs.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inject } from "vitest";
import { recordMetrics, registerLogFile } from "../../harness/leak-scan.js";
import { freePort } from "../../harness/ports.js";

/** The DEK scan, kept in the harness (the global teardown runs it over the whole suite). */
export { dekForms, findLeaks } from "../../harness/leak-scan.js";

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function scratchDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `tde-${prefix}-`));
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
  /** the kubeconfig the operator runs with (default: the harness's admin kubeconfig) */
  kubeconfigPath?: string;
}

export class OperatorProcess {
  private constructor(
    private readonly child: ChildProcess,
    readonly metricsPort: number,
  ) {}

  /** Starts the operator; with `waitReady` (default) resolves once /readyz answers 200. */
  static async start(options: OperatorProcessOptions, waitReady = true): Promise<OperatorProcess> {
    const port = await freePort();
    const args = [
      "src/main.ts",
      "--kubeconfig",
      options.kubeconfigPath ?? inject("kubeconfigPath"),
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
    ];
    // the run-wide leak scan (global teardown) reads every operator's log
    registerLogFile(options.logFile);
    const fd = openSync(options.logFile, "a");
    // its own process group: the tsx wrapper and the node process it runs die together
    const child = spawn("node_modules/.bin/tsx", args, { stdio: ["ignore", fd, fd], detached: true });
    closeSync(fd);
    const op = new OperatorProcess(child, port);
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
