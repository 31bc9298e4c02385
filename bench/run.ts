/**
 * `npm run bench`: the operator as a separate process against the harness's real API server,
 * with the Local provider given an artificial per-call latency. Prints a short table and writes
 * the full figures to bench/results/bench-<size>-<time>.json. Figures, not assertions.
 *
 *   npm run bench -- --size 10000 --latency 20 --probe-interval 10s --idle 5m --workers 32
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { parseDuration } from "../src/api/duration.js";
import { parseConfig } from "../src/config.js";
import { BenchCluster } from "./lib/cluster.js";
import { chartRuntimeEnv, type RuntimeEnv } from "./lib/image-runtime-env.js";
import { lowkeyRun } from "./lib/lowkey.js";
import { type AtPeak, Bench, type BenchSettings } from "./lib/scenarios.js";
import { seriesRun } from "./lib/series.js";
import { round } from "./lib/util.js";

/** the operator's own defaults (its --workers), which the benchmark runs with unless told otherwise */
const operatorDefaults = parseConfig([]);

const { values } = parseArgs({
  options: {
    size: { type: "string", default: "1000" },
    servers: { type: "string" },
    keys: { type: "string", default: "10" },
    latency: { type: "string", default: "20" },
    "probe-interval": { type: "string", default: "10s" },
    grace: { type: "string", default: "30s" },
    idle: { type: "string", default: "5m" },
    workers: { type: "string", default: String(operatorDefaults.workers) },
    "kms-concurrency": { type: "string", default: "16" },
    concurrency: { type: "string", default: "16" },
    "scaling-size": { type: "string" },
    "skip-scaling": { type: "boolean", default: false },
    timeout: { type: "string", default: "30m" },
    source: { type: "boolean", default: false },
    "node-options": { type: "string" },
    "malloc-arena-max": { type: "string" },
    "lowkey-size": { type: "string" },
    only: { type: "string" },
    series: { type: "string" },
    "cpu-prof": { type: "string" },
    "floor-breakdown": { type: "boolean", default: false },
    help: { type: "boolean", default: false },
  },
  strict: true,
});

if (values.help) {
  process.stdout.write(
    [
      "npm run bench -- [options]",
      "  --size N              databases in the main run (default 1000; the full run is 10000)",
      "  --servers N           servers (default size/10, at most 100)",
      "  --keys N              Local keys (default 10)",
      "  --latency MS          artificial latency of every Local KMS call (default 20)",
      "  --probe-interval D    the operator's probe interval (default 10s)",
      "  --grace D             servers' keyAccessGracePeriod (default 30s)",
      "  --idle D              the idle window (default 5m)",
      `  --workers N           the operator's --workers (default ${operatorDefaults.workers}, the operator's own default)`,
      "  --kms-concurrency N   the operator's --kms-concurrency, used for the KMS floor (default 16)",
      "  --concurrency N       the benchmark client's concurrency, also the API floor's (default 16)",
      "  --scaling-size N      the smaller convergence of the Scaling scenario (default size/10)",
      "  --skip-scaling        no smaller convergence",
      "  --only A,B            run only these parts: scaling, main (convergence, idle, restart,",
      "                        rotation, watchdog), lowkey (default: all three)",
      "  --node-options=S      NODE_OPTIONS of the operator process (default: the chart's, as installed),",
      "                        with '=' as S starts with a dash: --node-options='--enable-source-maps --max-old-space-size=512'",
      "  --malloc-arena-max N  MALLOC_ARENA_MAX of the operator process (default: the chart's)",
      "  --cpu-prof DIR        a V8 CPU profile of each operator process into DIR (node --cpu-prof; open it in",
      "                        Chrome DevTools or summarise it with scripts of your own)",
      "  --floor-breakdown     also measure the convergence floor with R12's Event per DEK, then with that and",
      "                        the informers' watches, to tell where the seconds over the floor go",
      "  --source              run the operator from source under tsx instead of the built image (dist/)",
      "  --series A,B,C        instead of the other parts: convergence and rotation at each size, each with",
      "                        its own operator, for ms/db and MiB per 1,000 databases (e.g. 1000,10000,30000)",
      "  --lowkey-size N       databases of the Lowkey Vault scenario (default size, at most 500); it runs",
      "                        when the harness finds a Lowkey Vault jar (LOWKEY_VAULT_JAR or its cache folder)",
      "",
    ].join("\n"),
  );
  process.exit(0);
}

