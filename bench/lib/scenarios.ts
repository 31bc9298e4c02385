import { parseDuration } from "../../src/api/duration.js";
import type { BenchCluster } from "./cluster.js";
import { BenchCluster as Cluster, writesBeyondLease } from "./cluster.js";
import { ApiFloor, type FloorExtras } from "./floor.js";
import { kmsDelta, type OperatorMetrics, OperatorProcess } from "./operator-process.js";
import { round, sleep, waitUntil } from "./util.js";
import { conditionIs, keyName, Workload, type WorkloadShape } from "./workload.js";

export interface BenchSettings {
  latencyMs: number;
  probeInterval: string;
  workers: number;
  kmsConcurrency: number;
  idleWindowMs: number;
  timeoutMs: number;
  operatorNamespace: string;
  logDir: string;
  runFrom: "built" | "source";
  runtimeEnv?: Record<string, string>;
  cpuProfDir?: string;
  /** also measure the convergence floor with R12's Events, then with the informers' watches too */
  floorBreakdown?: boolean;
}

const MiB = 1024 * 1024;

/** One operator and one workload, measured through scenarios in turn. */
export class Bench {
  op: OperatorProcess | undefined;
  readonly workload: Workload;
  private floor: ApiFloor | undefined;
  private processes = 0;

  constructor(
    readonly cluster: BenchCluster,
    readonly shape: WorkloadShape,
    readonly settings: BenchSettings,
    readonly label: string,
  ) {
    this.workload = new Workload(cluster, shape);
  }

  get deks(): number {
    return this.shape.servers + this.shape.databases;
  }

  get probeIntervalMs(): number {
    return parseDuration(this.settings.probeInterval);
  }

  private async startOperator(): Promise<OperatorProcess> {
    this.processes++;
    this.op = await OperatorProcess.start({
      kubeconfig: this.cluster.kubeconfigPath,
      operatorNamespace: this.settings.operatorNamespace,
      watchNamespaces: [this.shape.namespace],
      probeInterval: this.settings.probeInterval,
      latencyMs: this.settings.latencyMs,
      workers: this.settings.workers,
      kmsConcurrency: this.settings.kmsConcurrency,
      logFile: `${this.settings.logDir}/operator-${this.label}-${this.processes}.log`,
      runFrom: this.settings.runFrom,
      ...(this.settings.runtimeEnv !== undefined ? { runtimeEnv: this.settings.runtimeEnv } : {}),
      ...(this.settings.cpuProfDir ? { cpuProfDir: this.settings.cpuProfDir } : {}),
    });
    return this.op;
  }

  private kmsFloorMs(calls: number): number {
    return (calls * this.settings.latencyMs) / this.settings.kmsConcurrency;
  }

