import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { ExponentialRateLimiter } from "../../../src/runtime/rate-limiter.js";
import { WorkQueue } from "../../../src/runtime/workqueue.js";

describe("WorkQueue", () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it("de-duplicates a key added while it is already queued", async () => {
    const q = new WorkQueue();
    q.add("ns/a");
    q.add("ns/a");
    q.add("ns/b");
    expect(q.depth).toBe(2);
    expect(await q.get()).toBe("ns/a");
    expect(await q.get()).toBe("ns/b");
    expect(q.depth).toBe(0);
  });

  it("never hands one key to two workers; a key re-added while processing comes back after done", async () => {
    const q = new WorkQueue();
    q.add("k");
    const first = await q.get();
    q.add("k");
    q.add("k");
    expect(q.depth).toBe(0);
    let second: string | undefined;
    void q.get().then((k) => {
      second = k;
    });
    await Promise.resolve();
    expect(second).toBeUndefined();
    q.done(first!);
    await Promise.resolve();
    expect(second).toBe("k");
  });

  it("runs workers concurrently across keys but serially per key", async () => {
    vi.useRealTimers();
    const q = new WorkQueue();
    const active = new Set<string>();
    let maxActive = 0;
    let overlapped = false;
    const calls: string[] = [];
    const running = q.run(3, async (key) => {
      if (active.has(key)) overlapped = true;
      active.add(key);
      maxActive = Math.max(maxActive, active.size);
      calls.push(key);
      await new Promise((r) => setTimeout(r, 20));
      if (key === "a" && calls.filter((c) => c === "a").length === 1) q.add("a");
      active.delete(key);
    });
    for (const k of ["a", "b", "c", "d", "a", "b"]) q.add(k);
    // a and b are re-added while being processed: each runs once more, after; the handler's own
    // re-add of a lands while a is already dirty, so it is the same item.
    await vi.waitFor(() => expect(calls).toHaveLength(6));
    await new Promise((r) => setTimeout(r, 50));
    await q.shutDownWithDrain();
    await running;
    expect(calls.filter((c) => c === "a")).toHaveLength(2);
    expect(calls.slice(0, 3).sort()).toEqual(["a", "b", "c"]);
    expect(overlapped).toBe(false);
    expect(maxActive).toBe(3);
  });

  it("backs off failures exponentially per key, capped, and resets on success", () => {
    const rl = new ExponentialRateLimiter({ baseMs: 1_000, maxMs: 8_000 });
    expect([1, 2, 3, 4, 5, 6].map(() => rl.when("k"))).toEqual([1_000, 2_000, 4_000, 8_000, 8_000, 8_000]);
    expect(rl.when("other")).toBe(1_000);
    rl.forget("k");
    expect(rl.numFailures("k")).toBe(0);
    expect(rl.when("k")).toBe(1_000);
  });

  it("re-adds a failed key only after its backoff delay", async () => {
    const q = new WorkQueue({ rateLimiter: new ExponentialRateLimiter({ baseMs: 1_000, maxMs: 300_000 }) });
    q.addRateLimited("k");
    q.addRateLimited("k"); // second failure: 2 s, but the 1 s deadline is earlier and wins
    expect(q.numRequeues("k")).toBe(2);
    vi.advanceTimersByTime(999);
    expect(q.depth).toBe(0);
    vi.advanceTimersByTime(1);
    expect(q.depth).toBe(1);
    const k = await q.get();
    q.done(k!);
    q.addRateLimited("k"); // third failure: 4 s
    vi.advanceTimersByTime(3_999);
    expect(q.depth).toBe(0);
    vi.advanceTimersByTime(1);
    expect(q.depth).toBe(1);
    q.forget("k");
    expect(q.numRequeues("k")).toBe(0);
  });

  it("a failed key is not retried sooner than the remote asked (Retry-After), nor sooner than its backoff", () => {
    const q = new WorkQueue({ rateLimiter: new ExponentialRateLimiter({ baseMs: 1_000, maxMs: 300_000 }) });
    expect(q.addRateLimited("k", 5_000)).toBe(5_000);
    expect(q.addRateLimited("j", 10)).toBe(1_000);
    vi.advanceTimersByTime(4_999);
    expect(q.depth).toBe(1); // j, after its backoff
    vi.advanceTimersByTime(1);
    expect(q.depth).toBe(2);
  });

  it("addAfter: the earliest deadline of a key wins", () => {
    const q = new WorkQueue();
    q.addAfter("k", 10_000);
    q.addAfter("k", 5_000);
    q.addAfter("k", 20_000);
    expect(q.delayedCount).toBe(1);
    vi.advanceTimersByTime(4_999);
    expect(q.depth).toBe(0);
    vi.advanceTimersByTime(1);
    expect(q.depth).toBe(1);
    vi.advanceTimersByTime(30_000);
    expect(q.depth).toBe(1);
    expect(q.delayedCount).toBe(0);
  });

  it("addAfter with no delay adds at once", () => {
    const q = new WorkQueue();
    q.addAfter("k", 0);
    expect(q.depth).toBe(1);
  });

  it("reports depth, latency and work duration", async () => {
    const depths: number[] = [];
    const latencies: number[] = [];
    const durations: number[] = [];
    const q = new WorkQueue({
      observer: {
        depth: (d) => depths.push(d),
        latency: (ms) => latencies.push(ms),
        workDuration: (ms) => durations.push(ms),
      },
    });
    q.add("a");
    q.add("b");
    vi.advanceTimersByTime(250);
    const a = await q.get();
    vi.advanceTimersByTime(100);
    q.done(a!);
    expect(depths).toEqual([1, 2, 1]);
    expect(latencies).toEqual([250]);
    expect(durations).toEqual([100]);
  });

  it("shuts down: waiting gets resolve undefined, adds are ignored, delayed keys are dropped", async () => {
    const q = new WorkQueue();
    const waiting = q.get();
    q.addAfter("later", 1_000);
    q.shutDown();
    expect(await waiting).toBeUndefined();
    q.add("x");
    expect(q.depth).toBe(0);
    vi.advanceTimersByTime(5_000);
    expect(q.depth).toBe(0);
    expect(await q.get()).toBeUndefined();
  });

  it("shutDownWithDrain waits for keys being processed", async () => {
    const q = new WorkQueue();
    q.add("k");
    const k = await q.get();
    let drained = false;
    const drain = q.shutDownWithDrain().then(() => {
      drained = true;
    });
    await Promise.resolve();
    expect(drained).toBe(false);
    q.done(k!);
    await drain;
    expect(drained).toBe(true);
  });
});
