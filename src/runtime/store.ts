import { type KubeObject, keyOf } from "./resource.js";

/** Maps an object to the index values it should be found under (e.g. the KeyProtector it names). */
export type IndexFunc<T extends KubeObject> = (obj: T) => readonly string[];

/**
 * The informer's in-memory cache: objects by "namespace/name", plus secondary indexes. Objects
 * handed out are the cached instances; callers must not mutate them (clone before editing).
 */
export class Store<T extends KubeObject> {
  private readonly items = new Map<string, T>();
  private readonly indexers = new Map<string, IndexFunc<T>>();
  /** index name → index value → keys */
  private readonly indices = new Map<string, Map<string, Set<string>>>();

  addIndex(name: string, fn: IndexFunc<T>): void {
    if (this.indexers.has(name)) throw new Error(`index ${name} already exists`);
    this.indexers.set(name, fn);
    const index = new Map<string, Set<string>>();
    this.indices.set(name, index);
    for (const [key, obj] of this.items) addTo(index, fn(obj), key);
  }

  hasIndex(name: string): boolean {
    return this.indexers.has(name);
  }

  get(namespace: string, name: string): T | undefined {
    return this.items.get(namespace ? `${namespace}/${name}` : name);
  }

  getByKey(key: string): T | undefined {
    return this.items.get(key);
  }

  list(namespace?: string): T[] {
    const all = [...this.items.values()];
    return namespace === undefined ? all : all.filter((o) => o.metadata?.namespace === namespace);
  }

  keys(): string[] {
    return [...this.items.keys()];
  }

  get size(): number {
    return this.items.size;
  }

  /** Objects whose index function returned `value` for the index `name`. */
  byIndex(name: string, value: string): T[] {
    const index = this.indices.get(name);
    if (!index) throw new Error(`no index named ${name}`);
    return [...(index.get(value) ?? [])].flatMap((k) => {
      const o = this.items.get(k);
      return o ? [o] : [];
    });
  }

  /** How many objects the index `name` holds under `value`, without listing them: O(1). */
  countByIndex(name: string, value: string): number {
    const index = this.indices.get(name);
    if (!index) throw new Error(`no index named ${name}`);
    return index.get(value)?.size ?? 0;
  }

  /**
   * Inserts or replaces; returns the previous object. The object's managedFields are dropped
   * first: no reconciler reads them, they are often the larger part of an object, and an update
   * that omits them leaves the server's unchanged.
   */
  upsert(obj: T): T | undefined {
    if (obj.metadata && "managedFields" in obj.metadata) delete obj.metadata.managedFields;
    const key = keyOf(obj);
    const old = this.items.get(key);
    // an update leaves the index entries it keeps as they are: one key string per object, held by
    // the map and every index (a Map or Set keeps the first of equal keys)
    if (old) this.unindex(key, old, obj);
    this.items.set(key, obj);
    for (const [name, fn] of this.indexers) addTo(this.indices.get(name)!, fn(obj), key);
    return old;
  }

  remove(key: string): T | undefined {
    const old = this.items.get(key);
    if (!old) return undefined;
    this.unindex(key, old);
    this.items.delete(key);
    return old;
  }

  /** Takes `key` out of the index values `obj` is under (those `next` is not also under). */
  private unindex(key: string, obj: T, next?: T): void {
    for (const [name, fn] of this.indexers) {
      const index = this.indices.get(name)!;
      const kept = next ? fn(next) : [];
      for (const v of fn(obj)) {
        if (kept.includes(v)) continue;
        const set = index.get(v);
        set?.delete(key);
        if (set?.size === 0) index.delete(v);
      }
    }
  }
}

function addTo(index: Map<string, Set<string>>, values: readonly string[], key: string): void {
  for (const v of values) {
    let set = index.get(v);
    if (!set) {
      set = new Set();
      index.set(v, set);
    }
    set.add(key);
  }
}