  /** All resources created at once, until every one is Ready. */
  async convergence() {
    const { cluster, shape } = this;
    await cluster.createNamespace(shape.namespace);
    await cluster.createNamespace(this.settings.operatorNamespace);
    const floorNs = `${shape.namespace}-floor`;
    await cluster.createNamespace(floorNs);
    this.floor = new ApiFloor(cluster, floorNs, shape.concurrency);
    const apiFloor = await this.floor.convergence(shape.servers, shape.databases);
    const breakdown = this.settings.floorBreakdown ? await this.floorBreakdown() : undefined;

    await this.workload.createKeys();
    await this.workload.watch();
    const op = await this.startOperator();
    await sleep(1_000);
    const m0 = await op.scrape();
    const a0 = await cluster.apiCounts();
    const own0 = cluster.snapshotOwn();
    const started = Date.now();
    await this.workload.createAll();
    const createMs = Date.now() - started;
    await waitUntil(
      "every resource Ready",
      () => this.workload.allReady(),
      this.settings.timeoutMs,
      100,
      () => this.workload.progress(),
    );
    const wallMs = Date.now() - started;
    const m1 = await op.scrape();
    const api = Cluster.diff(a0, await cluster.apiCounts(), own0, cluster.snapshotOwn());
    const kms = kmsDelta(m0, m1);
    const kmsFloorMs = this.kmsFloorMs(this.deks); // one wrap per DEK
    const floorMs = Math.max(apiFloor.ms, kmsFloorMs);
    return {
      databases: shape.databases,
      servers: shape.servers,
      keys: shape.keys,
      wallMs,
      createMs,
      floor: { apiMs: apiFloor.ms, apiRequests: apiFloor.requests, kmsMs: kmsFloorMs, ms: floorMs },
      ratioToFloor: round(wallMs / floorMs),
      ...(breakdown
        ? {
            floorBreakdown: {
              ...breakdown,
              ratioToFloorWithEventsAndWatches: round(wallMs / breakdown.withEventsAndWatches.ms),
            },
          }
        : {}),
      msPerDatabase: round(wallMs / shape.databases, 3),
      kms,
      kmsPerDek: {
        wrap: round(kms.beyondProbes.wrap / this.deks, 3),
        unwrap: round(kms.beyondProbes.unwrap / this.deks, 3),
        describe: round(kms.beyondProbes.describe / this.deks, 3),
        list: round(kms.beyondProbes.list / this.deks, 3),
      },
      api: {
        ...api,
        perDatabase: round(api.total / shape.databases, 2),
        writesPerDatabase: round(api.writes / shape.databases, 2),
      },
      floorRequestsPerDek: round(apiFloor.requests / this.deks, 2),
      reconciles: diffRecord(m0.reconciles, m1.reconciles),
      peakRssMiB: round(op.peakRssBytes / MiB, 1),
      peakHeapUsedMiB: round(op.peakHeapUsedBytes / MiB, 1),
      atPeakRss: atPeak(op),
      /** the operator's RSS before the first resource was created (its fixed cost) */
      startRssMiB: round(m0.rssBytes / MiB, 1),
    };
  }

  /**
   * The convergence floor again, in fresh namespaces: with the Event R12 gives each new DEK's
   * resource, then with that and the watches a convergence has open (the operator's informers and
   * the benchmark's). Their distance from the plain floor is the part of the operator's own that
   * no operator keeping R12 and watching its resources avoids. Each leaves 2 × (servers +
   * databases) more objects (and an Event each) in etcd for what runs after it, so the plain
   * floor is measured once more at the end: the drift the store's growth alone makes.
   */
  private async floorBreakdown() {
    const { cluster, shape } = this;
    const measure = async (suffix: string, extras: FloorExtras) => {
      const ns = `${shape.namespace}-floor-${suffix}`;
      await cluster.createNamespace(ns);
      return new ApiFloor(cluster, ns, shape.concurrency).convergence(shape.servers, shape.databases, extras);
    };
    const withEvents = await measure("events", { events: true });
    const withEventsAndWatches = await measure("watched", { events: true, watches: true });
    const plainAgain = await measure("again", {});
    return { withEvents, withEventsAndWatches, plainAgain };
  }

  /** Waits until the operator has stopped reconciling (its reconcile counter still for `quietMs`). */
  private async settle(quietMs = 3_000, timeoutMs = 120_000): Promise<number> {
    const op = this.op!;
    const started = Date.now();
    // KeyProtectors requeue themselves every probe interval: only servers and databases count
    const work = async () => {
      const r = (await op.scrape()).reconciles;
      return Object.entries(r)
        .filter(([k]) => !k.startsWith("keyprotector/"))
        .reduce((a, [, v]) => a + v, 0);
    };
    let last = await work();
    let stillSince = Date.now();
    while (Date.now() - stillSince < quietMs) {
      if (Date.now() - started > timeoutMs) break;
      await sleep(500);
      const now = await work();
      if (now !== last) {
        last = now;
        stillSince = Date.now();
      }
    }
    return Date.now() - started;
  }

