import { type BackoffPolicy, backoffDelay, sleep } from "./backoff.js";
import { ApiError, isGone } from "./errors.js";
import { internObject, StringTable } from "./intern.js";
import type { KubeClient, WatchEvent, WatchHandle } from "./kube-client.js";
import { apiVersionOf, type KubeObject, keyOf, type ResourceKind } from "./resource.js";
import { type IndexFunc, Store } from "./store.js";

export interface EventHandler<T extends KubeObject> {
  onAdd?(obj: T): void;
  onUpdate?(oldObj: T, newObj: T): void;
  /** Called with the last state the cache knew. */
  onDelete?(obj: T): void;
}

/** What an informer reports about its own health (for logs and metrics). */
export type InformerSignal =
  | { type: "listed"; namespace?: string; count: number }
  | {
      type: "watch-ended";
      namespace?: string;
      reason: "closed" | "silent" | "gone" | "interrupted" | "error";
    }
  | { type: "error"; namespace?: string; error: unknown; retryInMs: number }
  | { type: "handler-error"; error: unknown };

export interface InformerOptions<T extends KubeObject = KubeObject> {
  client: KubeClient;
  kind: ResourceKind;
  /** Watch only these namespaces (one list+watch each). Default: all namespaces. */
  namespaces?: readonly string[];
  labelSelector?: string;
  fieldSelector?: string;
  /** Relist when the watch has delivered nothing (not even a bookmark) for this long. Default 10 min. */
  silenceTimeoutMs?: number;
  /** Server-side watch timeout, randomised between this and twice it. Default 300 s. */
  watchTimeoutSeconds?: number;
  /** Backoff between failed list/watch attempts. Default 500 ms doubling to 30 s, 20 % jitter. */
  backoff?: BackoffPolicy;
  /** Page size of a relist. Default 500. */
  pageSize?: number;
  observer?: (signal: InformerSignal) => void;
  /**
   * What the cache keeps of each object (controller-runtime's cache transforms): applied to every
   * listed, watched and written-through object, after the fields no reconciler reads are dropped
   * (`metadata.managedFields`, the last-applied-configuration annotation). Must return a new
   * object rather than change the one it is given (a written-through object is still the writer's).
   * `share` gives a string the cache's shared copy (intern.ts), for what the transform builds that
   * the cache cannot share afterwards (a frozen value).
   */
  transform?: (obj: T, share: (s: string) => string) => T;
}

const LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration";

/** An object as the cache keeps it: without managedFields and the last-applied annotation, then `transform`. */
export function cacheForm<T extends KubeObject>(
  obj: T,
  transform?: (obj: T, share: (s: string) => string) => T,
  strings?: StringTable,
): T {
  let out = obj;
  const meta = obj.metadata;
  if (meta && ("managedFields" in meta || (meta.annotations && LAST_APPLIED in meta.annotations))) {
    const { managedFields: _m, ...rest } = meta;
    if (rest.annotations && LAST_APPLIED in rest.annotations) {
      const { [LAST_APPLIED]: _a, ...annotations } = rest.annotations;
      rest.annotations = annotations;
    }
    out = { ...obj, metadata: rest };
  }
  out = transform ? transform(out, strings ? (s) => strings.intern(s) : unshared) : out;
  return strings ? internObject(out, strings) : out;
}

const unshared = (s: string) => s;

type EndReason = "closed" | "silent" | "gone" | "interrupted" | "error" | "stopped";

/** How many deleted objects' uids an informer remembers (`Informer.deleted`). */
const MAX_TOMBSTONES = 4_096;

/**
 * Whether resourceVersion `a` is later than `b`. An API server on etcd gives its revision, an
 * integer that only grows; anything else counts as newer when it differs.
 */
function isNewer(a: string | undefined, b: string | undefined): boolean {
  if (a === b) return false;
  if (a && b && /^[0-9]+$/.test(a) && /^[0-9]+$/.test(b)) return BigInt(a) > BigInt(b);
  return true;
}

/** A watch shorter than this with no event counts as a failure (to back off, not spin). */
const MIN_HEALTHY_WATCH_MS = 1_000;

/**
 * A shared informer for one kind: lists, then watches from the list's resourceVersion, keeping
 * a cache and calling handlers. A watch that ends is resumed; one that errors is retried with
 * capped exponential backoff; a 410 Gone or a watch silent for too long causes a relist, which
 * reconciles the cache (and calls handlers) for whatever changed meanwhile.
 */
