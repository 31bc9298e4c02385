/** R10 R33: the watchdog keeps its clock on the key it last knew, and a stale probe is Unknown, never True. */
import { describe, expect, it } from "vitest";
import type { KekResolution } from "../../../src/controllers/kek-resolution.js";
import { freshAccess, keyToWatch, probeIsStale } from "../../../src/controllers/key-to-watch.js";
import { type AccessInput, decideAccess } from "../../../src/watchdog/access-decision.js";

const resolution = (thumbprint: string, name: string, accessible = true): KekResolution => ({
  ok: true,
  kek: {
    ref: { provider: "Local", namespace: "a", keyName: name },
    keyID: `local://a/${name}/v1`,
    thumbprint,
    keyProtectorName: name,
  },
  ready: true,
  access: { accessible },
});
const missing: KekResolution = {
  ok: false,
  reason: "KeyProtectorNotFound",
  message: "waiting for KeyProtector gone in namespace a",
};
const protecting = { keyID: "local://a/old/v1", thumbprint: "t-old" };

describe("keyToWatch (R10 R33)", () => {
  it("the KeyProtector asked for, when it resolves", () => {
    const chosen = resolution("t-new", "new");
    expect(keyToWatch(chosen, resolution("t-old", "old"), protecting, undefined)).toEqual({
      resolved: chosen,
    });
  });

  it("nothing to watch before the DEK exists: the pass waits for the KeyProtector", () => {
    expect(keyToWatch(missing, undefined, undefined, undefined)).toBeUndefined();
  });

  it("the recorded KeyProtector, when it still names the key that protects the DEK; Ready says why", () => {
    const recorded = resolution("t-old", "old");
    const w = keyToWatch(missing, recorded, protecting, undefined);
    expect(w?.resolved).toBe(recorded);
    expect(w?.block).toMatchObject({ reason: "KeyProtectorNotFound" });
    expect(w?.block?.message).toContain(
      "the DEK stays under old (local://a/old/v1), whose key is still watched",
    );
  });

  it.each([
    ["no KeyProtector recorded", undefined],
    ["the recorded one is gone too", missing],
    ["the recorded one names another key now", resolution("t-other", "old")],
  ])("the protecting key itself, Unknown, keeping the loss clock: %s", (_what, recorded) => {
    const w = keyToWatch(missing, recorded, protecting, "2026-01-01T00:00:00Z");
    expect(w?.resolved.kek).toMatchObject({ keyID: "local://a/old/v1", thumbprint: "t-old" });
    expect(w?.resolved.ready).toBe(false);
    expect(w?.resolved.access).toMatchObject({
      accessible: false,
      lostSince: "2026-01-01T00:00:00Z",
      unknown: { reason: "KeyNotProbed" },
    });
    expect(w?.resolved.access.unknown?.message).toContain("nothing probes it");
  });
});

describe("probeIsStale and freshAccess (R33)", () => {
  const startedAt = new Date("2026-01-01T00:00:00Z");
  const at = (s: number) => new Date(startedAt.getTime() + s * 1000);
  it.each([
    ["probed within two intervals", at(100), at(200), false],
    ["not probed for longer than two intervals", at(100), at(221), true],
    ["never probed, operator running long enough", undefined, at(121), true],
    ["never probed, operator just started", undefined, at(60), false],
  ])("%s", (_what, lastProbe, now, stale) => {
    expect(probeIsStale({ lastProbe, now, intervalMs: 60_000, startedAt })).toBe(stale);
  });

  it("a stale True becomes Unknown; a known loss stays a loss", () => {
    expect(freshAccess({ accessible: true }, true, "local://a/k/v1", at(5)).unknown?.message).toBe(
      "the key local://a/k/v1 has not been probed since 2026-01-01T00:00:05.000Z",
    );
    const lost = { accessible: false, reason: "KeyDisabled", lostSince: "x" };
    expect(freshAccess(lost, true, "k", at(5))).toBe(lost);
    expect(freshAccess({ accessible: true }, false, "k", at(5))).toEqual({ accessible: true });
  });
});

describe("decideAccess with unknown access (R10 R33)", () => {
  const base: AccessInput = {
    state: "Available",
    accessible: false,
    unknown: { reason: "KeyNotProbed", message: "nothing probes the key" },
    gracePeriodMs: 600_000,
    revalidation: "Automatic",
    now: new Date("2026-01-01T00:10:00Z"),
  };
  it.each([
    ["no loss known: Unknown, state kept, nothing enforced", base, "Available", "none", undefined],
    [
      "a loss known, within grace: the deadline still holds",
      { ...base, lostSince: "2026-01-01T00:05:00Z" },
      "Available",
      "none",
      300_000,
    ],
    [
      "a loss known, grace run out: Inaccessible and enforced",
      { ...base, lostSince: "2026-01-01T00:00:00Z" },
      "Inaccessible",
      "enforce",
      undefined,
    ],
    [
      "already Inaccessible: stays, nothing more to enforce",
      { ...base, state: "Inaccessible" as const, lostSince: "2026-01-01T00:00:00Z" },
      "Inaccessible",
      "none",
      undefined,
    ],
    [
      "never a revalidation on Unknown",
      { ...base, state: "Inaccessible" as const },
      "Inaccessible",
      "none",
      undefined,
    ],
  ])("%s", (_what, input, state, action, requeue) => {
    const d = decideAccess(input);
    expect(d.condition.status).toBe("Unknown");
    expect(d.condition.reason).toBe("KeyNotProbed");
    expect(d.state).toBe(state);
    expect(d.action).toBe(action);
    expect(d.requeueAfterMs).toBe(requeue);
  });

  it("Unknown wins over a stale accessible=true", () => {
    expect(decideAccess({ ...base, accessible: true }).condition.status).toBe("Unknown");
  });
});
