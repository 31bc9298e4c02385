import { describe, expect, it } from "vitest";
import type { EncryptedDatabase } from "../../../src/api/index.js";
import { keyListSynced, requiredFromPrimary } from "../../../src/controllers/key-list-sync.js";
import { database, keyEntry, T, tp } from "./fixtures.js";

const A = tp("a");
const B = tp("b");
const C = tp("c");
const primary = (status: EncryptedDatabase["status"]) => database("p", "primary", {}, status);

describe("key-list sync of a secondary (key-list-sync.ts)", () => {
  it.each<[string, EncryptedDatabase["status"], string[]]>([
    [
      "R20 every key of the primary's current key list",
      {
        keyList: [keyEntry(A, T(0)), keyEntry(B, T(1), undefined, "additional")],
      } as EncryptedDatabase["status"],
      [A, B],
    ],
    [
      "R20 not the keys the primary stopped using",
      { keyList: [keyEntry(A, T(0), T(1)), keyEntry(B, T(1))] } as EncryptedDatabase["status"],
      [B],
    ],
    [
      "R21 and the key the primary is about to switch to",
      {
        keyList: [keyEntry(B, T(1))],
        rotation: { phase: "AddingToSecondaries", toKeyID: "k-c", toThumbprint: C, startedAt: T(2) },
      } as EncryptedDatabase["status"],
      [B, C],
    ],
    ["R20 a primary without a status requires nothing yet", undefined, []],
  ])("%s", (_n, status, want) => {
    expect([...requiredFromPrimary(primary(status))].sort()).toEqual([...want].sort());
  });

  it.each<[string, string[], "True" | "False", string, string[]]>([
    ["R20 every thumbprint held: KeyListSynced=True", [], "True", "KeyListSynced", ["p/primary"]],
    [
      "R20 missing ones are named by thumbprint, with what to do",
      [A, C],
      "False",
      "MissingThumbprints",
      [A, C, "import it into this region's vault", "namespace s"],
    ],
  ])("%s", (_n, missing, status, reason, says) => {
    const c = keyListSynced("s", "p/primary", missing);
    expect(c).toMatchObject({ status, reason });
    for (const text of says) expect(c.message).toContain(text);
  });
});
