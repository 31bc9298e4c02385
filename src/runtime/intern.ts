/**
 * Shares equal strings, and equal flat values, between cached objects. JSON.parse gives every
 * object its own copy of each string value; across thousands of objects of one kind most of them
 * repeat (condition types, reasons and messages, key ids, thumbprints, server names, times written
 * in one pass), so an informer's cache keeps one copy of each instead (about 40 % of a database's
 * cached size).
 * The table is bounded: when full it is emptied and starts again, which only loses sharing for
 * the strings seen after that, never correctness.
 */
export class StringTable {
  private readonly table = new Map<string, string>();
  private readonly flat = new Map<string, object>();

  constructor(
    private readonly maxEntries = 50_000,
    /** longer strings (a wrapped key, a certificate) are rarely repeated: kept as they are */
    private readonly maxLength = 256,
    /** flat values remembered for sharing (bounded like the strings) */
    private readonly maxFlat = 10_000,
  ) {}

  get size(): number {
    return this.table.size;
  }

  /** How many flat values are remembered for sharing. */
  get flatSize(): number {
    return this.flat.size;
  }

  /**
   * A flat value (a plain object or an array of strings, numbers and booleans) equal to one seen
   * before comes back as that one; a new one is remembered. Either way it is frozen, as it may be
   * shared: thousands of databases carry equal conditions, finalizer lists and protectors, and one
   * object serves them all. Anything else comes back as it is.
   */
  share<T>(value: T): T {
    if (value === null || typeof value !== "object" || Object.isFrozen(value)) return value;
    const signature = flatSignature(value, this.maxLength);
    if (signature === undefined) return value;
    const known = this.flat.get(signature);
    if (known !== undefined) return known as T;
    if (this.flat.size >= this.maxFlat) this.flat.clear();
    this.internAll(value);
    this.flat.set(signature, Object.freeze(value));
    return value;
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

/** What identifies a flat value by content: undefined when it is not flat (or holds a long string). */
function flatSignature(value: object, maxLength: number): string | undefined {
  const array = Array.isArray(value);
  if (!array && Object.getPrototypeOf(value) !== Object.prototype) return undefined;
  for (const v of array ? value : Object.values(value)) {
    const t = typeof v;
    if (t === "string" ? (v as string).length > maxLength : t !== "number" && t !== "boolean")
      return undefined;
  }
  return (array ? "a" : "o") + JSON.stringify(value);
}

/**
 * An object about to be cached, its repeated strings shared: everything but the metadata that is
 * one object's own (name, uid, resourceVersion), which would only fill the table.
 * The flat values that repeat across objects of a kind are shared whole (StringTable.share): the
 * finalizers, each condition, and the flat values directly under spec and status (a reference, a
 * protector). Lists of one object's own (a key history) are left alone: sharing them would only
 * fill the table.
 */
export function internObject<T extends { metadata?: Record<string, unknown> }>(
  obj: T,
  strings: StringTable,
): T {
  const o = obj as Record<string, unknown>;
  for (const k of Object.keys(obj)) {
    if (k === "metadata") continue;
    const v = o[k];
    o[k] = typeof v === "string" ? strings.intern(v) : strings.internAll(v);
  }
  for (const part of [o.spec, o.status]) {
    if (part === null || typeof part !== "object" || Object.isFrozen(part) || Array.isArray(part)) continue;
    const p = part as Record<string, unknown>;
    for (const k of Object.keys(p)) {
      const v = p[k];
      if (k === "conditions" && Array.isArray(v) && !Object.isFrozen(v))
        for (let i = 0; i < v.length; i++) v[i] = strings.share(v[i]);
      else if (v !== null && typeof v === "object" && !Array.isArray(v)) p[k] = strings.share(v);
    }
  }
  const meta = obj.metadata;
  if (meta && !Object.isFrozen(meta)) {
    // creation times are whole seconds: the objects made in one second share one
    for (const k of [
      "namespace",
      "creationTimestamp",
      "labels",
      "annotations",
      "finalizers",
      "ownerReferences",
    ]) {
      const v = meta[k];
      if (v !== undefined) meta[k] = typeof v === "string" ? strings.intern(v) : strings.internAll(v);
    }
    if (Array.isArray(meta.finalizers)) meta.finalizers = strings.share(meta.finalizers);
  }
  return obj;
}
