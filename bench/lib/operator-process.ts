import { type ChildProcess, spawn } from "node:child_process";
import { closeSync, openSync } from "node:fs";
import { freePort } from "../../test/harness/ports.js";
import { type PromSample, parseProm, sleep, sumOf, waitUntil } from "./util.js";

export interface OperatorProcessOptions {
  kubeconfig: string;
  operatorNamespace: string;
  watchNamespaces: string[];
  probeInterval: string;
  latencyMs: number;
  workers?: number;
  kmsConcurrency?: number;
  logFile: string;
  /** "built": `node dist/src/main.js` (the image's command; run `npm run build` first); "source": `tsx src/main.ts` */
  runFrom?: "built" | "source";
  /** NODE_OPTIONS and MALLOC_ARENA_MAX of the operator process (the benchmark passes the chart's: image-runtime-env.ts) */
  runtimeEnv?: Record<string, string>;
  /** a folder for V8 CPU profiles of the operator process (node --cpu-prof; the built image only) */
  cpuProfDir?: string;
  /** more flags and environment (the Azure settings for a vault that is not under *.vault.azure.net) */
  extraArgs?: string[];
  env?: Record<string, string>;
}

/**
 * The operator as a separate process, by default as the image runs it (`node dist/src/main.js`),
 * measured only through its /metrics endpoint. Peak RSS is sampled from tde_process_resident_memory_bytes.
 */
export class OperatorProcess {
  peakRssBytes = 0;
  /** the V8 heap in use (live objects plus garbage not yet collected), sampled with the RSS */
  peakHeapUsedBytes = 0;
  private sampler: NodeJS.Timeout | undefined;
  /** what the V8 heap (committed, in use) and memory outside it were when RSS was at its peak */
  atPeakRss = { heapTotalBytes: 0, heapUsedBytes: 0, externalBytes: 0 };

  private constructor(
    private readonly child: ChildProcess,
    readonly metricsPort: number,
    readonly startedAt: number,
  ) {}

  static async start(options: OperatorProcessOptions): Promise<OperatorProcess> {
    const port = await freePort();
    const built = (options.runFrom ?? "built") === "built";
    const args = [
      ...(built && options.cpuProfDir ? ["--cpu-prof", "--cpu-prof-dir", options.cpuProfDir] : []),
      built ? "dist/src/main.js" : "src/main.ts",
      "--kubeconfig",
      options.kubeconfig,
      "--operator-namespace",
      options.operatorNamespace,
      "--watch-namespaces",
      options.watchNamespaces.join(","),
      "--no-leader-election",
      "--metrics-port",
      String(port),
      "--probe-interval",
      options.probeInterval,
      "--local-kms-latency",
      String(options.latencyMs),
      "--log-level",
      "warn",
      ...(options.workers ? ["--workers", String(options.workers)] : []),
      ...(options.kmsConcurrency ? ["--kms-concurrency", String(options.kmsConcurrency)] : []),
      ...(options.extraArgs ?? []),
    ];
    const fd = openSync(options.logFile, "a");
    // detached: its own process group, so a tsx wrapper and the node process it runs stop together
    const env = {
      ...process.env,
      ...options.env,
      ...options.runtimeEnv,
    };
    const child = spawn(built ? process.execPath : "node_modules/.bin/tsx", args, {
      env,
      stdio: ["ignore", fd, fd],
      detached: true,
    });
    closeSync(fd);
    const op = new OperatorProcess(child, port, Date.now());
    await waitUntil(
      "the operator's /readyz",
      async () => {
        if (child.exitCode !== null)
          throw new Error(`the operator exited (${child.exitCode}); see ${options.logFile}`);
        try {
          return (await fetch(`http://127.0.0.1:${port}/readyz`)).status === 200;
        } catch {
          return false;
        }
      },
      120_000,
      50,
    );
    op.sampler = setInterval(() => {
      op.scrape().catch(() => {});
    }, 1_000);
    return op;
  }