const PARTS = ["scaling", "main", "lowkey"] as const;
const only = new Set((values.only ?? PARTS.join(",")).split(",").map((p) => p.trim()));
for (const part of only)
  if (!(PARTS as readonly string[]).includes(part))
    throw new Error(`--only takes ${PARTS.join(", ")}; got "${part}"`);

const int = (s: string | undefined, name: string) => {
  const n = Number(s);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`--${name} must be a whole number > 0, got ${s}`);
  return n;
};

const size = int(values.size, "size");
const series = values.series?.split(",").map((n) => int(n.trim(), "series"));
const keys = int(values.keys, "keys");
const servers = values.servers
  ? int(values.servers, "servers")
  : Math.max(1, Math.min(100, Math.round(size / 10)));
const concurrency = int(values.concurrency, "concurrency");
const scalingSize = values["scaling-size"]
  ? int(values["scaling-size"], "scaling-size")
  : Math.max(10, Math.round(size / 10));
const resultsDir = join(import.meta.dirname, "results");
mkdirSync(resultsDir, { recursive: true });
const stamp = new Date().toISOString().replace(/[:.]/g, "-");
const logDir = join(resultsDir, `logs-${stamp}`);
mkdirSync(logDir, { recursive: true });

const settings: BenchSettings = {
  latencyMs: Number(values.latency),
  probeInterval: values["probe-interval"]!,
  workers: int(values.workers, "workers"),
  kmsConcurrency: int(values["kms-concurrency"], "kms-concurrency"),
  idleWindowMs: parseDuration(values.idle!),
  timeoutMs: parseDuration(values.timeout!),
  operatorNamespace: "tde-system",
  logDir,
  runFrom: values.source ? "source" : "built",
  // the memory settings the chart installs the operator with, unless told otherwise
  runtimeEnv: runtimeEnvOf(values),
  ...(values["cpu-prof"] ? { cpuProfDir: values["cpu-prof"] } : {}),
  ...(values["floor-breakdown"] ? { floorBreakdown: true } : {}),
};

const log = (line: string) => process.stderr.write(`${line}\n`);
const results: Record<string, unknown> = {
  startedAt: new Date().toISOString(),
  machine: { cpus: cpus().length, memoryMiB: Math.round(totalmem() / 1024 / 1024), node: process.version },
  settings: { ...settings, size, servers, keys, concurrency, scalingSize, grace: values.grace },
};

async function main(): Promise<void> {
  log(
    `bench: ${size} databases on ${servers} servers and ${keys} keys; KMS latency ${settings.latencyMs} ms`,
  );
  if (settings.runFrom === "built") {
    log("building the operator (npm run build) to run it as the image does: node dist/src/main.js");
    execFileSync(
      process.execPath,
      [join("node_modules", "typescript", "bin", "tsc"), "-p", "tsconfig.build.json"],
      {
        stdio: "inherit",
      },
    );
  }
  const cluster = await BenchCluster.start(log);
  try {
    if (series) {
      results.series = await seriesRun(
        cluster,
        settings,
        series,
        { keys, concurrency, grace: values.grace! },
        log,
      );
      only.clear();
    }
    if (only.has("scaling") && !values["skip-scaling"] && scalingSize < size) {
      log(`scaling: convergence at ${scalingSize} databases`);
      const small = new Bench(
        cluster,
        {
          namespace: "bench-small",
          servers: Math.max(1, Math.min(servers, Math.round(scalingSize / 10))),
          keys,
          databases: scalingSize,
          grace: values.grace!,
          concurrency,
        },
        { ...settings, operatorNamespace: "tde-system-small" },
        "small",
      );
      try {
        results.scalingSmall = await small.convergence();
      } finally {
        await small.stop();
      }
      log(`  ${JSON.stringify(summary(results.scalingSmall))}`);
    }

    const bench = new Bench(
      cluster,
      { namespace: "bench-main", servers, keys, databases: size, grace: values.grace!, concurrency },
      settings,
      "main",
    );
    if (only.has("main"))
      try {
        for (const [name, run] of [
          ["convergence", () => bench.convergence()],
          ["idle", () => bench.idle()],
          ["restart", () => bench.restart()],
          ["rotation", () => bench.rotation()],
          ["watchdog", () => bench.watchdog()],
        ] as const) {
          log(`${name} …`);
          const started = Date.now();
          try {
            results[name] = await run();
          } catch (error) {
            results[name] = { error: (error as Error).message };
          }
          log(
            `  ${name} done in ${round((Date.now() - started) / 1000, 1)} s: ${JSON.stringify(summary(results[name]))}`,
          );
        }
      } finally {
        await bench.stop();
      }

    if (only.has("lowkey"))
      try {
        log("lowkey vault …");
        const lowkeySize = values["lowkey-size"]
          ? int(values["lowkey-size"], "lowkey-size")
          : Math.min(size, 500);
        results.lowkeyVault = await lowkeyRun(
          cluster,
          settings,
          {
            databases: lowkeySize,
            servers: Math.max(1, Math.min(servers, Math.round(lowkeySize / 10))),
            keys,
            concurrency,
          },
          log,
        );
      } catch (error) {
        results.lowkeyVault = { skipped: true, reason: `failed: ${(error as Error).message}` };
      }
  } finally {
    await cluster.stop();
  }
  results.finishedAt = new Date().toISOString();
  const file = join(resultsDir, `bench-${series ? `series-${series.join("-")}` : size}-${stamp}.json`);
  writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
  process.stdout.write(table());
  process.stdout.write(`\nfull figures: ${file}\noperator logs: ${logDir}\n`);
}

