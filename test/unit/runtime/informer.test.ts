import { describe, expect, it } from "vitest";
import { ApiError, Informer, type InformerSignal, type ResourceKind } from "../../../src/runtime/index.js";
import { FakeWatchClient, obj } from "./fake-client.js";

const kind: ResourceKind = { group: "x.dev", version: "v1", plural: "things", kind: "Thing" };
const fastBackoff = { baseMs: 10, maxMs: 40 };

function setup(extra: { silenceTimeoutMs?: number; namespaces?: string[] } = {}) {
  const fake = new FakeWatchClient();
  const signals: InformerSignal[] = [];
  const inf = new Informer({
    client: fake.asClient(),
    kind,
    backoff: fastBackoff,
    observer: (s) => signals.push(s),
    ...extra,
  });
  const log: string[] = [];
  inf.addHandler({
    onAdd: (o) => log.push(`add ${o.metadata?.name}`),
    onUpdate: (_, o) => log.push(`update ${o.metadata?.name}@${o.metadata?.resourceVersion}`),
    onDelete: (o) => log.push(`delete ${o.metadata?.name}`),
  });
  return { fake, inf, log, signals };
}

describe("Informer (scripted API)", () => {
  it("relists on a 410 Gone watch event and reconciles the cache: adds, updates and deletes what changed", async () => {
    const { fake, inf, log } = setup();
    fake.objects = [obj("a", "1"), obj("b", "2")];
    inf.start();
    await inf.waitForSync(1_000);
    expect(log).toEqual(["add a", "add b"]);
    await expect.poll(() => fake.watches.length).toBe(1);
    expect(fake.current.rv).toBe("100");

    // Meanwhile: a changed, b deleted, c added; then the watch is told its resourceVersion is too old.
    fake.objects = [obj("a", "5"), obj("c", "6")];
    fake.rv = 200;
    fake.current.emit({ type: "ERROR", object: { kind: "Status", code: 410, reason: "Expired" } as never });
    await expect.poll(() => fake.lists).toBe(2);
    await expect.poll(() => fake.watches.length).toBe(2);
    expect(fake.current.rv).toBe("200");
    expect(log.slice(2).sort()).toEqual(["add c", "delete b", "update a@5"]);
    expect(
      inf
        .list()
        .map((o) => o.metadata?.name)
        .sort(),
    ).toEqual(["a", "c"]);
    await inf.stop();
  });

  it("resumes a watch that ends from the last resourceVersion seen, without relisting", async () => {
    const { fake, inf, log } = setup();
    inf.start();
    await inf.waitForSync(1_000);
    await expect.poll(() => fake.watches.length).toBe(1);
    fake.current.emit({ type: "ADDED", object: obj("a", "101") });
    fake.current.emit({ type: "BOOKMARK", object: { metadata: { resourceVersion: "150" } } });
    fake.current.done(null);
    await expect.poll(() => fake.watches.length).toBe(2);
    expect(fake.current.rv).toBe("150");
    expect(fake.lists).toBe(1);
    fake.current.emit({ type: "DELETED", object: obj("a", "151") });
    expect(log).toEqual(["add a", "delete a"]);
    await inf.stop();
  });

  it("dispatches a watch event even when a controller already wrote that resourceVersion into the cache", async () => {
    const { fake, inf, log } = setup();
    fake.objects = [obj("a", "1")];
    inf.start();
    await inf.waitForSync(1_000);
    await expect.poll(() => fake.watches.length).toBe(1);
    // a reconciler writes status and puts the answer in the cache before the watch delivers it
    inf.store.upsert(obj("a", "7"));
    fake.current.emit({ type: "MODIFIED", object: obj("a", "7") });
    expect(log).toEqual(["add a", "update a@7"]);
    await inf.stop();
  });

  it("a watch event or a relist of a version the cache holds keeps the cached object: transformed once, still dispatched", async () => {
    const fake = new FakeWatchClient();
    let transforms = 0;
    const inf = new Informer({
      client: fake.asClient(),
      kind,
      backoff: fastBackoff,
      transform: (o) => {
        transforms++;
        return { ...o };
      },
    });
    const log: string[] = [];
    inf.addHandler({
      onUpdate: (_, o) => log.push(`update ${o.metadata?.name}@${o.metadata?.resourceVersion}`),
    });
    fake.objects = [obj("a", "1")];
    inf.start();
    await inf.waitForSync(1_000);
    await expect.poll(() => fake.watches.length).toBe(1);
    inf.writeThrough(obj("a", "3"));
    const written = inf.get("ns", "a");
    expect(transforms).toBe(2);
    fake.current.emit({ type: "MODIFIED", object: obj("a", "3") });
    expect(log).toEqual(["update a@3"]);
    expect(inf.get("ns", "a")).toBe(written);
    fake.objects = [obj("a", "3")];
    fake.current.emit({ type: "ERROR", object: { kind: "Status", code: 410, reason: "Expired" } as never });
    await expect.poll(() => fake.lists).toBe(2);
    await expect.poll(() => fake.watches.length).toBe(2);
    expect(inf.get("ns", "a")).toBe(written);
    expect(transforms).toBe(2);
    fake.current.emit({ type: "MODIFIED", object: obj("a", "4") });
    expect(transforms).toBe(3);
    expect(log).toEqual(["update a@3", "update a@4"]);
    await inf.stop();
  });

  it("relists at once after one 410 Gone, but backs off when every new watch is refused with 410 at once", async () => {
    const fake = new FakeWatchClient();
    const inf = new Informer({ client: fake.asClient(), kind, backoff: { baseMs: 400, maxMs: 400 } });
    fake.objects = [obj("a", "1")];
    inf.start();
    await inf.waitForSync(1_000);
    const gone = () =>
      fake.current.emit({ type: "ERROR", object: { kind: "Status", code: 410, reason: "Expired" } as never });
    const relistAfterGone = async (n: number) => {
      await expect.poll(() => fake.watches.length).toBe(n);
      const at = Date.now();
      gone();
      await expect.poll(() => fake.lists, { interval: 5, timeout: 2_000 }).toBe(n + 1);
      return Date.now() - at;
    };
    const first = await relistAfterGone(1);
    const second = await relistAfterGone(2);
    expect(first).toBeLessThan(300);
    expect(second).toBeGreaterThanOrEqual(350);
    await inf.stop();
  });

  it("a write a controller put through the cache whose watch event was lost is dispatched by the next relist", async () => {
    const { fake, inf, log } = setup();
    fake.objects = [obj("a", "1"), obj("b", "2")];
    inf.start();
    await inf.waitForSync(1_000);
    await expect.poll(() => fake.watches.length).toBe(1);
    // the controller writes a's status (rv 3) and b's (rv 4) through; the watch is cut before their events arrive
    inf.writeThrough(obj("a", "3"));
    inf.writeThrough(obj("b", "4"));
    fake.current.emit({ type: "MODIFIED", object: obj("b", "4") }); // b's event did come
    expect(log.slice(2)).toEqual(["update b@4"]);
    fake.objects = [obj("a", "3"), obj("b", "4")];
    fake.current.emit({ type: "ERROR", object: { kind: "Status", code: 410, reason: "Expired" } as never });
    await expect.poll(() => fake.lists).toBe(2);
    await expect.poll(() => fake.watches.length).toBe(2);
    // the relist finds a at the resourceVersion the cache holds, and still tells the handlers, once; b is not repeated
    expect(log.slice(2)).toEqual(["update b@4", "update a@3"]);
    await inf.stop();
  });

  it("retries a failing list with capped exponential backoff and syncs once it succeeds", async () => {
    const { fake, inf, signals } = setup();
    fake.listError = new ApiError(500, "InternalError", "etcd down");
    inf.start();
    await expect.poll(() => signals.filter((s) => s.type === "error").length).toBeGreaterThanOrEqual(4);
    const delays = signals.flatMap((s) => (s.type === "error" ? [s.retryInMs] : []));
    expect(delays.slice(0, 4)).toEqual([10, 20, 40, 40]);
    expect(inf.hasSynced()).toBe(false);
    fake.listError = undefined;
    await inf.waitForSync(1_000);
    await inf.stop();
  });

  it("relists when the watch is silent for longer than the silence timeout", async () => {
    const { fake, inf, signals } = setup({ silenceTimeoutMs: 50 });
    inf.start();
    await inf.waitForSync(1_000);
    await expect.poll(() => fake.lists).toBeGreaterThanOrEqual(2);
    expect(signals).toContainEqual({ type: "watch-ended", reason: "silent" });
    expect(fake.watches[0]?.stopped).toBe(true);
    await inf.stop();
  });

  it("scoped to namespaces, syncs only once every namespace is listed, and replays the cache to late handlers", async () => {
    const { fake, inf } = setup({ namespaces: ["one", "two"] });
    fake.objects = [obj("a", "1", {}, "one"), obj("b", "1", {}, "two"), obj("c", "1", {}, "three")];
    inf.start();
    await inf.waitForSync(1_000);
    expect(
      inf
        .list()
        .map((o) => o.metadata?.name)
        .sort(),
    ).toEqual(["a", "b"]);
    const late: string[] = [];
    inf.addHandler({ onAdd: (o) => late.push(o.metadata?.name ?? "") });
    expect(late.sort()).toEqual(["a", "b"]);
    await inf.stop();
  });

  it("keeps going when a handler throws", async () => {
    const { fake, inf, signals } = setup();
    inf.addHandler({
      onAdd: () => {
        throw new Error("boom");
      },
    });
    fake.objects = [obj("a", "1")];
    inf.start();
    await inf.waitForSync(1_000);
    expect(inf.get("ns", "a")).toBeDefined();
    expect(signals.some((s) => s.type === "handler-error")).toBe(true);
    await inf.stop();
  });
});