  async scrape(): Promise<OperatorMetrics> {
    const res = await fetch(`http://127.0.0.1:${this.metricsPort}/metrics`);
    const samples = parseProm(await res.text());
    const m = OperatorMetrics.from(samples);
    if (m.rssBytes > this.peakRssBytes) {
      this.peakRssBytes = m.rssBytes;
      this.atPeakRss = {
        heapTotalBytes: m.heapTotalBytes,
        heapUsedBytes: m.heapUsedBytes,
        externalBytes: m.externalBytes,
      };
    }
    if (m.heapUsedBytes > this.peakHeapUsedBytes) this.peakHeapUsedBytes = m.heapUsedBytes;
    return m;
  }

  async stop(): Promise<void> {
    if (this.sampler) clearInterval(this.sampler);
    if (this.child.exitCode !== null || this.child.pid === undefined) return;
    const exited = new Promise<void>((resolve) => this.child.once("exit", () => resolve()));
    process.kill(-this.child.pid, "SIGTERM");
    const timeout = sleep(15_000).then(() => "timeout");
    if ((await Promise.race([exited.then(() => "exited"), timeout])) === "timeout") {
      process.kill(-this.child.pid, "SIGKILL");
      await exited;
    }
  }
}

/** What the benchmark reads from the operator's /metrics. */
export class OperatorMetrics {
  constructor(
    readonly kms: { describe: number; list: number; wrap: number; unwrap: number },
    readonly probes: number,
    readonly reconciles: Record<string, number>,
    readonly rssBytes: number,
    readonly workqueueDepth: number,
    readonly heapUsedBytes: number,
    readonly heapTotalBytes = 0,
    readonly externalBytes = 0,
  ) {}

  static from(samples: PromSample[]): OperatorMetrics {
    const kms = (operation: string) =>
      sumOf(samples, "tde_kms_operation_duration_seconds_count", { operation });
    const reconciles: Record<string, number> = {};
    for (const s of samples) {
      if (s.name !== "tde_reconcile_total") continue;
      const key = `${s.labels.controller}/${s.labels.result}`;
      reconciles[key] = (reconciles[key] ?? 0) + s.value;
    }
    return new OperatorMetrics(
      { describe: kms("describe"), list: kms("list"), wrap: kms("wrap"), unwrap: kms("unwrap") },
      sumOf(samples, "tde_key_probes_total"),
      reconciles,
      sumOf(samples, "tde_process_resident_memory_bytes"),
      sumOf(samples, "tde_workqueue_depth"),
      sumOf(samples, "tde_nodejs_heap_size_used_bytes"),
      sumOf(samples, "tde_nodejs_heap_size_total_bytes"),
      sumOf(samples, "tde_nodejs_external_memory_bytes"),
    );
  }

  get reconcileTotal(): number {
    return Object.values(this.reconciles).reduce((a, b) => a + b, 0);
  }
}

/**
 * KMS calls between two scrapes, with the probes' own calls taken out: a probe is one describe
 * (which proves get for proveAccess), then a wrap and an unwrap (src/watchdog/prober.ts, src/kms/requirements.ts).
 */
export function kmsDelta(before: OperatorMetrics, after: OperatorMetrics) {
  const d = {
    describe: after.kms.describe - before.kms.describe,
    list: after.kms.list - before.kms.list,
    wrap: after.kms.wrap - before.kms.wrap,
    unwrap: after.kms.unwrap - before.kms.unwrap,
  };
  const probes = after.probes - before.probes;
  const beyond = {
    describe: d.describe - probes,
    list: d.list,
    wrap: d.wrap - probes,
    unwrap: d.unwrap - probes,
  };
  return {
    total: d.describe + d.list + d.wrap + d.unwrap,
    ...d,
    probes,
    beyondProbes: beyond,
    beyondProbesTotal: beyond.describe + beyond.list + beyond.wrap + beyond.unwrap,
  };
}
