import { describe, expect, it } from "vitest";
import { KEY_ACCESS_REASONS } from "../../../src/kms/provider.js";
import { type AccessInput, adviceFor, decideAccess } from "../../../src/watchdog/access-decision.js";

const now = new Date("2026-01-01T00:10:00Z");
const lost: AccessInput = {
  state: "Available",
  accessible: false,
  reason: "KeyDisabled",
  detail: "local://ns/k/v1 is disabled",
  lostSince: "2026-01-01T00:09:30Z",
  gracePeriodMs: 600_000,
  revalidation: "Manual",
  now,
};

describe("R10 what the KeyAccessible condition tells the person on call", () => {
  it("R10 the message names the cause, the deadline, the grace period and what to do", () => {
    const d = decideAccess(lost);
    expect(d.condition.message).toContain("key access lost since 2026-01-01T00:09:30Z");
    expect(d.condition.message).toContain("KeyDisabled: local://ns/k/v1 is disabled");
    expect(d.condition.message).toContain(
      "becomes Inaccessible at 2026-01-01T00:19:30.000Z (grace period 10m) unless access returns",
    );
    expect(d.condition.message).toContain(adviceFor("KeyDisabled"));
    expect(d.requeueAfterMs).toBe(570_000);
    expect(d.keyAccessLostSince).toBe("2026-01-01T00:09:30Z");
  });

  it("R10 the condition does not change from one probe to the next during the grace period (no status write per probe)", () => {
    const first = decideAccess(lost);
    for (const later of ["2026-01-01T00:11:00Z", "2026-01-01T00:15:27Z", "2026-01-01T00:19:29Z"]) {
      const d = decideAccess({ ...lost, now: new Date(later) });
      expect(d.condition).toEqual(first.condition);
      expect(d.state).toBe(first.state);
      expect(d.keyAccessLostSince).toBe(first.keyAccessLostSince);
    }
  });

  it("R10 every R10 reason has its own advice, and an unknown one a general one", () => {
    const advice = KEY_ACCESS_REASONS.map((r) => adviceFor(r));
    expect(new Set(advice).size).toBe(advice.length);
    expect(adviceFor("Error")).toMatch(/Restore the key/);
    expect(adviceFor("KeyNotFound")).toMatch(/Recover the soft-deleted key/);
    expect(adviceFor("PermissionDenied")).toMatch(/get, wrapKey and unwrapKey/);
  });

  it.each([
    [
      "a Local KEK Secret deleted for good",
      "local key a/k was not found",
      /nothing says it was soft-deleted/,
    ],
    [
      "a soft-deleted Local key",
      "local key a/k was deleted at 2026-01-01T00:00:00Z; recover it to use it again",
      /Recover the soft-deleted key/,
    ],
    [
      "an Azure key not found",
      "the key was not found (deleted keys can be recovered while soft-deleted)",
      /Recover the soft-deleted key/,
    ],
  ])("R33 KeyNotFound advice follows what the vault said: %s", (_what, detail, advice) => {
    expect(adviceFor("KeyNotFound", detail)).toMatch(advice);
    const d = decideAccess({ ...lost, reason: "KeyNotFound", detail });
    expect(d.condition.message).toMatch(advice);
  });

  it("R10 R11 once Inaccessible, the message says how it comes back in each revalidation mode", () => {
    const expired = { ...lost, lostSince: "2026-01-01T00:00:00Z" };
    const manual = decideAccess(expired);
    expect(manual.state).toBe("Inaccessible");
    expect(manual.condition.message).toMatch(/the grace period has run out/);
    expect(manual.condition.message).toMatch(/change spec.revalidationToken/);
    const automatic = decideAccess({ ...expired, revalidation: "Automatic" });
    expect(automatic.condition.message).toMatch(/revalidated automatically at the next successful probe/);
  });

  it("R10 exactly at the deadline the resource is Inaccessible; a millisecond before it is not", () => {
    const at = decideAccess({ ...lost, now: new Date("2026-01-01T00:19:30.000Z") });
    expect(at).toMatchObject({ state: "Inaccessible", action: "enforce" });
    const before = decideAccess({ ...lost, now: new Date("2026-01-01T00:19:29.999Z") });
    expect(before).toMatchObject({ state: "Available", action: "none", requeueAfterMs: 1 });
  });

  it("R10 a loss with no recorded time starts counting now", () => {
    const { lostSince: _ignored, ...rest } = lost;
    const d = decideAccess(rest);
    expect(d.keyAccessLostSince).toBe(now.toISOString());
    expect(d.requeueAfterMs).toBe(600_000);
  });

  it("R23 a held resource whose key is also lost says why it is held, not that a grace period ran out", () => {
    const d = decideAccess({
      ...lost,
      state: undefined,
      heldInaccessible: { reason: "WaitingForRevalidation", message: "a copy starts Inaccessible" },
    });
    expect(d).toMatchObject({ state: "Inaccessible", action: "enforce" });
    expect(d.condition.message).toContain("a copy starts Inaccessible");
    expect(d.condition.message).not.toMatch(/grace period has run out/);
  });

  it("R11 a resource already Inaccessible is not enforced again, and a Revalidating one waits for access", () => {
    expect(decideAccess({ ...lost, state: "Inaccessible" }).action).toBe("none");
    const revalidating = decideAccess({ ...lost, state: "Revalidating", lostSince: "2026-01-01T00:00:00Z" });
    expect(revalidating.state).toBe("Inaccessible");
  });
});
