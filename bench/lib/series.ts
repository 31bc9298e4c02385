/**
 * The cost per database at several fleet sizes (`--series 1000,10000,30000`): for each size, a
 * namespace and an operator process of its own, convergence then the rotation of every key. What
 * should stay flat: milliseconds per database, and memory per 1,000 databases (peak RSS less the
 * operator's RSS before the first resource, over the fleet). Documented in bench/README.md; not
 * run in CI (30,000 databases take about half an hour on two cores).
 */
import type { BenchCluster } from "./cluster.js";
import { type AtPeak, Bench, type BenchSettings } from "./scenarios.js";
import { round } from "./util.js";

export interface SeriesPoint {
  databases: number;
  servers: number;
  convergence: {
    wallMs: number;
    msPerDatabase: number;
    ratioToFloor: number;
    peakRssMiB: number;
    atPeakRss: AtPeak;
  };
  rotation: {
    switchedMs: number;
    msPerDek: number;
    ratioToFloor: number;
    apiPerDek: number;
    peakRssMiB: number;
    atPeakRss: AtPeak;
  };
  startRssMiB: number;
  peakRssMiB: number;
  mibPer1000Databases: number;
}

export async function seriesRun(
  cluster: BenchCluster,
  settings: BenchSettings,
  sizes: readonly number[],
  shape: { keys: number; concurrency: number; grace: string },
  log: (line: string) => void,
): Promise<SeriesPoint[]> {
  const points: SeriesPoint[] = [];
  for (const size of sizes) {
    const servers = Math.max(1, Math.min(100, Math.round(size / 10)));
    log(`series: ${size} databases on ${servers} servers`);
    const bench = new Bench(
      cluster,
      { namespace: `bench-s${size}`, servers, databases: size, ...shape },
      { ...settings, operatorNamespace: `tde-system-s${size}` },
      `series-${size}`,
    );
    try {
      const c = await bench.convergence();
      const r = await bench.rotation();
      const peak = Math.max(c.peakRssMiB, r.peakRssMiB);
      const point: SeriesPoint = {
        databases: size,
        servers,
        convergence: {
          wallMs: c.wallMs,
          msPerDatabase: c.msPerDatabase,
          ratioToFloor: c.ratioToFloor,
          peakRssMiB: c.peakRssMiB,
          atPeakRss: c.atPeakRss,
        },
        rotation: {
          switchedMs: r.switchedMs,
          msPerDek: round(r.rewrapMs / r.deks, 3),
          ratioToFloor: r.ratioToFloor,
          apiPerDek: r.api.perDek,
          peakRssMiB: r.peakRssMiB,
          atPeakRss: r.atPeakRss,
        },
        startRssMiB: c.startRssMiB,
        peakRssMiB: peak,
        mibPer1000Databases: round((peak - c.startRssMiB) / (size / 1000), 2),
      };
      points.push(point);
      log(`  ${JSON.stringify(point)}`);
    } finally {
      await bench.stop();
    }
  }
  return points;
}