function summary(r: unknown): unknown {
  if (!r || typeof r !== "object") return r;
  const o = r as Record<string, unknown>;
  const pick = [
    "error",
    "wallMs",
    "ratioToFloor",
    "kmsPerDek",
    "peakRssMiB",
    "probesPerInterval",
    "kmsBeyondProbes",
    "writesBeyondLease",
    "readyMs",
    "switchedMs",
    "keyAccessibleFalseMs",
  ];
  return Object.fromEntries(pick.filter((k) => k in o).map((k) => [k, o[k]]));
}

// biome-ignore lint/suspicious/noExplicitAny: the results are printed as they were built above
type Any = Record<string, any>;

function table(): string {
  const rows: Array<[string, string, string, string]> = [];
  const r = results as Any;
  const s = (ms: number | undefined) => (ms === undefined ? "-" : `${round(ms / 1000, 1)} s`);
  const conv = (name: string, c: Any | undefined) => {
    if (!c) return;
    if (c.error) return rows.push([name, "error", c.error, ""]);
    rows.push([
      name,
      `${c.databases} dbs: ${s(c.wallMs)} (${c.msPerDatabase} ms/db)`,
      `${c.ratioToFloor}× floor (API ${s(c.floor.apiMs)}, KMS ${s(c.floor.kmsMs)})`,
      `wrap/DEK ${c.kmsPerDek.wrap} (goal 1), unwrap/DEK ${c.kmsPerDek.unwrap}, API req/db ${c.api.perDatabase} (writes ${c.api.writesPerDatabase}; floor ${c.floorRequestsPerDek}/DEK), peak RSS ${c.peakRssMiB} MiB (goal < 200)`,
    ]);
    const b = c.floorBreakdown;
    if (b)
      rows.push([
        "",
        `floor + R12 Events: ${s(b.withEvents.ms)}`,
        `+ watches: ${s(b.withEventsAndWatches.ms)}`,
        `the operator at ${b.ratioToFloorWithEventsAndWatches}× of that; the plain floor again, last: ${s(b.plainAgain.ms)}`,
      ]);
  };
  conv("Scaling (small)", r.scalingSmall);
  conv("Convergence", r.convergence);
  const rot = r.rotation as Any | undefined;
  if (rot?.error) rows.push(["Rotation", "error", rot.error, ""]);
  else if (rot)
    rows.push([
      "Rotation",
      `${rot.deks} DEKs: ${s(rot.switchedMs)} (seen ${s(rot.detectedMs)}, re-wrap ${s(rot.rewrapMs)})`,
      `${rot.ratioToFloor}× floor (API ${s(rot.floor.apiMs)}, KMS ${s(rot.floor.kmsMs)})`,
      `per DEK: unwrap ${rot.kmsPerDek.unwrap}, wrap ${rot.kmsPerDek.wrap} (R16: 2 unwrap + 1 wrap), describe ${rot.kmsPerDek.describe}; API req/DEK ${rot.api.perDek}`,
    ]);
  const w = r.watchdog as Any | undefined;
  if (w?.error) rows.push(["Watchdog", "error", w.error, ""]);
  else if (w) {
    const o = w.inaccessibleVsDeadline.observed;
    rows.push([
      "Watchdog",
      `${w.probesPerInterval} probes/interval (${w.distinctKeys} keys)`,
      `KeyAccessible=False on ${w.dependants.servers}+${w.dependants.databases} in ${s(w.keyAccessibleFalseMs)} (goal ${s(w.keyAccessibleFalseGoalMs)})`,
      `Inaccessible vs deadline: ${o ? `${s(o.minMs)} .. ${s(o.maxMs)}` : "-"} (goal within 5 s); during the grace period ${w.duringGrace?.probes} probes, ${w.duringGrace?.writesBeyondLease} writes`,
    ]);
  }
  const i = r.idle as Any | undefined;
  if (i?.error) rows.push(["Idle", "error", i.error, ""]);
  else if (i)
    rows.push([
      "Idle",
      `${s(i.windowMs)} window, ${i.probes} probes`,
      `KMS beyond probes ${i.kmsBeyondProbes} (goal 0)`,
      `writes beyond Lease ${i.writesBeyondLease} (goal 0) ${JSON.stringify(i.writes)}`,
    ]);
  const re = r.restart as Any | undefined;
  if (re?.error) rows.push(["Restart", "error", re.error, ""]);
  else if (re)
    rows.push([
      "Restart",
      `ready ${s(re.readyMs)}, all reconciled ${s(re.reconciledMs)}, quiet ${s(re.settledMs)}`,
      `KMS beyond probes ${re.kmsBeyondProbes} (goal 0)`,
      `writes ${re.writesBeyondLease} (goal 0) ${JSON.stringify(re.writes)}; reads ${re.reads}`,
    ]);
  for (const p of (r.series as Any[] | undefined) ?? [])
    rows.push([
      `Series ${p.databases}`,
      `convergence ${s(p.convergence.wallMs)} (${p.convergence.msPerDatabase} ms/db, ${p.convergence.ratioToFloor}× floor)`,
      `rotation ${s(p.rotation.switchedMs)} (${p.rotation.msPerDek} ms/DEK, ${p.rotation.ratioToFloor}× floor, ${p.rotation.apiPerDek} API req/DEK)`,
      `peak RSS ${p.peakRssMiB} MiB (start ${p.startRssMiB} MiB): ${p.mibPer1000Databases} MiB per 1,000 databases; heap committed/in use at the peak: convergence ${heapAt(p.convergence)}, rotation ${heapAt(p.rotation)}`,
    ]);
  const lk = r.lowkeyVault as Any | undefined;
  if (lk)
    rows.push(
      lk.skipped
        ? ["Lowkey Vault", "skipped", lk.reason, ""]
        : [
            `Lowkey Vault`,
            `${lk.lowkey}; provider alone at ${lk.provider.concurrency}: describe ${lk.provider.describeMeanMs} ms, wrap ${lk.provider.wrapMeanMs} ms, unwrap ${lk.provider.unwrapMeanMs} ms (${lk.provider.callsPerSecond} calls/s)`,
            `convergence of ${lk.convergence.databases} databases: ${s(lk.convergence.wallMs)}, ${lk.convergence.ratioToFloor}x the floor (API ${s(lk.convergence.floor.apiMs)}, KMS ${s(lk.convergence.floor.kmsMs)}); peak RSS ${lk.convergence.peakRssMiB} MiB`,
            `KMS per DEK ${JSON.stringify(lk.convergence.kmsPerDek)}; ${lk.convergence.probesPerInterval} probes per interval on ${lk.convergence.keys} keys`,
          ],
    );
  return `\n${rows.map((row) => `${row[0].padEnd(16)} ${row[1]}\n${"".padEnd(16)} ${row[2]}\n${"".padEnd(16)} ${row[3]}`).join("\n")}\n`;
}

main().catch((error: unknown) => {
  log(`bench failed: ${(error as Error).stack ?? String(error)}`);
  process.exit(1);
});

/** The chart's NODE_OPTIONS and MALLOC_ARENA_MAX, each replaced where a flag says otherwise. */
function runtimeEnvOf(v: { "node-options"?: string; "malloc-arena-max"?: string }): RuntimeEnv {
  const chart = chartRuntimeEnv();
  return {
    NODE_OPTIONS: v["node-options"] ?? chart.NODE_OPTIONS,
    MALLOC_ARENA_MAX: v["malloc-arena-max"] ?? chart.MALLOC_ARENA_MAX,
  };
}

/** "113/86 MiB": the V8 heap committed and in use when a scenario's RSS peaked. */
function heapAt(scenario: { atPeakRss?: AtPeak }): string {
  const p = scenario.atPeakRss;
  return p ? `${p.heapTotalMiB}/${p.heapUsedMiB} MiB` : "unknown";
}