  /** A window with nothing changing. */
  async idle() {
    const { cluster } = this;
    const op = this.op!;
    await this.settle();
    const m0 = await op.scrape();
    const a0 = await cluster.apiCounts();
    const own0 = cluster.snapshotOwn();
    await sleep(this.settings.idleWindowMs);
    const m1 = await op.scrape();
    const api = Cluster.diff(a0, await cluster.apiCounts(), own0, cluster.snapshotOwn());
    const kms = kmsDelta(m0, m1);
    const writes = writesBeyondLease(api.byKey);
    return {
      windowMs: this.settings.idleWindowMs,
      probes: kms.probes,
      kmsBeyondProbes: kms.beyondProbesTotal,
      kms,
      writesBeyondLease: Object.values(writes).reduce((a, b) => a + b, 0),
      writes,
      reads: api.total - api.writes,
      reconciles: diffRecord(m0.reconciles, m1.reconciles),
      rssMiB: round(m1.rssBytes / MiB, 1),
    };
  }

  /** The operator restarted with everything in place. */
  async restart() {
    const { cluster } = this;
    await this.op?.stop();
    const a0 = await cluster.apiCounts();
    const own0 = cluster.snapshotOwn();
    const started = Date.now();
    const op = await this.startOperator();
    const readyMs = Date.now() - started;
    // every resource is reconciled once after the initial list; wait for that and for quiet
    await waitUntil(
      "a reconcile of every resource",
      async () => (await op.scrape()).reconcileTotal >= this.deks,
      this.settings.timeoutMs,
      200,
    );
    const reconciledMs = Date.now() - started;
    await this.settle(3_000);
    const settledMs = Date.now() - started - 3_000;
    const m1 = await op.scrape();
    const api = Cluster.diff(a0, await cluster.apiCounts(), own0, cluster.snapshotOwn());
    const zero = {
      ...m1,
      kms: { describe: 0, list: 0, wrap: 0, unwrap: 0 },
      probes: 0,
      reconciles: {},
    } as OperatorMetrics;
    const kms = kmsDelta(zero, m1);
    const writes = writesBeyondLease(api.byKey);
    return {
      readyMs,
      reconciledMs,
      settledMs,
      probes: kms.probes,
      kmsBeyondProbes: kms.beyondProbesTotal,
      kms,
      writesBeyondLease: Object.values(writes).reduce((a, b) => a + b, 0),
      writes,
      reads: api.total - api.writes,
      readsByKey: Object.fromEntries(
        Object.entries(api.byKey).filter(([k]) => k.startsWith("GET") || k.startsWith("LIST")),
      ),
      reconciles: m1.reconciles,
      peakRssMiB: round(op.peakRssBytes / MiB, 1),
      peakHeapUsedMiB: round(op.peakHeapUsedBytes / MiB, 1),
      atPeakRss: atPeak(op),
    };
  }

