import { readFileSync } from "node:fs";
import { request } from "node:https";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { type ApiCall, HttpKubeClient, isAlreadyExists } from "../../src/runtime/index.js";
import { ControlPlane, type ControlPlaneInfo } from "../../test/harness/control-plane.js";
import { installCrds } from "../../test/harness/crds.js";
import { type PromSample, parseProm } from "./util.js";

/** Requests the API server served, by verb and resource (from its own apiserver_request_total). */
export interface ApiCounts {
  total: number;
  writes: number;
  /** "VERB resource[/subresource]" → count */
  byKey: Record<string, number>;
}

const WRITE_VERBS = new Set(["POST", "PUT", "PATCH", "DELETE", "APPLY", "CREATE", "UPDATE"]);

/**
 * The benchmark's cluster: the harness's real kube-apiserver and etcd with our CRDs, a plain
 * client for the benchmark's own writes (counted, so they can be told apart from the operator's)
 * and the API server's request counters.
 */
export class BenchCluster {
  /** the benchmark's own requests, so they can be subtracted from the API server's counters */
  readonly own: Record<string, number> = {};
  readonly client: HttpKubeClient;
  readonly kc: k8s.KubeConfig;
  readonly core: k8s.CoreV1Api;

  private constructor(
    readonly controlPlane: ControlPlane,
    readonly info: ControlPlaneInfo,
  ) {
    this.kc = new k8s.KubeConfig();
    this.kc.loadFromFile(info.kubeconfigPath);
    this.core = this.kc.makeApiClient(k8s.CoreV1Api);
    this.client = new HttpKubeClient(this.kc, { observer: (call) => this.count(call) });
  }

  static async start(log: (line: string) => void): Promise<BenchCluster> {
    const controlPlane = new ControlPlane({ log });
    const info = await controlPlane.start();
    const cluster = new BenchCluster(controlPlane, info);
    installCrds(info.binaries.kubectl, info.kubeconfigPath);
    return cluster;
  }

  async createNamespace(name: string): Promise<void> {
    try {
      await this.core.createNamespace({ body: { metadata: { name } } });
    } catch (error) {
      if (!isAlreadyExists(error) && (error as { code?: number }).code !== 409) throw error;
    }
  }

  /** The API server's request counters (resource requests only). */
  async apiCounts(): Promise<ApiCounts> {
    const samples = parseProm(await this.apiserverMetrics());
    return toCounts(samples);
  }

  /** `after - before`, less the benchmark's own requests made in between (`ownBefore` from `snapshotOwn`). */
  static diff(
    before: ApiCounts,
    after: ApiCounts,
    ownBefore: Record<string, number>,
    ownAfter: Record<string, number>,
  ) {
    const byKey: Record<string, number> = {};
    for (const [k, v] of Object.entries(after.byKey)) {
      const d = v - (before.byKey[k] ?? 0) - ((ownAfter[k] ?? 0) - (ownBefore[k] ?? 0));
      if (d !== 0) byKey[k] = d;
    }
    let total = 0;
    let writes = 0;
    for (const [k, v] of Object.entries(byKey)) {
      total += v;
      if (WRITE_VERBS.has(k.split(" ")[0]!)) writes += v;
    }
    return { total, writes, byKey };
  }

  snapshotOwn(): Record<string, number> {
    return { ...this.own };
  }

  async stop(): Promise<void> {
    await this.controlPlane.stop();
  }

  private count(call: ApiCall): void {
    const verb = {
      get: "GET",
      list: "LIST",
      create: "POST",
      update: "PUT",
      patch: "PATCH",
      delete: "DELETE",
      discover: "GET",
    }[call.verb];
    const code = call.code >= 200 && call.code < 300 ? "" : ` (${call.code})`;
    const key = `${verb} ${call.resource}${call.subresource ? `/${call.subresource}` : ""}${code}`;
    this.own[key] = (this.own[key] ?? 0) + 1;
  }

  /** Counts a request the benchmark made with another client (client-node, the Local provider). */
  countOwn(key: string, n = 1): void {
    this.own[key] = (this.own[key] ?? 0) + n;
  }

  private apiserverMetrics(): Promise<string> {
    const { pki, server } = this.info;
    return new Promise((resolve, reject) => {
      const req = request(
        `${server}/metrics`,
        {
          ca: readFileSync(pki.caCert),
          cert: readFileSync(pki.adminCert),
          key: readFileSync(pki.adminKey),
          timeout: 30_000,
        },
        (res) => {
          let body = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => {
            body += chunk;
          });
          res.on("end", () => resolve(body));
        },
      );
      req.on("timeout", () => req.destroy(new Error("timeout")));
      req.on("error", reject);
      req.end();
    });
  }

  get kubeconfigPath(): string {
    return this.info.kubeconfigPath;
  }

  logPath(name: string): string {
    return join(this.info.dir, name);
  }
}

function toCounts(samples: PromSample[]): ApiCounts {
  const byKey: Record<string, number> = {};
  let total = 0;
  let writes = 0;
  for (const s of samples) {
    if (s.name !== "apiserver_request_total") continue;
    const resource = s.labels.resource ?? "";
    if (resource === "") continue;
    const code = (s.labels.code ?? "").startsWith("2") ? "" : ` (${s.labels.code})`;
    const key = `${s.labels.verb} ${resource}${s.labels.subresource ? `/${s.labels.subresource}` : ""}${code}`;
    byKey[key] = (byKey[key] ?? 0) + s.value;
    total += s.value;
    if (WRITE_VERBS.has(s.labels.verb ?? "")) writes += s.value;
  }
  return { total, writes, byKey };
}

/**
 * Writes beyond Lease renewals. Leases and the `kubernetes` Service's endpoints are the API
 * server's own writes (its identity Lease, its endpoint reconciler); the operator touches neither.
 */
export function writesBeyondLease(byKey: Record<string, number>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(byKey)) {
    const [verb, resource] = k.split(" ");
    if (!WRITE_VERBS.has(verb!)) continue;
    if (resource?.startsWith("leases") || resource?.startsWith("endpoints")) continue;
    out[k] = v;
  }
  return out;
}
