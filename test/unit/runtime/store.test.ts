import { describe, expect, it } from "vitest";
import type { KubeObject } from "../../../src/runtime/resource.js";
import { Store } from "../../../src/runtime/store.js";

const obj = (name: string, extra: Record<string, unknown> = {}): KubeObject => ({
  apiVersion: "tde.dev/v1alpha1",
  kind: "EncryptedDatabase",
  metadata: { namespace: "shop", name, resourceVersion: "7", ...extra },
  spec: { serverRef: { name: "orders" } },
});

describe("informer store", () => {
  it("keeps an object without its managedFields, and everything else as it came", () => {
    const store = new Store<KubeObject>();
    store.upsert(
      obj("a", {
        labels: { app: "x" },
        annotations: { "kubectl.kubernetes.io/last-applied-configuration": "{}" },
        managedFields: [{ manager: "kubectl", operation: "Apply", fieldsV1: { "f:spec": {} } }],
      }),
    );
    const cached = store.get("shop", "a")!;
    expect(cached.metadata).not.toHaveProperty("managedFields");
    expect(cached.metadata).toMatchObject({
      name: "a",
      resourceVersion: "7",
      labels: { app: "x" },
      annotations: { "kubectl.kubernetes.io/last-applied-configuration": "{}" },
    });
    expect(cached.spec).toEqual({ serverRef: { name: "orders" } });
  });

  it("an update under some of the same index values keeps those, adds the new and drops the gone", () => {
    const store = new Store<KubeObject>();
    store.addIndex("keys", (o) => (o.spec as { keys: string[] }).keys);
    store.upsert({ ...obj("a"), spec: { keys: ["x", "y"] } });
    store.upsert({ ...obj("b"), spec: { keys: ["y"] } });
    store.upsert({ ...obj("a"), spec: { keys: ["y", "z"] } });
    expect(store.countByIndex("keys", "x")).toBe(0);
    expect(
      store
        .byIndex("keys", "y")
        .map((o) => o.metadata?.name)
        .sort(),
    ).toEqual(["a", "b"]);
    expect(store.byIndex("keys", "z").map((o) => (o.spec as { keys: string[] }).keys)).toEqual([["y", "z"]]);
    store.remove("shop/a");
    expect(store.byIndex("keys", "y").map((o) => o.metadata?.name)).toEqual(["b"]);
    expect(store.countByIndex("keys", "z")).toBe(0);
  });

  it("finds objects by index after a replace, and not under their old index value", () => {
    const store = new Store<KubeObject>();
    store.addIndex("server", (o) => [String((o.spec as { serverRef: { name: string } }).serverRef.name)]);
    store.upsert(obj("a"));
    store.upsert({ ...obj("a"), spec: { serverRef: { name: "billing" } } });
    expect(store.byIndex("server", "orders")).toEqual([]);
    expect(store.byIndex("server", "billing").map((o) => o.metadata?.name)).toEqual(["a"]);
  });
});
