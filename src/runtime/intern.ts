/**
 * Shares equal strings between cached objects. JSON.parse gives every object its own copy of each
 * string value; across thousands of objects of one kind most of them repeat (condition types,
 * reasons and messages, key ids, thumbprints, server names, times written in one pass), so an
 * informer's cache keeps one copy of each instead (about 40 % of a database's cached size).
 * The table is bounded: when full it is emptied and starts again, which only loses sharing for
 * the strings seen after that, never correctness.
 */
export class StringTable {
  private readonly table = new Map<string, string>();

  constructor(
    private readonly maxEntries = 50_000,
    /** longer strings (a wrapped key, a certificate) are rarely repeated: kept as they are */
    private readonly maxLength = 256,
  ) {}

  get size(): number {
    return this.table.size;
  }

  intern(s: string): string {
    if (s.length > this.maxLength) return s;
    const known = this.table.get(s);
    if (known !== undefined) return known;
    if (this.table.size >= this.maxEntries) this.table.clear();
    this.table.set(s, s);
    return s;
  }

  /**
   * Replaces, in place, every string value under `value` (objects and arrays, to any depth) by its
   * shared copy. Equal strings are indistinguishable, so this changes nothing a reader can see;
   * object keys are left alone (V8 shares those already).
   */
  internAll<T>(value: T): T {
    if (Object.isFrozen(value)) return value;
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) value[i] = this.internValue(value[i]);
    } else if (value !== null && typeof value === "object") {
      const o = value as Record<string, unknown>;
      for (const k of Object.keys(o)) o[k] = this.internValue(o[k]);
    }
    return value;
  }

  private internValue(v: unknown): unknown {
    return typeof v === "string"
      ? this.intern(v)
      : typeof v === "object" && v !== null
        ? this.internAll(v)
        : v;
  }
}

/**
 * An object about to be cached, its repeated strings shared: everything but the metadata that is
 * one object's own (name, uid, resourceVersion, creation time), which would only fill the table.
 */
export function internObject<T extends { metadata?: Record<string, unknown> }>(
  obj: T,
  strings: StringTable,
): T {
  for (const k of Object.keys(obj)) {
    if (k === "metadata") continue;
    const o = obj as Record<string, unknown>;
    const v = o[k];
    o[k] = typeof v === "string" ? strings.intern(v) : strings.internAll(v);
  }
  const meta = obj.metadata;
  if (meta && !Object.isFrozen(meta))
    for (const k of ["namespace", "labels", "annotations", "finalizers", "ownerReferences"]) {
      const v = meta[k];
      if (v !== undefined) meta[k] = typeof v === "string" ? strings.intern(v) : strings.internAll(v);
    }
  return obj;
}
