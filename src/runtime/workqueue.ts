import { ExponentialRateLimiter } from "./rate-limiter.js";

/** What a queue reports for metrics. */
export interface WorkQueueObserver {
  /** Queue depth after every change. */
  depth?(depth: number): void;
  /** Time a key waited in the queue before a worker took it. */
  latency?(ms: number): void;
  /** Time a worker spent on a key. */
  workDuration?(ms: number): void;
  /** A key was re-added because it failed. */
  retry?(key: string): void;
}

export interface WorkQueueOptions {
  rateLimiter?: ExponentialRateLimiter;
  observer?: WorkQueueObserver;
  now?: () => number;
}

/**
 * A work queue of string keys with the guarantees of client-go's: a key queued twice is one
 * item; a key is never handed to two workers at once (re-added while processing, it is handed
 * out again after `done`); failed keys come back after a per-key exponential backoff; timed
 * work comes back after `addAfter`, the earliest deadline of a key winning.
 */
export class WorkQueue {
  private readonly queue: string[] = [];
  /** Keys waiting to be processed (in `queue`, or re-added while processing). */
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly delayed = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly enqueuedAt = new Map<string, number>();
  private readonly startedAt = new Map<string, number>();
  private getters: ((key: string | undefined) => void)[] = [];
  private idleWaiters: (() => void)[] = [];
  private shuttingDown = false;
  readonly rateLimiter: ExponentialRateLimiter;
  private readonly now: () => number;

  constructor(private readonly options: WorkQueueOptions = {}) {
    this.rateLimiter = options.rateLimiter ?? new ExponentialRateLimiter();
    this.now = options.now ?? Date.now;
  }

  /** Keys waiting to be handed out (not counting ones being processed or delayed). */
  get depth(): number {
    return this.queue.length;
  }

  get processingCount(): number {
    return this.processing.size;
  }

  get delayedCount(): number {
    return this.delayed.size;
  }

  get isShuttingDown(): boolean {
    return this.shuttingDown;
  }

  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.dirty.add(key);
    if (!this.enqueuedAt.has(key)) this.enqueuedAt.set(key, this.now());
    if (this.processing.has(key)) return;
    this.push(key);
  }

  /** Adds `key` after `ms`; if it is already waiting for an earlier time, that one stands. */
  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    if (ms <= 0) {
      this.add(key);
      return;
    }
    const at = this.now() + ms;
    const existing = this.delayed.get(key);
    if (existing && existing.at <= at) return;
    if (existing) clearTimeout(existing.timer);
    const timer = setTimeout(() => {
      this.delayed.delete(key);
      this.add(key);
    }, ms);
    timer.unref?.();
    this.delayed.set(key, { at, timer });
  }

  /**
   * Adds `key` after its next backoff delay and counts one more failure; returns the delay. A
   * remote that asked for a longer wait (`atLeastMs`, a Retry-After) is not retried sooner.
   */
  addRateLimited(key: string, atLeastMs?: number): number {
    if (this.shuttingDown) return 0;
    this.options.observer?.retry?.(key);
    const delay = Math.max(this.rateLimiter.when(key), atLeastMs ?? 0);
    this.addAfter(key, delay);
    return delay;
  }

  /** Resets the failure count of `key` (call on success). */
  forget(key: string): void {
    this.rateLimiter.forget(key);
  }

  numRequeues(key: string): number {
    return this.rateLimiter.numFailures(key);
  }

  /** The next key, waiting if none; `undefined` once the queue is shut down. */
  get(): Promise<string | undefined> {
    if (this.shuttingDown) return Promise.resolve(undefined);
    const key = this.queue.shift();
    if (key !== undefined) return Promise.resolve(this.take(key));
    return new Promise((resolve) => this.getters.push(resolve));
  }

  /** Marks `key` finished; if it was re-added meanwhile it is queued again. */
  done(key: string): void {
    if (!this.processing.delete(key)) return;
    const started = this.startedAt.get(key);
    this.startedAt.delete(key);
    if (started !== undefined) this.options.observer?.workDuration?.(this.now() - started);
    if (this.dirty.has(key) && !this.shuttingDown) this.push(key);
    if (this.processing.size === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const w of waiters) w();
    }
  }

  /**
   * Stops handing out keys: queued and delayed keys are dropped, waiting `get` calls resolve to
   * `undefined`, and adds are ignored. Keys being processed may still call `done`.
   */
  shutDown(): void {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    for (const d of this.delayed.values()) clearTimeout(d.timer);
    this.delayed.clear();
    this.queue.length = 0;
    this.dirty.clear();
    this.enqueuedAt.clear();
    const getters = this.getters;
    this.getters = [];
    for (const g of getters) g(undefined);
    this.options.observer?.depth?.(0);
  }

  /** Shuts down and resolves once every key being processed is `done`. */
  async shutDownWithDrain(): Promise<void> {
    this.shutDown();
    if (this.processing.size === 0) return;
    await new Promise<void>((resolve) => this.idleWaiters.push(resolve));
  }

  /**
   * Runs `concurrency` workers that take keys and call `handler`, until shut down. The handler
   * owns retries (add/addAfter/addRateLimited/forget); `done` is called for it. Resolves when
   * every worker has exited.
   */
  async run(concurrency: number, handler: (key: string) => Promise<void>): Promise<void> {
    const worker = async () => {
      for (;;) {
        const key = await this.get();
        if (key === undefined) return;
        try {
          await handler(key);
        } catch {
          // handlers report their own failures; a throw here must not kill the worker.
        } finally {
          this.done(key);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, concurrency) }, worker));
  }

  private push(key: string): void {
    const getter = this.getters.shift();
    if (getter) {
      getter(this.take(key));
      return;
    }
    this.queue.push(key);
    this.options.observer?.depth?.(this.queue.length);
  }

  private take(key: string): string {
    this.processing.add(key);
    this.dirty.delete(key);
    const queued = this.enqueuedAt.get(key);
    this.enqueuedAt.delete(key);
    const now = this.now();
    if (queued !== undefined) this.options.observer?.latency?.(now - queued);
    this.startedAt.set(key, now);
    this.options.observer?.depth?.(this.queue.length);
    return key;
  }
}
