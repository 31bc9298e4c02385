import { describe, expect, it } from "vitest";
import {
  collectionPath,
  deepEqual,
  keyOf,
  mapToOwner,
  objectPath,
  ownerReference,
  parseKey,
  Store,
  withOwnerReference,
} from "../../../src/runtime/index.js";

describe("runtime helpers", () => {
  it("builds URLs for core and grouped, namespaced and cluster-scoped kinds", () => {
    const secret = { group: "", version: "v1", plural: "secrets", kind: "Secret" };
    const kp = { group: "tde.dev", version: "v1alpha1", plural: "keyprotectors", kind: "KeyProtector" };
    const ns = { group: "", version: "v1", plural: "namespaces", kind: "Namespace", namespaced: false };
    expect(collectionPath(secret, "a")).toBe("/api/v1/namespaces/a/secrets");
    expect(collectionPath(kp)).toBe("/apis/tde.dev/v1alpha1/keyprotectors");
    expect(objectPath(kp, "a", "k", "status")).toBe(
      "/apis/tde.dev/v1alpha1/namespaces/a/keyprotectors/k/status",
    );
    expect(objectPath(ns, "ignored", "x")).toBe("/api/v1/namespaces/x");
  });

  it("round-trips keys", () => {
    expect(keyOf({ metadata: { namespace: "a", name: "b" } })).toBe("a/b");
    expect(parseKey("a/b")).toEqual({ namespace: "a", name: "b" });
    expect(parseKey("cluster")).toEqual({ namespace: "", name: "cluster" });
  });

  it("compares like the API server would: undefined fields are absent, arrays are ordered", () => {
    expect(deepEqual({ a: 1, b: undefined }, { a: 1 })).toBe(true);
    expect(deepEqual({ a: [1, 2] }, { a: [2, 1] })).toBe(false);
    expect(deepEqual({ a: { b: "x" } }, { a: { b: "x" } })).toBe(true);
    expect(deepEqual({ a: null }, {})).toBe(false);
  });

  it("indexes objects and keeps the index in step with updates and removals", () => {
    const store = new Store<{ metadata: { name: string; namespace: string }; ref?: string }>();
    store.addIndex("byRef", (o) => (o.ref ? [o.ref] : []));
    store.upsert({ metadata: { name: "a", namespace: "n" }, ref: "kp1" });
    store.upsert({ metadata: { name: "b", namespace: "n" }, ref: "kp1" });
    store.upsert({ metadata: { name: "a", namespace: "n" }, ref: "kp2" });
    expect(store.byIndex("byRef", "kp1").map((o) => o.metadata.name)).toEqual(["b"]);
    store.remove("n/b");
    expect(store.byIndex("byRef", "kp1")).toEqual([]);
    expect(store.byIndex("byRef", "kp2")).toHaveLength(1);
  });

  it("makes owner references, refuses a second controller, and maps dependants to owners", () => {
    const owner = {
      apiVersion: "tde.dev/v1alpha1",
      kind: "EncryptedDatabase",
      metadata: { name: "db", uid: "u1" },
    };
    const ref = ownerReference(owner);
    expect(ref).toEqual({ ...ref, name: "db", uid: "u1", controller: true, blockOwnerDeletion: true });
    const refs = withOwnerReference(undefined, ref);
    expect(withOwnerReference(refs, ref)).toHaveLength(1);
    expect(() => withOwnerReference(refs, { ...ref, uid: "u2" })).toThrow(/controller/);
    const secret = { metadata: { namespace: "n", name: "env", ownerReferences: refs } };
    expect(mapToOwner("tde.dev", "EncryptedDatabase")(secret)).toEqual([{ namespace: "n", name: "db" }]);
    expect(mapToOwner("tde.dev", "EncryptedServer")(secret)).toEqual([]);
  });
});
