import { afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  Controller,
  ExponentialRateLimiter,
  HttpKubeClient,
  Informer,
  type KubeObject,
  type ObjectKey,
  type ReconcileReport,
  type Result,
  StatusWriter,
  TerminalError,
  WorkQueue,
} from "../../../src/runtime/index.js";
import { createTestNamespace, testKubeConfig } from "../../harness/kube.js";
import { ensureGadgetCrd, GadgetKind, gadget } from "./gadget-crd.js";

type Gadget = KubeObject & {
  spec?: { size?: number; mode?: string; parent?: string };
  status?: { seen?: number };
};

describe("Controller wiring informers, queue and reconciler against the real API server", () => {
  const kc = testKubeConfig();
  const client = new HttpKubeClient(kc);
  let namespace: string;
  const running: Controller[] = [];
  const informers: Informer<Gadget>[] = [];

  beforeAll(async () => {
    await ensureGadgetCrd(kc);
    namespace = await createTestNamespace(kc, "rt-ctrl");
  });
  afterEach(async () => {
    await Promise.all(running.splice(0).map((c) => c.stop()));
    await Promise.all(informers.splice(0).map((i) => i.stop()));
  });

  function start(reconcile: (key: ObjectKey, inf: Informer<Gadget>) => Promise<Result | undefined>) {
    const reports: ReconcileReport[] = [];
    const inf = new Informer<Gadget>({ client, kind: GadgetKind, namespaces: [namespace] });
    informers.push(inf);
    const controller = new Controller({
      name: "gadget",
      reconciler: { reconcile: (key) => reconcile(key, inf) },
      concurrency: 2,
      queue: new WorkQueue({ rateLimiter: new ExponentialRateLimiter({ baseMs: 100, maxMs: 400 }) }),
      observer: (r) => reports.push(r),
    }).watchPrimary(inf);
    running.push(controller);
    void controller.start();
    return { controller, reports, inf };
  }

  it("reconciles an object until converged, then stays quiet (no write for an unchanged status)", async () => {
    const writer = new StatusWriter(client);
    let writes = 0;
    const { reports } = start(async (key, inf) => {
      const obj = inf.get(key.namespace, key.name);
      if (!obj) return undefined;
      const r = await writer.set(GadgetKind, obj, { seen: obj.spec?.size ?? 0 });
      if (r.written) writes++;
      return undefined;
    });
    await client.create(GadgetKind, namespace, gadget("c1", { size: 7 }));
    await expect
      .poll(async () => (await client.get<Gadget>(GadgetKind, namespace, "c1")).status?.seen)
      .toBe(7);
    // Our own status write comes back as an update event: one more reconcile, which writes nothing.
    await new Promise((r) => setTimeout(r, 500));
    const forC1 = reports.filter((r) => r.key.name === "c1");
    expect(forC1.every((r) => r.result === "success")).toBe(true);
    expect(writes).toBe(1);
    expect(forC1.length).toBeGreaterThanOrEqual(2);
  });

  it("retries a transient error with backoff, requeues after a wait, and does not retry a terminal error", async () => {
    const attempts = new Map<string, number>();
    const { reports } = start(async (key, inf) => {
      const obj = inf.get(key.namespace, key.name);
      if (!obj) return undefined;
      const n = (attempts.get(key.name) ?? 0) + 1;
      attempts.set(key.name, n);
      switch (obj.spec?.mode) {
        case "flaky":
          if (n < 3) throw new Error("vault timed out");
          return undefined;
        case "wait":
          return n < 3 ? { requeueAfterMs: 150 } : undefined;
        case "terminal":
          throw new TerminalError("key type EC is not allowed", "KeyTypeNotAllowed");
        default:
          return undefined;
      }
    });
    await client.create(GadgetKind, namespace, gadget("flaky", { mode: "flaky" }));
    await client.create(GadgetKind, namespace, gadget("wait", { mode: "wait" }));
    await client.create(GadgetKind, namespace, gadget("terminal", { mode: "terminal" }));
    const results = (name: string) => reports.filter((r) => r.key.name === name).map((r) => r.result);
    await expect.poll(() => results("flaky"), { timeout: 5_000 }).toEqual(["error", "error", "success"]);
    const flaky = reports.filter((r) => r.key.name === "flaky");
    expect(flaky.map((r) => r.retryInMs)).toEqual([100, 200, undefined]);
    await expect.poll(() => results("wait"), { timeout: 5_000 }).toEqual(["requeue", "requeue", "success"]);
    await new Promise((r) => setTimeout(r, 800));
    expect(results("terminal")).toEqual(["terminal"]);
    // A change to the object brings a terminal key back.
    await client.patch(GadgetKind, namespace, "terminal", { spec: { mode: "terminal", size: 2 } });
    await expect.poll(() => results("terminal")).toEqual(["terminal", "terminal"]);
  });

  it("a recorded transient failure (Result.retry) is retried with backoff and a Retry-After; Result.requeue runs again at once", async () => {
    const attempts = new Map<string, number>();
    const { reports } = start(async (key, inf) => {
      const obj = inf.get(key.namespace, key.name);
      if (!obj) return undefined;
      const n = (attempts.get(key.name) ?? 0) + 1;
      attempts.set(key.name, n);
      if (obj.spec?.mode === "recorded") {
        if (n === 1) return { retry: { error: new Error("Throttled") } };
        if (n === 2) return { retry: { error: new Error("Throttled"), afterMs: 300 } };
        return undefined;
      }
      if (obj.spec?.mode === "conflict") return n < 3 ? { requeue: true } : undefined;
      return undefined;
    });
    await client.create(GadgetKind, namespace, gadget("recorded", { mode: "recorded" }));
    await client.create(GadgetKind, namespace, gadget("conflict", { mode: "conflict" }));
    const of = (name: string) => reports.filter((r) => r.key.name === name);
    await expect
      .poll(() => of("recorded").map((r) => r.result), { timeout: 5_000 })
      .toEqual(["error", "error", "success"]);
    // the backoff (100, then 200) and, when the remote asked for longer, its Retry-After (300)
    expect(of("recorded").map((r) => r.retryInMs)).toEqual([100, 300, undefined]);
    await expect
      .poll(() => of("conflict").map((r) => r.result), { timeout: 5_000 })
      .toEqual(["requeue", "requeue", "success"]);
    expect(of("conflict").map((r) => r.retryInMs)).toEqual([0, 0, undefined]);
  });

  it("maps events of a watched secondary kind to the keys of the objects that depend on them", async () => {
    const seen: string[] = [];
    const parents = new Informer<Gadget>({ client, kind: GadgetKind, namespaces: [namespace] });
    const inf = new Informer<Gadget>({ client, kind: GadgetKind, namespaces: [namespace] });
    const controller = new Controller({
      name: "mapped",
      reconciler: {
        reconcile: async (key) => {
          seen.push(key.name);
          return undefined;
        },
      },
    })
      .watchPrimary(inf, (e) => e.obj.metadata?.name?.startsWith("child") ?? false)
      .watch(parents, (o) =>
        o.spec?.parent ? [{ namespace: o.metadata?.namespace ?? "", name: o.spec.parent }] : [],
      );
    running.push(controller);
    informers.push(parents, inf);
    void controller.start();
    await client.create(GadgetKind, namespace, gadget("child-1"));
    await expect.poll(() => seen).toContain("child-1");
    seen.length = 0;
    await client.create(GadgetKind, namespace, gadget("parent-1", { parent: "child-1" }));
    await expect.poll(() => seen).toContain("child-1");
    expect(seen).not.toContain("parent-1");
  });

  it("stops gracefully: running reconciles finish, no new ones start", async () => {
    let inFlight = 0;
    let finished = 0;
    const { controller } = start(async () => {
      inFlight++;
      await new Promise((r) => setTimeout(r, 300));
      inFlight--;
      finished++;
      return undefined;
    });
    await expect.poll(() => inFlight).toBeGreaterThan(0);
    await controller.stop();
    expect(inFlight).toBe(0);
    const after = finished;
    controller.enqueue({ namespace, name: "c1" });
    await new Promise((r) => setTimeout(r, 400));
    expect(finished).toBe(after);
  });
});
