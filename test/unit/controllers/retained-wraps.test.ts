import { describe, expect, it } from "vitest";
import type { KeyListEntry } from "../../../src/controllers/key-history.js";
import { planRetainedWraps } from "../../../src/controllers/retained-wraps.js";
import { addWrap, createEnvelope, type Envelope } from "../../../src/crypto/envelope.js";

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 0, 1);
const at = (hours: number) => new Date(T0 + hours * HOUR);
const tp = (c: string) => c.repeat(64);

/** An envelope whose protector moved A -> B -> C at hours 0, 1 and 2 (A and B retained). */
function rotated(): Envelope {
  let e = createEnvelope("dek-1", "0123456789abcdef");
  for (const [c, h] of [
    ["a", 0],
    ["b", 1],
    ["c", 2],
  ] as const) {
    e = addWrap(e, {
      keyID: `k-${c}`,
      thumbprint: tp(c),
      wrapped: "AAAA",
      role: "protector",
      addedAt: at(h),
    });
  }
  return e;
}

const entry = (
  c: string,
  since: number,
  until?: number,
  role: KeyListEntry["role"] = "protector",
): KeyListEntry => ({
  keyID: `k-${c}`,
  thumbprint: tp(c),
  role,
  since: at(since).toISOString(),
  ...(until === undefined ? {} : { until: at(until).toISOString() }),
});

const pruned = (plan: ReturnType<typeof planRetainedWraps>) => plan.prune.map((w) => w.keyID).sort();

describe("R16 retained wraps are pruned once nothing depends on them and the window has passed", () => {
  const base = { keyList: [] as KeyListEntry[], inUse: [] as string[], retentionMs: 2 * HOUR };
  const table: Array<[string, Partial<typeof base> & { now: number }, string[], number | undefined]> = [
    ["inside every window: nothing, and the next check at A's end", { now: 2.5 }, [], 3],
    ["A's window (from its demotion at 1 h) has passed", { now: 3 }, ["k-a"], 4],
    ["both windows have passed", { now: 4 }, ["k-a", "k-b"], undefined],
    ["R17 a secondary still uses A as its protector", { now: 5, inUse: [tp("a")] }, ["k-b"], undefined],
    [
      "R20 an open key-list entry (an extra key, a primary's key) keeps B",
      { now: 5, keyList: [entry("b", 1, undefined, "additional")] },
      ["k-a"],
      undefined,
    ],
    ["a longer retention window", { now: 5, retentionMs: 24 * HOUR }, [], 25],
  ];
  for (const [what, input, expected, nextHours] of table) {
    it(`R16 ${what}`, () => {
      const plan = planRetainedWraps({ ...base, ...input, envelope: rotated(), now: at(input.now) });
      expect(pruned(plan)).toEqual(expected);
      expect(plan.nextAt?.getTime()).toBe(nextHours === undefined ? undefined : at(nextHours).getTime());
    });
  }

  it("R16 the protector is never pruned, however old", () => {
    const plan = planRetainedWraps({ ...base, envelope: rotated(), now: at(1000) });
    expect(plan.prune.some((w) => w.role === "protector")).toBe(false);
  });

  it("R16 an envelope written before demotions were recorded starts the window at its key's last until", () => {
    const legacy = createEnvelope("dek-2", "0123456789abcdef");
    const e = addWrap(
      addWrap(legacy, {
        keyID: "k-a",
        thumbprint: tp("a"),
        wrapped: "AAAA",
        role: "retained",
        addedAt: at(0),
      }),
      { keyID: "k-b", thumbprint: tp("b"), wrapped: "AAAA", role: "protector", addedAt: at(0.5) },
    );
    const keyList = [entry("a", 0, 3), entry("b", 3)];
    expect(pruned(planRetainedWraps({ ...base, keyList, envelope: e, now: at(4.9) }))).toEqual([]);
    expect(pruned(planRetainedWraps({ ...base, keyList, envelope: e, now: at(5) }))).toEqual(["k-a"]);
    // no key list (a server): the envelope's newest change
    expect(pruned(planRetainedWraps({ ...base, envelope: e, now: at(2.4) }))).toEqual([]);
    expect(pruned(planRetainedWraps({ ...base, envelope: e, now: at(2.5) }))).toEqual(["k-a"]);
  });
});
