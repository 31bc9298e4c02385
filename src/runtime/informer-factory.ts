import { Informer, type InformerOptions } from "./informer.js";
import type { KubeClient } from "./kube-client.js";
import type { KubeObject, ResourceKind } from "./resource.js";

/**
 * Hands out one shared informer per kind and label selector, so that several controllers watching
 * envelope Secrets, say, share one list+watch and one cache.
 */
export class InformerFactory {
  private readonly informers = new Map<string, Informer<KubeObject>>();

  constructor(
    private readonly client: KubeClient,
    private readonly defaults: Omit<InformerOptions, "client" | "kind"> = {},
  ) {}

  for<T extends KubeObject = KubeObject>(
    kind: ResourceKind,
    options: Omit<InformerOptions, "client" | "kind"> = {},
  ): Informer<T> {
    const id = `${kind.group}/${kind.version}/${kind.plural}?${options.labelSelector ?? ""}`;
    let inf = this.informers.get(id);
    if (!inf) {
      inf = new Informer<KubeObject>({ ...this.defaults, ...options, client: this.client, kind });
      this.informers.set(id, inf);
    }
    return inf as unknown as Informer<T>;
  }

  all(): Informer<KubeObject>[] {
    return [...this.informers.values()];
  }

  start(): void {
    for (const inf of this.informers.values()) inf.start();
  }

  async stop(): Promise<void> {
    await Promise.all([...this.informers.values()].map((inf) => inf.stop()));
  }
}
