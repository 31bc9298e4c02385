/**
 * R10: the kinds enforcement can act on, found through discovery, and their `/scale`
 * subresource. Any kind whose group/version lists `<plural>/scale` can be scaled to zero and
 * given back the same way, whether it is a StatefulSet or a database operator's cluster resource.
 */
import {
  ApiError,
  type KubeClient,
  type KubeObject,
  PatchType,
  type ResourceKind,
} from "../runtime/index.js";

/** What a workloadRef or an ownerReference names. */
export interface ObjectRef {
  apiVersion: string;
  kind: string;
  name: string;
}

/** A kind as discovery serves it. */
export interface ServedKind {
  resource: ResourceKind;
  /** the group/version lists `<plural>/scale` */
  servesScale: boolean;
}

/** The autoscaling/v1 Scale of an object. */
export interface Scale extends KubeObject {
  spec?: { replicas?: number };
  status?: { replicas?: number; selector?: string };
}

/** `Cluster.postgresql.cnpg.io/pg`: how a person writes an object of any group. */
export function describeRef(ref: ObjectRef): string {
  const slash = ref.apiVersion.lastIndexOf("/");
  const group = slash < 0 ? "" : ref.apiVersion.slice(0, slash);
  return `${ref.kind}${group ? `.${group}` : ""}/${ref.name}`;
}

/** Why a kind cannot be used: the API server does not serve it. */
export class KindNotServedError extends Error {
  override readonly name = "KindNotServedError";
}

interface CacheEntry {
  at: number;
  kinds: Map<string, ServedKind> | undefined;
}

export interface ScaleClientOptions {
  /** how long a discovery answer is reused; a CRD installed later is seen after this; default 60 s */
  discoveryTtlMs?: number;
  now?: () => number;
}

export class ScaleClient {
  private readonly cache = new Map<string, CacheEntry>();
  private readonly ttlMs: number;
  private readonly now: () => number;

  constructor(
    private readonly client: KubeClient,
    options: ScaleClientOptions = {},
  ) {
    this.ttlMs = options.discoveryTtlMs ?? 60_000;
    this.now = options.now ?? Date.now;
  }

  /** The resource of `kind` in `apiVersion`; KindNotServedError when the API server serves no such kind. */
  async kind(apiVersion: string, kind: string): Promise<ServedKind> {
    const kinds = await this.groupVersion(apiVersion);
    const served = kinds?.get(kind);
    if (!served) {
      throw new KindNotServedError(
        kinds
          ? `the API server serves no kind ${kind} in ${apiVersion}: check the kind's spelling (it is case-sensitive)`
          : `the API server serves no ${apiVersion}: install the CRD that defines it or fix the apiVersion`,
      );
    }
    return served;
  }

  private async groupVersion(apiVersion: string): Promise<Map<string, ServedKind> | undefined> {
    const hit = this.cache.get(apiVersion);
    if (hit && this.now() - hit.at < this.ttlMs) return hit.kinds;
    let kinds: Map<string, ServedKind> | undefined;
    try {
      const list = await this.client.discover(apiVersion);
      kinds = servedKinds(apiVersion, list.resources);
    } catch (error) {
      if (!(error instanceof ApiError && error.statusCode === 404)) throw error;
    }
    this.cache.set(apiVersion, { at: this.now(), kinds });
    return kinds;
  }

  getScale(resource: ResourceKind, namespace: string, name: string): Promise<Scale> {
    return this.client.get<Scale>(resource, namespace, name, { subresource: "scale" });
  }

  async setReplicas(
    resource: ResourceKind,
    namespace: string,
    name: string,
    replicas: number,
  ): Promise<void> {
    await this.client.patch(
      resource,
      namespace,
      name,
      { spec: { replicas } },
      { subresource: "scale", type: PatchType.Merge },
    );
  }
}

/** Every top-level kind of a discovery answer, with whether it serves /scale. Pure. */
export function servedKinds(
  apiVersion: string,
  resources: readonly { name: string; kind: string; namespaced: boolean }[],
): Map<string, ServedKind> {
  const slash = apiVersion.lastIndexOf("/");
  const group = slash < 0 ? "" : apiVersion.slice(0, slash);
  const version = slash < 0 ? apiVersion : apiVersion.slice(slash + 1);
  const names = new Set(resources.map((r) => r.name));
  const kinds = new Map<string, ServedKind>();
  for (const r of resources) {
    if (r.name.includes("/")) continue;
    kinds.set(r.kind, {
      resource: { group, version, plural: r.name, kind: r.kind, namespaced: r.namespaced },
      servesScale: names.has(`${r.name}/scale`),
    });
  }
  return kinds;
}

/**
 * A Scale's `status.selector` ("app=pg,role=primary") as a NetworkPolicy podSelector; undefined
 * when it uses set-based terms (`in`, `notin`, `!`), which a matchLabels cannot say. Pure.
 */
export function selectorFromString(
  selector: string | undefined,
): { matchLabels: Record<string, string> } | undefined {
  if (!selector) return undefined;
  const matchLabels: Record<string, string> = {};
  for (const term of selector.split(",")) {
    const match = /^\s*([^=!\s]+)\s*==?\s*([^=!\s]*)\s*$/.exec(term);
    if (!match) return undefined;
    matchLabels[match[1] as string] = match[2] as string;
  }
  return { matchLabels };
}
