import type {
  KubeClient,
  KubeObject,
  ObjectList,
  ResourceKind,
  WatchEvent,
  WatchHandle,
} from "../../../src/runtime/index.js";

/** A scripted KubeClient for informer unit tests: lists answer from `objects`, watches are driven by hand. */
export class FakeWatchClient implements Partial<KubeClient> {
  objects: KubeObject[] = [];
  rv = 100;
  lists = 0;
  listError: unknown;
  watches: { rv?: string; emit: (e: WatchEvent) => void; done: (err: unknown) => void; stopped: boolean }[] =
    [];

  async list<T extends KubeObject>(_k: ResourceKind, namespace?: string): Promise<ObjectList<T>> {
    this.lists++;
    if (this.listError) throw this.listError;
    const items = this.objects.filter((o) => !namespace || o.metadata?.namespace === namespace) as T[];
    return { metadata: { resourceVersion: String(this.rv) }, items };
  }

  async watch(
    _k: ResourceKind,
    _ns: string | undefined,
    options: { resourceVersion?: string },
    onEvent: (e: WatchEvent) => void,
    onDone: (err: unknown) => void,
  ): Promise<WatchHandle> {
    const w = { rv: options.resourceVersion, emit: onEvent, done: onDone, stopped: false };
    this.watches.push(w);
    return {
      stop: () => {
        w.stopped = true;
      },
    };
  }

  get current() {
    return this.watches.at(-1)!;
  }

  asClient(): KubeClient {
    return this as unknown as KubeClient;
  }
}

export function obj(
  name: string,
  rv: string,
  extra: Record<string, unknown> = {},
  namespace = "ns",
): KubeObject {
  return { metadata: { name, namespace, resourceVersion: rv, uid: `uid-${name}` }, ...extra };
}
