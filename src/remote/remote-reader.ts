import { ENCRYPTED_DATABASE_RESOURCE } from "../api/index.js";
import type { Metrics } from "../observability/metrics.js";
import {
  ApiError,
  HttpKubeClient,
  isNotFound,
  type KubeClient,
  type KubeObject,
  type ResourceKind,
} from "../runtime/index.js";
import type { KubeEndpoint } from "../runtime/kube-connection.js";
import { clusterSecretName, endpointFromSecret } from "./cluster-secret.js";

const SecretKind: ResourceKind = { group: "", version: "v1", plural: "secrets", kind: "Secret" };

/** Why a remote cluster could not be read: a bounded set (a metric or a condition reason, never error text). */
export type RemoteFailureReason =
  | "NoKubeconfig"
  | "BadKubeconfig"
  | "Unreachable"
  | "Forbidden"
  | "ServerError";

/** One read of another cluster: the object (undefined when it does not exist), or why it failed. */
export type RemoteRead<T> =
  | { ok: true; object: T | undefined }
  | { ok: false; cluster: string; reason: RemoteFailureReason; message: string };

export type RemoteKind = "EncryptedDatabase" | "Secret";

/**
 * R19-R21: the one port through which the operator sees other clusters. Read-only by design:
 * each cluster's operator writes only its own objects, so there is no write here to misuse.
 */
export interface RemoteReader {
  read<T extends KubeObject>(
    cluster: string,
    kind: RemoteKind,
    namespace: string,
    name: string,
  ): Promise<RemoteRead<T>>;
}

export interface RemoteClustersOptions {
  /** this cluster's client: it reads the kubeconfig Secrets of the operator's namespace */
  local: KubeClient;
  operatorNamespace: string;
  /** how long a read (and a cluster's client) is reused */
  ttlMs: number;
  /** a remote request that takes longer fails as Unreachable */
  requestTimeoutMs?: number;
  metrics?: Metrics;
  now?: () => number;
  /** tests and the adapter swap: how an endpoint becomes a client */
  clientFor?: (endpoint: KubeEndpoint, timeoutMs: number) => KubeClient;
}

interface Cached {
  at: number;
  result: Promise<RemoteRead<KubeObject>>;
}

/**
 * Reads of other clusters, each reused for `ttlMs` (concurrent passes asking for the same object
 * share one request), through a client per cluster built from its kubeconfig Secret and rebuilt
 * when that Secret changes. Every answer sets `tde_remote_cluster_up` and, on success, the
 * time of the last successful read.
 */
export class RemoteClusters implements RemoteReader {
  private readonly reads = new Map<string, Cached>();
  private readonly clients = new Map<string, { version: string; client: KubeClient; at: number }>();
  private readonly now: () => number;

  constructor(private readonly options: RemoteClustersOptions) {
    this.now = options.now ?? Date.now;
  }

  read<T extends KubeObject>(
    cluster: string,
    kind: RemoteKind,
    namespace: string,
    name: string,
  ): Promise<RemoteRead<T>> {
    const key = `${cluster}/${kind}/${namespace}/${name}`;
    const now = this.now();
    const cached = this.reads.get(key);
    if (cached && now - cached.at < this.options.ttlMs) return cached.result as Promise<RemoteRead<T>>;
    const result = this.fetch(cluster, kind, namespace, name);
    this.reads.set(key, { at: now, result });
    if (this.reads.size > 4096) this.reads.delete(this.reads.keys().next().value!);
    return result as Promise<RemoteRead<T>>;
  }

  private async fetch(
    cluster: string,
    kind: RemoteKind,
    namespace: string,
    name: string,
  ): Promise<RemoteRead<KubeObject>> {
    const client = await this.clientOf(cluster);
    if (!("get" in client)) return this.record(cluster, client);
    try {
      const object = await client.get(
        kind === "Secret" ? SecretKind : ENCRYPTED_DATABASE_RESOURCE,
        namespace,
        name,
      );
      return this.record(cluster, { ok: true, object });
    } catch (error) {
      if (isNotFound(error)) return this.record(cluster, { ok: true, object: undefined });
      return this.record(cluster, failure(cluster, error));
    }
  }

  /** The cluster's client, from its Secret (read again once the client is older than the ttl). */
  private async clientOf(cluster: string): Promise<KubeClient | Extract<RemoteRead<never>, { ok: false }>> {
    const { local, operatorNamespace, ttlMs } = this.options;
    const known = this.clients.get(cluster);
    if (known && this.now() - known.at < ttlMs) return known.client;
    let secret: KubeObject & { data?: Record<string, string> };
    try {
      secret = await local.get(SecretKind, operatorNamespace, clusterSecretName(cluster));
    } catch (error) {
      const missing = isNotFound(error);
      return {
        ok: false,
        cluster,
        reason: missing ? "NoKubeconfig" : "ServerError",
        message: missing
          ? `no Secret ${operatorNamespace}/${clusterSecretName(cluster)} names the cluster ${cluster}: create it with the cluster's kubeconfig under the key value (docs/geo-replication.md)`
          : `the Secret ${operatorNamespace}/${clusterSecretName(cluster)} could not be read: ${(error as Error).message}`,
      };
    }
    const version = secret.metadata?.resourceVersion ?? "";
    if (known && known.version === version) {
      known.at = this.now();
      return known.client;
    }
    const endpoint = endpointFromSecret(cluster, operatorNamespace, secret);
    if (!endpoint.ok) return { ok: false, cluster, reason: "BadKubeconfig", message: endpoint.message };
    const timeoutMs = this.options.requestTimeoutMs ?? 5_000;
    const client = this.options.clientFor
      ? this.options.clientFor(endpoint.endpoint, timeoutMs)
      : new HttpKubeClient(endpoint.endpoint, { requestTimeoutMs: timeoutMs });
    this.clients.set(cluster, { version, client, at: this.now() });
    return client;
  }

  private record<T>(cluster: string, result: RemoteRead<T>): RemoteRead<T> {
    const m = this.options.metrics;
    m?.remoteClusterUp.set({ cluster }, result.ok ? 1 : 0);
    if (result.ok) m?.remoteClusterLastSuccess.set({ cluster }, Math.floor(this.now() / 1000));
    return result;
  }
}

/** What a failed remote read says: which cluster, a bounded reason, and the API server's or the network's words. */
export function failure(cluster: string, error: unknown): Extract<RemoteRead<never>, { ok: false }> {
  const code = error instanceof ApiError ? error.statusCode : undefined;
  if (code === 401 || code === 403)
    return {
      ok: false,
      cluster,
      reason: "Forbidden",
      message: `cluster ${cluster} refused the read (${code}): give the identity of its kubeconfig Secret the chart's remote-reader role in the namespaces involved`,
    };
  if (code !== undefined && code > 0)
    return {
      ok: false,
      cluster,
      reason: "ServerError",
      message: `cluster ${cluster} answered ${code}: ${error instanceof Error ? error.message : String(error)}`,
    };
  return {
    ok: false,
    cluster,
    reason: "Unreachable",
    message: `cluster ${cluster} is unreachable: ${error instanceof Error ? error.message : String(error)}`,
  };
}
