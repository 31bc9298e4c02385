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
});