export class Informer<T extends KubeObject = KubeObject> {
  readonly store = new Store<T>();
  /** equal strings of cached objects shared (intern.ts) */
  private readonly strings = new StringTable();
  private readonly handlers = new Set<EventHandler<T>>();
  private readonly scopes: (string | undefined)[];
  private readonly synced = new Set<string | undefined>();
  private readonly watches = new Map<
    string | undefined,
    { handle?: WatchHandle; end: (r: EndReason) => void }
  >();
  private syncWaiters: (() => void)[] = [];
  private abort: AbortController | undefined;
  private loops: Promise<void>[] = [];

  constructor(readonly options: InformerOptions<T>) {
    this.scopes = options.namespaces?.length ? [...new Set(options.namespaces)] : [undefined];
  }

  get kind(): ResourceKind {
    return this.options.kind;
  }

  addIndex(name: string, fn: IndexFunc<T>): this {
    this.store.addIndex(name, fn);
    return this;
  }

  /** Registers handlers; objects already cached are replayed to them as adds. Returns an unsubscribe. */
  addHandler(handler: EventHandler<T>): () => void {
    this.handlers.add(handler);
    for (const obj of this.store.list()) this.call(() => handler.onAdd?.(obj));
    return () => this.handlers.delete(handler);
  }

  get(namespace: string, name: string): T | undefined {
    return this.store.get(namespace, name);
  }

  list(namespace?: string): T[] {
    return this.store.list(namespace);
  }

  byIndex(index: string, value: string): T[] {
    return this.store.byIndex(index, value);
  }

  start(): void {
    if (this.abort) return;
    this.abort = new AbortController();
    const signal = this.abort.signal;
    this.loops = this.scopes.map((ns) => this.run(ns, signal));
  }

  async stop(): Promise<void> {
    if (!this.abort) return;
    this.abort.abort();
    for (const w of this.watches.values()) w.end("stopped");
    await Promise.all(this.loops);
    this.abort = undefined;
    this.loops = [];
    this.synced.clear();
  }

  /** True once every namespace in scope has been listed at least once. */
  hasSynced(): boolean {
    return this.scopes.every((s) => this.synced.has(s));
  }

  /**
   * True while every namespace in scope is listed and its watch stream is open: the cache then
   * lags the API server only by the watch's delivery.
   */
  isWatching(): boolean {
    return this.hasSynced() && this.scopes.every((s) => this.watches.get(s)?.handle !== undefined);
  }

