import { beforeAll, describe, expect, it } from "vitest";
import {
  type ApiCall,
  addFinalizer,
  HttpKubeClient,
  type KubeObject,
  removeFinalizer,
  StatusWriter,
  setAnnotations,
} from "../../../src/runtime/index.js";
import { createTestNamespace, testKubeConfig } from "../../harness/kube.js";
import { ensureGadgetCrd, GadgetKind, gadget } from "./gadget-crd.js";

type Gadget = KubeObject & { status?: { phase?: string; count?: number } };

describe("status and metadata writes against the real API server", () => {
  const kc = testKubeConfig();
  const calls: ApiCall[] = [];
  const client = new HttpKubeClient(kc, { observer: (c) => calls.push(c) });
  const writer = new StatusWriter(client);
  const writes = () => calls.filter((c) => c.verb !== "get" && c.verb !== "list");
  let namespace: string;

  beforeAll(async () => {
    await ensureGadgetCrd(kc);
    namespace = await createTestNamespace(kc, "rt-status");
  });

  async function fresh(name: string): Promise<Gadget> {
    const obj = await client.create<Gadget>(GadgetKind, namespace, gadget(name, { size: 1 }));
    calls.length = 0;
    return obj;
  }

  it("makes one write for a changed status and none when the status is unchanged", async () => {
    const g = await fresh("s1");
    const first = await writer.set(GadgetKind, g, { phase: "Ready", count: 1 });
    expect(first.written).toBe(true);
    expect(first.object.status).toEqual({ phase: "Ready", count: 1 });
    expect(writes()).toEqual([expect.objectContaining({ verb: "update", subresource: "status", code: 200 })]);

    calls.length = 0;
    const again = await writer.set(GadgetKind, first.object, { phase: "Ready", count: 1 });
    expect(again.written).toBe(false);
    const mutated = await writer.mutate<Gadget, { phase?: string }>(GadgetKind, first.object, (s) => {
      s.phase = "Ready";
    });
    expect(mutated.written).toBe(false);
    expect(calls).toEqual([]);
  });

  it("writes only status through the status subresource (a spec change in the body is ignored)", async () => {
    const g = await fresh("s2");
    const out = await writer.set(GadgetKind, { ...g, spec: { size: 99 } }, { phase: "X" });
    expect(out.object.status).toEqual({ phase: "X" });
    expect((out.object as { spec?: { size?: number } }).spec?.size).toBe(1);
  });

  it("on a 409 conflict re-reads and applies the mutation again to the fresh status", async () => {
    const g = await fresh("s3");
    const other = await writer.set(GadgetKind, g, { phase: "Pending", count: 10 });
    calls.length = 0;
    // `g` is now stale: its resourceVersion predates the other write.
    const out = await writer.mutate<Gadget, { phase?: string; count?: number }>(GadgetKind, g, (s) => {
      s.count = (s.count ?? 0) + 1;
    });
    expect(out.written).toBe(true);
    expect(out.object.status).toEqual({ phase: "Pending", count: 11 });
    expect(calls.map((c) => `${c.verb} ${c.code}`)).toEqual(["update 409", "get 200", "update 200"]);
    expect(other.written).toBe(true);
  });

  it("write: on a 409 conflict writes nothing and gives back the newer object, for the caller to decide again", async () => {
    const g = await fresh("s4");
    const other = await writer.set(GadgetKind, g, { phase: "Pending", count: 10 });
    calls.length = 0;
    // a status decided from the stale `g` must not overwrite what was written meanwhile
    const out = await writer.write(GadgetKind, g, { phase: "Ready", count: 1 });
    expect(out.conflict).toBe(true);
    expect(out.written).toBe(false);
    expect(out.object.status).toEqual({ phase: "Pending", count: 10 });
    expect(out.object.metadata?.resourceVersion).toBe(other.object.metadata?.resourceVersion);
    expect(calls.map((c) => `${c.verb} ${c.code}`)).toEqual(["update 409", "get 200"]);
    // decided again from the newer object, it is written once; unchanged, not at all
    calls.length = 0;
    const again = await writer.write(GadgetKind, out.object, { phase: "Ready", count: 11 });
    expect(again).toMatchObject({ written: true, object: { status: { phase: "Ready", count: 11 } } });
    expect((await writer.write(GadgetKind, again.object, { phase: "Ready", count: 11 })).written).toBe(false);
    expect(calls.map((c) => `${c.verb} ${c.code}`)).toEqual(["update 200"]);
  });

  it("adds and removes a finalizer with a resourceVersion precondition, writing nothing when already so", async () => {
    const g = await fresh("f1");
    const added = await addFinalizer(client, GadgetKind, g, "tde.dev/shred");
    expect(added.written).toBe(true);
    expect(added.object.metadata?.finalizers).toEqual(["tde.dev/shred"]);
    calls.length = 0;
    expect((await addFinalizer(client, GadgetKind, added.object, "tde.dev/shred")).written).toBe(false);
    expect(calls).toEqual([]);

    // From a stale copy: the precondition fails, the helper re-reads and still converges.
    const removed = await removeFinalizer(client, GadgetKind, { ...added.object }, "tde.dev/shred");
    expect(removed.object.metadata?.finalizers ?? []).toEqual([]);
    const stale = await addFinalizer(client, GadgetKind, added.object, "tde.dev/other");
    expect(stale.object.metadata?.finalizers).toEqual(["tde.dev/other"]);
    expect(calls.map((c) => `${c.verb} ${c.code}`)).toContain("patch 409");
  });

  it("a finalizer holds a deleted object until it is removed", async () => {
    const g = await fresh("f2");
    const { object } = await addFinalizer(client, GadgetKind, g, "tde.dev/shred");
    await client.delete(GadgetKind, namespace, "f2");
    const deleting = await client.get<Gadget>(GadgetKind, namespace, "f2");
    expect(deleting.metadata?.deletionTimestamp).toBeTruthy();
    await removeFinalizer(client, GadgetKind, deleting, "tde.dev/shred");
    await expect(client.get(GadgetKind, namespace, "f2")).rejects.toMatchObject({ statusCode: 404 });
    expect(object.metadata?.finalizers).toEqual(["tde.dev/shred"]);
  });

  it("sets and removes annotations, and writes nothing when they are already so", async () => {
    const g = await fresh("a1");
    const set = await setAnnotations(client, GadgetKind, g, { "tde.dev/a": "1", "tde.dev/b": "2" });
    expect(set.object.metadata?.annotations).toMatchObject({ "tde.dev/a": "1", "tde.dev/b": "2" });
    calls.length = 0;
    expect((await setAnnotations(client, GadgetKind, set.object, { "tde.dev/a": "1" })).written).toBe(false);
    expect(calls).toEqual([]);
    const unset = await setAnnotations(client, GadgetKind, set.object, { "tde.dev/a": null });
    expect(unset.object.metadata?.annotations?.["tde.dev/a"]).toBeUndefined();
    expect(unset.object.metadata?.annotations?.["tde.dev/b"]).toBe("2");
  });
});
