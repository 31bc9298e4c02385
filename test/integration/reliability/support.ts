/**
 * The operator as a separate process (`tsx src/main.ts`, as bench/lib/operator-process.ts starts
 * it), which the reliability suite can SIGKILL at any moment and restart, plus the scans it needs.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inject } from "vitest";
import { freePort } from "../../harness/ports.js";

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

  async stop(): Promise<void> {
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

/**
 * Every text form in which a DEK could show up: lower- and upper-case hex, base64, base64url, and
 * the base64 of the DEK at each of the three alignments inside a longer base64 text (its 30-byte
 * runs from offsets 0, 1 and 2, 40 characters each).
 */
export function dekForms(dek: Buffer): string[] {
  const b64 = (b: Buffer) => b.toString("base64");
  const forms = [dek.toString("hex"), dek.toString("hex").toUpperCase()];
  for (const k of [0, 1, 2]) {
    const run = b64(dek.subarray(k, k + 30));
    forms.push(run, run.replace(/\+/g, "-").replace(/\//g, "_"));
  }
  return forms;
}

/**
 * The places (by label) where any DEK occurs in any haystack, raw (8-byte prefix, then confirmed)
 * or in a text form of `dekForms`. Linear in the haystacks' size: every window of a hex or base64
 * run is looked up in a table, so 1,000 DEKs over megabytes of objects stay fast.
 */
export function findLeaks(deks: Map<string, Buffer>, haystacks: Map<string, string | Buffer>): string[] {
  const hex = new Map<string, string>();
  const b64 = new Map<string, string>();
  const raw = new Map<string, [string, Buffer]>();
  for (const [owner, dek] of deks) {
    const [lo, up, ...rest] = dekForms(dek);
    hex.set(lo!, owner);
    hex.set(up!, owner);
    for (const f of rest) b64.set(f, owner);
    raw.set(dek.subarray(0, 8).toString("latin1"), [owner, dek]);
  }
  const found = new Set<string>();
  for (const [where, hay] of haystacks) {
    const bytes = typeof hay === "string" ? Buffer.from(hay, "utf8") : hay;
    const text = bytes.toString("latin1");
    for (let i = 0; i + 32 <= text.length; i++) {
      const hit = raw.get(text.slice(i, i + 8));
      if (hit && bytes.subarray(i, i + 32).equals(hit[1])) found.add(`${hit[0]}: raw in ${where}`);
    }
    for (const m of text.matchAll(/[0-9a-fA-F]{64,}/g)) {
      for (let i = 0; i + 64 <= m[0].length; i++) {
        const owner = hex.get(m[0].slice(i, i + 64));
        if (owner) found.add(`${owner}: hex in ${where}`);
      }
    }
    for (const m of text.matchAll(/[A-Za-z0-9+/_-]{40,}/g)) {
      for (let i = 0; i + 40 <= m[0].length; i++) {
        const owner = b64.get(m[0].slice(i, i + 40));
        if (owner) found.add(`${owner}: base64 in ${where}`);
      }
    }
  }
  return [...found];
}
