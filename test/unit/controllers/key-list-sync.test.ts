import { describe, expect, it } from "vitest";
import type { EncryptedDatabase } from "../../../src/api/index.js";
import {
  keyHolders,
  keyListSynced,
  type MissingKey,
  requiredFromPrimary,
} from "../../../src/controllers/key-list-sync.js";
import { secondariesMissingKey } from "../../../src/controllers/replication.js";
import { database, keyEntry, keyProtector, storeOf, T, tp } from "./fixtures.js";

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
      [A, C, "import the same key material into this region's vault", "namespace s"],
    ],
  ])("%s", (_n, missing, status, reason, says) => {
    const c = keyListSynced("s", "p/primary", missing);
    expect(c).toMatchObject({ status, reason });
    for (const text of says) expect(c.message).toContain(text);
  });
});

/** A KeyProtector holding key material (its thumbprint) whose Accessible or RequirementsMet condition says why not. */
function holder(
  name: string,
  thumbprint: string,
  o: { accessible?: [string, string]; requirements?: [string, string] } = {},
) {
  const kp = keyProtector("s", name, { thumbprint, keyID: `local://s/${name}/v1` });
  const [aReason, aMessage] = o.accessible ?? ["KeyAccessible", "ok"];
  const [rReason, rMessage] = o.requirements ?? ["RequirementsMet", "ok"];
  kp.status!.conditions = [
    {
      type: "Accessible",
      status: o.accessible ? "False" : "True",
      reason: aReason,
      message: aMessage,
      lastTransitionTime: T(0),
    },
    {
      type: "RequirementsMet",
      status: o.requirements ? "False" : "True",
      reason: rReason,
      message: rMessage,
      lastTransitionTime: T(0),
    },
  ];
  return kp;
}
const smk = { namespace: "tde-system", keyProtectorName: "tde-service-managed" };
const disabled = holder("b-disabled", B, {
  accessible: [
    "KeyDisabled",
    "local key s/b-disabled version v1 is disabled; dependants become Inaccessible",
  ],
});
const expired = holder("b-expired", B, {
  accessible: ["KeyExpired", "local key s/b-expired expired at 2026-01-01"],
});
const denied = holder("b-denied", B, { accessible: ["PermissionDenied", "the identity may not wrapKey"] });
const weak = holder("b-weak", B, { requirements: ["KeySizeNotAllowed", "key size 1024 is not allowed"] });
const good = holder("b-good", B);

describe("#22 R20 R21 why a key is missing: none holds it, or which KeyProtector does and why it cannot take it", () => {
  const causesOf = (...kps: ReturnType<typeof holder>[]): MissingKey => ({
    thumbprint: B,
    holders: keyHolders(storeOf(...kps), "s", B, smk).flatMap((h) =>
      h.why ? [{ name: h.name, why: h.why }] : [],
    ),
  });
  it.each<[string, MissingKey, string, string[], string[]]>([
    [
      "R20 no KeyProtector of the namespace holds it: import the same key material",
      causesOf(),
      "MissingThumbprints",
      ["no KeyProtector in namespace s holds the key", "import the same key material"],
      [],
    ],
    [
      "R10 R21 the one holding it is disabled: named, with its Accessible reason and what to do",
      causesOf(disabled),
      "KeyProtectorNotReady",
      [
        "KeyProtector b-disabled in namespace s holds the key bbbbbbbbbbbb",
        "its Accessible condition says KeyDisabled (local key s/b-disabled version v1 is disabled)",
        "Enable the key (or its current version) in the vault",
      ],
      ["no KeyProtector", "import the same key material"],
    ],
    [
      "R10 expired",
      causesOf(expired),
      "KeyProtectorNotReady",
      ["b-expired", "says KeyExpired", "Extend the key's expiry date"],
      ["no KeyProtector"],
    ],
    [
      "R5 R10 not permitted",
      causesOf(denied),
      "KeyProtectorNotReady",
      ["b-denied", "says PermissionDenied", "get, wrapKey and unwrapKey"],
      ["no KeyProtector"],
    ],
    [
      "R5 its requirements are not met",
      causesOf(weak),
      "KeyProtectorNotReady",
      ["b-weak", "RequirementsMet condition says", "key size 1024 is not allowed", "relax spec.requirements"],
      ["no KeyProtector"],
    ],
  ])("%s", (_n, cause, reason, says, never) => {
    const c = keyListSynced("s", "p/primary", [B], [cause]);
    expect(c).toMatchObject({ status: "False", reason });
    for (const text of says) expect(c.message).toContain(text);
    for (const text of never) expect(c.message).not.toContain(text);
  });

  it("R3 R20 a usable KeyProtector holding the key comes before a disabled one holding the same material", () => {
    const holders = keyHolders(storeOf(disabled, good, expired), "s", B, smk);
    expect(holders.map((h) => [h.name, h.why?.reason])).toEqual([
      ["b-good", undefined],
      ["b-disabled", "KeyDisabled"],
      ["b-expired", "KeyExpired"],
    ]);
  });

  it("R21 the primary quotes its secondary's KeyListSynced: the secondary's own KeyProtector is disabled, not missing", () => {
    const c = keyListSynced("s", "p/primary", [B], [causesOf(disabled)]);
    const primaryDb = database("p", "primary", {
      replication: { role: "Primary", secondaries: [{ namespace: "s", name: "sec" }] },
    } as never);
    const secondary = database(
      "s",
      "sec",
      { replication: { role: "Secondary", primaryRef: { namespace: "p", name: "primary" } } } as never,
      {
        missingThumbprints: [B],
        conditions: [{ type: "KeyListSynced", ...c, lastTransitionTime: T(0) }],
      } as EncryptedDatabase["status"],
    );
    const [why] = secondariesMissingKey(primaryDb, storeOf(primaryDb, secondary), B, () => false);
    expect(why?.name).toBe("s/sec");
    expect(why?.why).toContain("KeyProtector b-disabled in namespace s holds the key");
    expect(why?.why).toContain("KeyDisabled");
    expect(why?.why).not.toContain("no KeyProtector");
  });
});