  /** Every key gets a new version (LocalKeyProvider.rotateKey): all DEKs move to it. */
  async rotation() {
    const { cluster, shape, workload } = this;
    const op = this.op!;
    const apiFloor = await this.floor!.rotation();
    await this.settle();
    const m0 = await op.scrape();
    const a0 = await cluster.apiCounts();
    const started = Date.now();
    const newIDs = new Set<string>();
    for (let k = 0; k < shape.keys; k++) {
      const d = await workload.local.rotateKey(shape.namespace, keyName(k), { size: 2048 });
      newIDs.add(d.keyID);
      // describe (GET), update (GET + PUT), describe (GET)
      cluster.countOwn("GET secrets", 3);
      cluster.countOwn("PUT secrets");
    }
    const own0 = cluster.snapshotOwn();
    const rotatedMs = Date.now() - started;
    const detectedMs = await waitUntil(
      "every KeyProtector on its new version",
      () =>
        workload.keyProtectors.list().filter((kp) => newIDs.has(kp.status?.keyID ?? "")).length ===
        shape.keys,
      this.settings.timeoutMs,
    );
    const switched = () => {
      const s = workload.servers.list().filter((o) => newIDs.has(o.status?.protector?.keyID ?? "")).length;
      const d = workload.databases
        .list()
        .filter((o) => newIDs.has(o.status?.effectiveProtector?.keyID ?? "")).length;
      return { s, d };
    };
    await waitUntil(
      "every DEK switched to its key's new version",
      () => {
        const { s, d } = switched();
        return s === shape.servers && d === shape.databases;
      },
      this.settings.timeoutMs,
      100,
      () => JSON.stringify(switched()),
    );
    const switchedMs = Date.now() - started;
    await this.settle();
    const m1 = await op.scrape();
    const api = Cluster.diff(a0, await cluster.apiCounts(), own0, cluster.snapshotOwn());
    const kms = kmsDelta(m0, m1);
    const rewrapMs = switchedMs - rotatedMs - detectedMs;
    const kmsFloorMs = this.kmsFloorMs(3 * this.deks); // R16: unwrap, wrap, proof unwrap
    const floorMs = Math.max(apiFloor.ms, kmsFloorMs);
    return {
      deks: this.deks,
      keysRotated: shape.keys,
      switchedMs,
      detectedMs,
      rewrapMs,
      floor: { apiMs: apiFloor.ms, apiRequests: apiFloor.requests, kmsMs: kmsFloorMs, ms: floorMs },
      ratioToFloor: round(rewrapMs / floorMs),
      kms,
      kmsPerDek: {
        unwrap: round(kms.beyondProbes.unwrap / this.deks, 3),
        wrap: round(kms.beyondProbes.wrap / this.deks, 3),
        describe: round(kms.beyondProbes.describe / this.deks, 3),
        list: round(kms.beyondProbes.list / this.deks, 3),
      },
      api: {
        ...api,
        perDek: round(api.total / this.deks, 2),
        writesPerDek: round(api.writes / this.deks, 2),
      },
      reconciles: diffRecord(m0.reconciles, m1.reconciles),
      peakRssMiB: round(op.peakRssBytes / MiB, 1),
      peakHeapUsedMiB: round(op.peakHeapUsedBytes / MiB, 1),
      atPeakRss: atPeak(op),
    };
  }

