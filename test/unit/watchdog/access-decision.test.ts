import { describe, expect, it } from "vitest";
import { type AccessInput, decideAccess } from "../../../src/watchdog/access-decision.js";

const now = new Date("2026-01-01T00:10:00Z");
const base: AccessInput = {
  state: "Available",
  accessible: true,
  gracePeriodMs: 600_000,
  revalidation: "Manual",
  now,
};

describe("decideAccess", () => {
  it("R10 a failure shorter than the grace period changes no state and enforces nothing", () => {
    const d = decideAccess({
      ...base,
      accessible: false,
      reason: "KeyDisabled",
      lostSince: "2026-01-01T00:05:00Z",
    });
    expect(d.state).toBe("Available");
    expect(d.action).toBe("none");
    expect(d.condition.status).toBe("False");
    expect(d.condition.reason).toBe("KeyDisabled");
    expect(d.condition.message).toMatch(/Inaccessible at 2026-01-01T00:15:00.000Z \(grace period 10m\)/);
    expect(d.requeueAfterMs).toBe(300_000);
  });

  it("R10 access lost for the whole grace period makes the resource Inaccessible and enforces once", () => {
    const d = decideAccess({
      ...base,
      accessible: false,
      reason: "KeyNotFound",
      lostSince: "2026-01-01T00:00:00Z",
    });
    expect(d).toMatchObject({ state: "Inaccessible", action: "enforce" });
    const again = decideAccess({
      ...base,
      state: "Inaccessible",
      accessible: false,
      reason: "KeyNotFound",
      lostSince: "2026-01-01T00:00:00Z",
    });
    expect(again.action).toBe("none");
  });

  it("R11 Automatic revalidation starts as soon as the key is reachable", () => {
    expect(decideAccess({ ...base, state: "Inaccessible", revalidation: "Automatic" }).action).toBe(
      "revalidate",
    );
  });

  it("R11 Manual revalidation waits for a new revalidationToken", () => {
    const waiting = decideAccess({
      ...base,
      state: "Inaccessible",
      lastRevalidatedToken: "a",
      revalidationToken: "a",
    });
    expect(waiting.action).toBe("none");
    expect(waiting.condition.message).toMatch(/revalidationToken/);
    const asked = decideAccess({
      ...base,
      state: "Inaccessible",
      lastRevalidatedToken: "a",
      revalidationToken: "b",
    });
    expect(asked.action).toBe("revalidate");
  });

  it("a new resource with a reachable key becomes Available", () => {
    expect(decideAccess({ ...base, state: undefined }).state).toBe("Available");
  });

  it("R23 a resource held Inaccessible stays so even with a reachable key", () => {
    const d = decideAccess({
      ...base,
      state: undefined,
      heldInaccessible: { reason: "CopyNotRevalidated", message: "x" },
    });
    expect(d.state).toBe("Inaccessible");
  });

  it.each<[string, AccessInput["state"], "enforce" | "none"]>([
    [
      "R23 R33 a copy never revalidated is held Inaccessible while its key is unknown too",
      "Available",
      "enforce",
    ],
    ["R23 R33 one that waited Provisioning for its key likewise", "Provisioning", "enforce"],
    ["R23 R33 one already Inaccessible enforces nothing again", "Inaccessible", "none"],
  ])("%s", (_n, state, action) => {
    const d = decideAccess({
      ...base,
      state,
      accessible: false,
      unknown: { reason: "KeyNotProbed", message: "the key was not probed" },
      heldInaccessible: { reason: "WaitingForRevalidation", message: "a copy" },
    });
    expect(d).toMatchObject({ state: "Inaccessible", action });
    expect(d.condition).toMatchObject({ status: "Unknown", reason: "KeyNotProbed" });
    expect(d.condition.message).toContain("a copy");
  });

  it("R33 without a hold, unknown access keeps the state it had", () => {
    const d = decideAccess({
      ...base,
      accessible: false,
      unknown: { reason: "KeyNotProbed", message: "the key was not probed" },
    });
    expect(d).toMatchObject({ state: "Available", action: "none" });
  });
});
