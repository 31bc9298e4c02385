import { describe, expect, it } from "vitest";
import { internObject, StringTable } from "../../../src/runtime/intern.js";

describe("StringTable: equal strings of cached objects shared", () => {
  it("changes no value, leaves frozen parts and keys alone, and keeps long strings out of the table", () => {
    const table = new StringTable(100, 20);
    const obj = {
      kind: "EncryptedDatabase",
      metadata: { name: "db-1", uid: "u-1", labels: { a: "x" }, finalizers: ["f"] },
      spec: { serverRef: { name: "srv" }, keys: [{ name: "k" }] },
      status: {
        conditions: [{ type: "Ready", message: "a message longer than twenty" }],
        frozen: Object.freeze({ s: "t" }),
      },
    };
    const before = structuredClone(obj);
    expect(internObject(obj, table)).toEqual(before);
    // kind, "x", "f", "srv", "k", "Ready"; not the long message, the name, the uid or the frozen part
    expect(table.size).toBe(6);
  });

  it("starts again when full: sharing is lost for what comes after, never a value", () => {
    const table = new StringTable(3);
    for (const s of ["a", "b", "c", "d"]) expect(table.intern(s)).toBe(s);
    expect(table.size).toBe(1);
  });

  it("shares equal flat values across objects (conditions, finalizers, spec and status references), frozen, and no object's own list", () => {
    const table = new StringTable();
    const db = (name: string, ready: string) => ({
      kind: "EncryptedDatabase",
      metadata: { name, uid: `u-${name}`, finalizers: ["tde.dev/dek"] },
      spec: { serverRef: { name: "srv" } },
      status: {
        conditions: [
          {
            type: "Ready",
            status: "True",
            reason: "Available",
            message: ready,
            lastTransitionTime: "2026-01-01T00:00:00Z",
            observedGeneration: 1,
          },
        ],
        effectiveProtector: { keyID: "local://ns/k/1", thumbprint: "a".repeat(64) },
        keyList: [{ keyID: "local://ns/k/1", since: "2026-01-01T00:00:00.123Z" }],
      },
    });
    const [a, b, c] = [db("a", "ok"), db("b", "ok"), db("c", "not yet")];
    const before = structuredClone([a, b, c]);
    expect([a, b, c].map((o) => internObject(o, table))).toEqual(before);
    expect(b.status.conditions[0]).toBe(a.status.conditions[0]);
    expect(c.status.conditions[0]).not.toBe(a.status.conditions[0]);
    expect(b.status.effectiveProtector).toBe(a.status.effectiveProtector);
    expect(b.spec.serverRef).toBe(a.spec.serverRef);
    expect(b.metadata.finalizers).toBe(a.metadata.finalizers);
    expect(Object.isFrozen(a.status.conditions[0])).toBe(true);
    expect(() => {
      (a.status.effectiveProtector as { keyID: string }).keyID = "changed";
    }).toThrow(TypeError);
    // a key history is the object's own: not shared, and still its own to change
    expect(b.status.keyList).not.toBe(a.status.keyList);
    expect(b.status.keyList[0]).not.toBe(a.status.keyList[0]);
    expect(Object.isFrozen(a.status.keyList[0])).toBe(false);
  });

  it("shares no value with a nested object or a long string, and remembers a bounded number", () => {
    const table = new StringTable(100, 20, 2);
    const nested = { ref: { name: "x" } };
    expect(table.share(nested)).toBe(nested);
    expect(Object.isFrozen(nested)).toBe(false);
    const long = { message: "a message longer than twenty" };
    expect(table.share(long)).toBe(long);
    expect(Object.isFrozen(long)).toBe(false);
    for (const v of ["a", "b", "c"]) table.share({ v });
    expect(table.flatSize).toBe(1);
    const again = { v: "c" };
    expect(table.share({ v: "c" })).not.toBe(again);
    expect(table.share(again)).toEqual({ v: "c" });
  });
});