  /** Probes per interval; then a key disabled: KeyAccessible=False, then Inaccessible at the grace deadline. */
  async watchdog() {
    const { shape, workload } = this;
    const op = this.op!;
    const interval = this.probeIntervalMs;
    const intervals = 3;
    const p0 = (await op.scrape()).probes;
    await sleep(intervals * interval);
    const p1 = (await op.scrape()).probes;
    const probesPerInterval = round((p1 - p0) / intervals, 2);
    // the workload's keys, plus the operator's service-managed key (probed too, in its own namespace)
    const distinctKeys = workload.keyProtectors.list().length + 1;

    const { servers, databases } = workload.dependantsOfKey(0);
    const ref = { provider: "Local" as const, namespace: shape.namespace, keyName: keyName(0) };
    const versions = await workload.local.listVersions(ref);
    const disabledAt = Date.now();
    for (const v of versions) await workload.local.setEnabled(shape.namespace, keyName(0), false, v.version);
    const lostSeen = await waitUntil(
      "KeyAccessible=False on every dependant of the disabled key",
      () => {
        const s = workload.servers
          .list()
          .filter((o) => servers.has(o.metadata.name ?? "") && conditionIs(o, "KeyAccessible", "False"));
        const d = workload.databases
          .list()
          .filter((o) => databases.has(o.metadata.name ?? "") && conditionIs(o, "KeyAccessible", "False"));
        return s.length === servers.size && d.length === databases.size;
      },
      this.settings.timeoutMs,
    );
    const graceMs = parseDuration(shape.grace);
    // the rest of the grace period: probes go on failing, nothing should be written (R10: the
    // condition names a fixed deadline, so a failed probe does not rewrite the dependants)
    const lostSince = [...workload.servers.list(), ...workload.databases.list()]
      .filter((o) => servers.has(o.metadata.name ?? "") || databases.has(o.metadata.name ?? ""))
      .map((o) => Date.parse(o.status?.keyAccessLostSince ?? ""))
      .filter(Number.isFinite);
    const firstDeadline = Math.min(...lostSince) + graceMs;
    await sleep(1_000);
    const g0 = await op.scrape();
    const ga0 = await this.cluster.apiCounts();
    const gown0 = this.cluster.snapshotOwn();
    await sleep(Math.max(0, firstDeadline - 1_000 - Date.now()));
    const g1 = await op.scrape();
    const graceApi = Cluster.diff(ga0, await this.cluster.apiCounts(), gown0, this.cluster.snapshotOwn());
    const duringGrace = {
      probes: g1.probes - g0.probes,
      writes: writesBeyondLease(graceApi.byKey),
    };
    // first time each dependant is seen Inaccessible, against its own grace deadline
    const seen = new Map<string, number>();
    const offsets: number[] = [];
    const stampOffsets: number[] = [];
    const dbOffsets: number[] = [];
    await waitUntil(
      "Inaccessible on every server using the disabled key",
      () => {
        const now = Date.now();
        for (const o of workload.servers.list()) {
          const name = o.metadata.name ?? "";
          if (!servers.has(name) || seen.has(`s/${name}`) || o.status?.state !== "Inaccessible") continue;
          seen.set(`s/${name}`, now);
          const deadline = Date.parse(o.status?.keyAccessLostSince ?? "") + graceMs;
          offsets.push(now - deadline);
          if (o.status?.inaccessibleSince)
            stampOffsets.push(Date.parse(o.status.inaccessibleSince) - deadline);
        }
        for (const o of workload.databases.list()) {
          const name = o.metadata.name ?? "";
          if (!databases.has(name) || seen.has(`d/${name}`) || o.status?.state !== "Inaccessible") continue;
          seen.set(`d/${name}`, now);
          const lost = Date.parse(o.status?.keyAccessLostSince ?? "");
          if (Number.isFinite(lost)) dbOffsets.push(now - (lost + graceMs));
        }
        return offsets.length === servers.size;
      },
      graceMs + 2 * interval + this.settings.timeoutMs,
      100,
    );
    const inaccessibleMs = Date.now() - disabledAt;
    // give the databases a moment to follow their servers, then re-enable the key
    await sleep(Math.min(10_000, interval));
    for (const v of versions) await workload.local.setEnabled(shape.namespace, keyName(0), true, v.version);
    const stats = (xs: number[]) =>
      xs.length === 0
        ? null
        : {
            n: xs.length,
            minMs: Math.min(...xs),
            maxMs: Math.max(...xs),
            meanMs: round(xs.reduce((a, b) => a + b, 0) / xs.length, 0),
          };
    return {
      probeIntervalMs: interval,
      probesPerInterval,
      distinctKeys,
      dependants: { servers: servers.size, databases: databases.size },
      keyAccessibleFalseMs: lostSeen,
      keyAccessibleFalseGoalMs: interval + 5_000,
      graceMs,
      duringGrace: {
        probes: duringGrace.probes,
        writesBeyondLease: Object.values(duringGrace.writes).reduce((a, b) => a + b, 0),
        writes: duringGrace.writes,
      },
      inaccessibleMs,
      inaccessibleVsDeadline: {
        observed: stats(offsets),
        statusStamp: stats(stampOffsets),
        databases: stats(dbOffsets),
      },
      peakRssMiB: round(op.peakRssBytes / MiB, 1),
      peakHeapUsedMiB: round(op.peakHeapUsedBytes / MiB, 1),
      atPeakRss: atPeak(op),
    };
  }

  async stop(): Promise<void> {
    await this.op?.stop();
    await this.workload.stopWatching();
  }
}

/** The V8 heap (committed and in use) and its external memory when RSS peaked, in MiB: what a peak is made of. */
export type AtPeak = { heapTotalMiB: number; heapUsedMiB: number; externalMiB: number };

function atPeak(op: OperatorProcess): AtPeak {
  const p = op.atPeakRss;
  return {
    heapTotalMiB: round(p.heapTotalBytes / MiB, 1),
    heapUsedMiB: round(p.heapUsedBytes / MiB, 1),
    externalMiB: round(p.externalBytes / MiB, 1),
  };
}

function diffRecord(a: Record<string, number>, b: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(b)) {
    const d = v - (a[k] ?? 0);
    if (d !== 0) out[k] = d;
  }
  return out;
}
