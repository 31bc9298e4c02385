import { isTerminal, retryAfterMsOf } from "./errors.js";
import type { Informer } from "./informer.js";
import { type KubeObject, keyOf, keyString, type ObjectKey, parseKey } from "./resource.js";
import { WorkQueue } from "./workqueue.js";

/** What a reconcile asks for next. Nothing: done until something changes. */
export interface Result {
  /** Come back after this long (waiting or timed work); not an error, no backoff. */
  requeueAfterMs?: number;
  /**
   * Run the pass again at once: what it decided was based on an object older than the API
   * server's (its status write met a 409 Conflict), so it observes and plans again.
   */
  requeue?: boolean;
  /**
   * A transient failure the pass already recorded on status (so it did not throw): retried like
   * a thrown error, with per-key exponential backoff and never sooner than `afterMs` (a Retry-After).
   */
  retry?: { error: unknown; afterMs?: number };
}

/**
 * Level-based: reads the world for `key` and converges it, whatever happened before. Throw a
 * `TerminalError` for a failure retrying cannot fix; throw anything else to be retried with
 * per-key exponential backoff.
 */
export interface Reconciler {
  reconcile(key: ObjectKey): Promise<Result | undefined>;
}

export type ReconcileResultLabel = "success" | "error" | "requeue" | "terminal";

export interface ReconcileReport {
  controller: string;
  key: ObjectKey;
  result: ReconcileResultLabel;
  durationMs: number;
  error?: unknown;
  /** For "requeue": the delay asked for; for "error": the backoff applied. */
  retryInMs?: number;
}

export interface ControllerOptions {
  /** Bounded metrics label, e.g. "keyprotector". */
  name: string;
  reconciler: Reconciler;
  /** Keys reconciled in parallel (never one key twice). Default 1. */
  concurrency?: number;
  queue?: WorkQueue;
  /** Told about every reconcile (for `reconcile_total{controller,result}` and durations). */
  observer?: (report: ReconcileReport) => void;
  /** How long `start` waits for informers to sync. Default 60 s. */
  syncTimeoutMs?: number;
}

/** Decides whether an informer event should enqueue anything. */
export type Predicate<T> = (event: { type: "add" | "update" | "delete"; old?: T; obj: T }) => boolean;

/** Maps an object of a watched kind to the keys of the objects to reconcile. */
export type Mapper<T> = (obj: T) => readonly (ObjectKey | string)[];

/**
 * Wires informers, a work queue and a reconciler: informer events become keys, workers take
 * keys and reconcile them, results become requeues. One instance per reconciled kind.
 */
/** How long a controller waits for its informers to fill their caches before it fails to start. */
export const DEFAULT_SYNC_TIMEOUT_MS = 60_000;

export class Controller {
  readonly queue: WorkQueue;
  private readonly informers = new Set<Informer<KubeObject>>();
  private readonly unsubscribers: (() => void)[] = [];
  private running: Promise<void> | undefined;

  constructor(private readonly options: ControllerOptions) {
    this.queue = options.queue ?? new WorkQueue();
  }

  get name(): string {
    return this.options.name;
  }

  /** Reconciles the objects of the primary kind itself on every add, update and delete. */
  watchPrimary<T extends KubeObject>(informer: Informer<T>, predicate?: Predicate<T>): this {
    return this.watch(informer, (obj) => [keyOf(obj)], predicate);
  }

  /**
   * Watches a secondary kind: each event of an object is mapped to the keys of the primary
   * objects that own it or depend on it. For an update both the old and the new object are
   * mapped (a reference that moved wakes both ends).
   */
  watch<T extends KubeObject>(informer: Informer<T>, mapper: Mapper<T>, predicate?: Predicate<T>): this {
    this.informers.add(informer as unknown as Informer<KubeObject>);
    const enqueue = (...objs: T[]) => {
      const keys = new Set(
        objs.flatMap((o) => mapper(o).map((k) => (typeof k === "string" ? k : keyString(k)))),
      );
      for (const k of keys) this.queue.add(k);
    };
    const unsubscribe = informer.addHandler({
      onAdd: (obj) => {
        if (!predicate || predicate({ type: "add", obj })) enqueue(obj);
      },
      onUpdate: (old, obj) => {
        if (predicate && !predicate({ type: "update", old, obj })) return;
        enqueue(old, obj);
      },
      onDelete: (obj) => {
        if (!predicate || predicate({ type: "delete", obj })) enqueue(obj);
      },
    });
    this.unsubscribers.push(unsubscribe);
    return this;
  }

  /** Adds a key by hand (e.g. from a timer or another controller). */
  enqueue(key: ObjectKey | string): void {
    this.queue.add(typeof key === "string" ? key : keyString(key));
  }

  /**
   * Starts the watched informers (a no-op for ones already started), waits for them to sync,
   * then runs the workers. Resolves when the controller is stopped and its workers have finished.
   */
  start(): Promise<void> {
    this.running ??= (async () => {
      for (const inf of this.informers) inf.start();
      await Promise.all(
        [...this.informers].map((inf) =>
          inf.waitForSync(this.options.syncTimeoutMs ?? DEFAULT_SYNC_TIMEOUT_MS),
        ),
      );
      await this.queue.run(this.options.concurrency ?? 1, (key) => this.process(key));
    })();
    return this.running;
  }

  /**
   * Stops taking keys, lets running reconciles finish, and detaches from the informers. The
   * informers keep running (they may be shared); stop them through their owner. A stopped
   * controller cannot be started again.
   */
  async stop(): Promise<void> {
    await this.queue.shutDownWithDrain();
    for (const u of this.unsubscribers.splice(0)) u();
    await this.running?.catch(() => {});
  }

  private async process(keyStr: string): Promise<void> {
    const key = parseKey(keyStr);
    const started = performance.now();
    const report = (r: Omit<ReconcileReport, "controller" | "key" | "durationMs">) =>
      this.options.observer?.({
        controller: this.options.name,
        key,
        durationMs: performance.now() - started,
        ...r,
      });
    try {
      const result = await this.options.reconciler.reconcile(key);
      const after = result?.requeueAfterMs;
      if (after !== undefined && after > 0) this.queue.addAfter(keyStr, after);
      if (result?.retry) {
        const retryInMs = this.queue.addRateLimited(keyStr, result.retry.afterMs);
        report({ result: "error", error: result.retry.error, retryInMs });
        return;
      }
      if (result?.requeue) {
        this.queue.add(keyStr);
        report({ result: "requeue", retryInMs: 0 });
        return;
      }
      this.queue.forget(keyStr);
      if (after !== undefined && after > 0) {
        report({ result: "requeue", retryInMs: after });
      } else {
        report({ result: "success" });
      }
    } catch (error) {
      if (isTerminal(error)) {
        // Not retried: the next change of the object (or of one mapped to it) brings it back.
        this.queue.forget(keyStr);
        report({ result: "terminal", error });
        return;
      }
      const retryInMs = this.queue.addRateLimited(keyStr, retryAfterMsOf(error));
      report({ result: "error", error, retryInMs });
    }
  }
}