  waitForSync(timeoutMs = 60_000): Promise<void> {
    if (this.hasSynced()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.syncWaiters = this.syncWaiters.filter((w) => w !== done);
        reject(new Error(`informer for ${this.kind.plural} did not sync within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      this.syncWaiters.push(done);
    });
  }

  /** Cuts the current watches as a dropped connection would; they resume from the last resourceVersion. */
  interruptWatch(): void {
    for (const w of this.watches.values()) w.end("interrupted");
  }

  private async run(namespace: string | undefined, signal: AbortSignal): Promise<void> {
    const policy = this.options.backoff ?? { baseMs: 500, maxMs: 30_000, jitter: 0.2 };
    let attempt = 0;
    let rv: string | undefined;
    while (!signal.aborted) {
      try {
        if (rv === undefined) {
          rv = await this.relist(namespace);
          this.markSynced(namespace);
        }
        const started = Date.now();
        const outcome = await this.watchOnce(namespace, rv, signal);
        rv = outcome.reason === "gone" || outcome.reason === "silent" ? undefined : outcome.rv;
        if (outcome.reason !== "stopped") {
          this.options.observer?.({ type: "watch-ended", ...ns(namespace), reason: outcome.reason });
        }
        if (outcome.error !== undefined) throw outcome.error;
        const healthy = outcome.events > 0 || Date.now() - started >= MIN_HEALTHY_WATCH_MS;
        if (healthy || outcome.reason === "interrupted") {
          attempt = 0;
          continue;
        }
        // a watch expired at once: relist straight away the first time, back off if it keeps happening
        if (outcome.reason === "gone" && attempt === 0) {
          attempt = 1;
          continue;
        }
        await sleep(backoffDelay(policy, attempt++), signal);
      } catch (error) {
        if (signal.aborted) break;
        if (isGone(error)) rv = undefined;
        const retryInMs = backoffDelay(policy, attempt++);
        this.options.observer?.({ type: "error", ...ns(namespace), error, retryInMs });
        await sleep(retryInMs, signal);
      }
    }
  }

  /** Lists every page and makes the cache match it; returns the list's resourceVersion. */
  private async relist(namespace: string | undefined): Promise<string> {
    const fresh = new Map<string, T>();
    let cont: string | undefined;
    let rv = "";
    do {
      const page = await this.options.client.list<T>(this.kind, namespace, {
        limit: this.options.pageSize ?? 500,
        ...(cont ? { continue: cont } : {}),
        ...selectors(this.options),
      });
      for (const item of page.items) {
        // list items omit apiVersion/kind; restore them so handlers see whole objects.
        const obj = { apiVersion: apiVersionOf(this.kind), kind: this.kind.kind, ...item } as T;
        fresh.set(keyOf(obj), this.cacheFormOf(obj));
      }
      cont = page.metadata.continue || undefined;
      rv = page.metadata.resourceVersion ?? rv;
    } while (cont);

    for (const key of this.store.keys()) {
      const old = this.store.getByKey(key)!;
      if (namespace !== undefined && old.metadata?.namespace !== namespace) continue;
      if (!fresh.has(key)) {
        this.remove(key, old);
        this.dispatch((h) => h.onDelete?.(old));
      }
    }
    for (const obj of fresh.values()) this.apply(obj);
    this.options.observer?.({ type: "listed", ...ns(namespace), count: fresh.size });
    return rv;
  }

  private watchOnce(
    namespace: string | undefined,
    fromRv: string,
    signal: AbortSignal,
  ): Promise<{ reason: EndReason; rv: string; events: number; error?: unknown }> {
    return new Promise((resolve) => {
      let rv = fromRv;
      let events = 0;
      let ended = false;
      let silence: NodeJS.Timeout | undefined;
      const silenceMs = this.options.silenceTimeoutMs ?? 600_000;
      const armSilence = () => {
        if (silence) clearTimeout(silence);
        silence = setTimeout(() => end("silent"), silenceMs);
      };
      const entry: { handle?: WatchHandle; end: (r: EndReason) => void } = { end: (r) => end(r) };
      const end = (reason: EndReason, error?: unknown) => {
        if (ended) return;
        ended = true;
        if (silence) clearTimeout(silence);
        entry.handle?.stop();
        if (this.watches.get(namespace) === entry) this.watches.delete(namespace);
        resolve({ reason, rv, events, ...(error !== undefined ? { error } : {}) });
      };
      if (signal.aborted) return end("stopped");
      this.watches.set(namespace, entry);
      armSilence();
      const base = this.options.watchTimeoutSeconds ?? 300;
      const onEvent = (event: WatchEvent) => {
        if (ended) return;
        armSilence();
        if (event.type === "ERROR") {
          const st = event.object as { code?: number; reason?: string; message?: string };
          if (st.code === 410) return end("gone");
          return end(
            "error",
            new ApiError(st.code ?? 500, st.reason ?? "WatchError", st.message ?? "watch error"),
          );
        }
        // an ERROR (410 Gone at once, say) is not a sign of a healthy watch: it does not reset the backoff
        events++;
        const newRv = event.object.metadata?.resourceVersion;
        if (newRv) rv = newRv;
        if (event.type === "BOOKMARK") return;
        const obj = { apiVersion: apiVersionOf(this.kind), kind: this.kind.kind, ...event.object } as T;
        if (event.type === "DELETED") {
          const old = this.remove(keyOf(obj), obj);
          this.dispatch((h) => h.onDelete?.(old ?? obj));
        } else {
          this.apply(this.cacheFormOf(obj), true);
        }
      };
      const onDone = (err: unknown) => {
        if (err && isGone(err)) return end("gone");
        if (err && !isAbort(err)) return end("error", err);
        end("closed");
      };
      this.options.client
        .watch(
          this.kind,
          namespace,
          {
            resourceVersion: fromRv,
            allowWatchBookmarks: true,
            timeoutSeconds: Math.round(base * (1 + Math.random())),
            ...selectors(this.options),
          },
          onEvent,
          onDone,
        )
        .then(
          (handle) => {
            entry.handle = handle;
            if (ended) handle.stop();
          },
          (err) => end("error", err),
        );
    });
  }

  /**
   * What the cache keeps of a listed or watched object. The cache already holds that version when
   * a controller wrote it through (its watch event then brings the same object back), or when a
   * relist finds it unchanged: the cached form is kept rather than made again, so an envelope is
   * decoded once, not twice, and the second copy is never allocated.
   */
  private cacheFormOf(obj: T): T {
    const rv = obj.metadata?.resourceVersion;
    const cached = rv ? this.store.getByKey(keyOf(obj)) : undefined;
    if (cached && cached.metadata?.resourceVersion === rv) return cached;
    return cacheForm(obj, this.options.transform, this.strings);
  }

  /**
   * A watch event is always a change, and is always dispatched: the cache may already hold its
   * resourceVersion because a controller wrote its own status through (`store.upsert`), and the
   * other controllers watching this kind must still hear of it. A relist dispatches only what
   * differs from the cache.
   */
  private apply(obj: T, fromWatch = false): void {
    const key = keyOf(obj);
    // written through but never confirmed by a watch event: the other handlers have not heard of it
    const unheard = this.writtenThrough.delete(key);
    const old = this.store.upsert(obj);
    if (!old) {
      this.dispatch((h) => h.onAdd?.(obj));
    } else if (fromWatch || unheard || old.metadata?.resourceVersion !== obj.metadata?.resourceVersion) {
      this.dispatch((h) => h.onUpdate?.(old, obj));
    }
  }

  /**
   * Puts an object a controller has just written (its status, say) into the cache at once, so
   * its next reconcile reads what it wrote. The watch event of that write is still dispatched to
   * every handler when it comes; if the watch was down and the event is lost, the next relist
   * dispatches the object although the cache already holds its resourceVersion, so nothing that
   * waits on this write misses it.
   */
  writeThrough(obj: T): void {
    const key = keyOf(obj);
    const cached = this.store.getByKey(key);
    // its watch event (or a later one) came first: every handler has heard of it already
    if (cached && !isNewer(obj.metadata?.resourceVersion, cached.metadata?.resourceVersion)) return;
    // the write's response came after the object's deletion: caching it would bring it back
    const uid = obj.metadata?.uid;
    if (!cached && uid !== undefined && this.deleted.get(key) === uid) return;
    this.store.upsert(cacheForm(obj, this.options.transform, this.strings));
    this.writtenThrough.add(key);
  }

  /** Keys written through and not yet seen in a watch event or a relist. */
  private readonly writtenThrough = new Set<string>();

  /**
   * The uid of each object lately deleted, by key. A write's response travels apart from the
   * watch, so it may come after the deletion it preceded; that object, deleted for good, must not
   * be cached again. A recreated object has a new uid. Bounded: a late response comes within
   * seconds, not after thousands of deletions.
   */
  private readonly deleted = new Map<string, string>();

  private remove(key: string, obj: T): T | undefined {
    this.writtenThrough.delete(key);
    const uid = obj.metadata?.uid;
    if (uid !== undefined) {
      this.deleted.delete(key);
      this.deleted.set(key, uid);
      if (this.deleted.size > MAX_TOMBSTONES) this.deleted.delete(this.deleted.keys().next().value!);
    }
    return this.store.remove(key);
  }

  private markSynced(namespace: string | undefined): void {
    this.synced.add(namespace);
    if (!this.hasSynced()) return;
    const waiters = this.syncWaiters;
    this.syncWaiters = [];
    for (const w of waiters) w();
  }

  private dispatch(fn: (h: EventHandler<T>) => void): void {
    for (const h of this.handlers) this.call(() => fn(h));
  }

  private call(fn: () => void): void {
    try {
      fn();
    } catch (error) {
      this.options.observer?.({ type: "handler-error", error });
    }
  }
}

function ns(namespace: string | undefined): { namespace?: string } {
  return namespace === undefined ? {} : { namespace };
}

function selectors(o: { labelSelector?: string; fieldSelector?: string }): {
  labelSelector?: string;
  fieldSelector?: string;
} {
  return {
    ...(o.labelSelector ? { labelSelector: o.labelSelector } : {}),
    ...(o.fieldSelector ? { fieldSelector: o.fieldSelector } : {}),
  };
}

function isAbort(err: unknown): boolean {
  return typeof err === "object" && err !== null && (err as { name?: string }).name === "AbortError";
}
