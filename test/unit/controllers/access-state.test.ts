import { describe, expect, it } from "vitest";
import {
  accessInput,
  answeredToken,
  probeRecheckMs,
  readyCondition,
} from "../../../src/controllers/access-state.js";
import type { AccessAction, State } from "../../../src/watchdog/access-decision.js";

const now = new Date("2026-01-01T00:00:00Z");
const server = (o: { revalidation?: "Automatic" | "Manual"; revalidationToken?: string } = {}) => ({
  keyAccessGracePeriod: "10m",
  revalidation: o.revalidation ?? "Manual",
  ...(o.revalidationToken !== undefined ? { revalidationToken: o.revalidationToken } : {}),
});

describe("access state shared by servers and databases (access-state.ts)", () => {
  it("R10 the decision reads what the KeyProtector saw, and the server's grace period", () => {
    const input = accessInput({
      state: "Available",
      access: {
        accessible: false,
        reason: "KeyDisabled",
        detail: "disabled",
        lostSince: "2025-12-31T23:59:00Z",
      },
      server: server(),
      lastRevalidatedToken: undefined,
      envelopeReturned: false,
      now,
    });
    expect(input).toEqual({
      state: "Available",
      accessible: false,
      reason: "KeyDisabled",
      detail: "disabled",
      lostSince: "2025-12-31T23:59:00Z",
      gracePeriodMs: 600_000,
      revalidation: "Manual",
      now,
    });
  });

  it.each<[string, boolean, "Automatic" | "Manual", "Automatic" | "Manual"]>([
    ["R11 Manual stays Manual", false, "Manual", "Manual"],
    ["R2 R11 an envelope given back is revalidated as soon as the key answers", true, "Manual", "Automatic"],
    ["R11 Automatic stays Automatic", false, "Automatic", "Automatic"],
  ])("%s", (_n, returned, setting, want) => {
    const input = accessInput({
      state: "Inaccessible",
      access: { accessible: true },
      server: server({ revalidation: setting, revalidationToken: "t2" }),
      lastRevalidatedToken: "t1",
      envelopeReturned: returned,
      heldInaccessible: undefined,
      now,
    });
    expect(input.revalidation).toBe(want);
    expect(input).toMatchObject({ revalidationToken: "t2", lastRevalidatedToken: "t1" });
    expect(input).not.toHaveProperty("heldInaccessible");
  });

  it("R23 R33 a hold and an unknown access pass through", () => {
    const input = accessInput({
      state: undefined,
      access: { accessible: false, unknown: { reason: "KeyNotProbed", message: "m" } },
      server: server(),
      lastRevalidatedToken: undefined,
      envelopeReturned: false,
      heldInaccessible: { reason: "WaitingForRevalidation", message: "a copy" },
      now,
    });
    expect(input.unknown).toEqual({ reason: "KeyNotProbed", message: "m" });
    expect(input.heldInaccessible).toEqual({ reason: "WaitingForRevalidation", message: "a copy" });
  });

  it.each<[string, string | undefined, State, AccessAction, string | undefined]>([
    ["R11 a token set while Available is answered at once", "t", "Available", "none", "t"],
    [
      "R11 a token present when it becomes Inaccessible is answered (cannot bring it back later)",
      "t",
      "Inaccessible",
      "enforce",
      "t",
    ],
    [
      "R11 a token set while Inaccessible is not answered by merely being seen",
      "t",
      "Inaccessible",
      "none",
      undefined,
    ],
    ["R11 no token: nothing to record", undefined, "Available", "none", undefined],
  ])("%s", (_n, token, state, action, want) => {
    expect(answeredToken(token, state, action)).toBe(want);
  });

  const accessible = { status: "True" as const, reason: "KeyAccessible", message: "ok" };
  const lost = { status: "False" as const, reason: "VaultUnreachable", message: "lost at T, deadline T+10m" };
  it.each<[string, Parameters<typeof readyCondition>[0], string, string]>([
    [
      "R10 R27 Ready precedence: what holds it back first (a refusal, a wait, a failed re-wrap)",
      {
        block: { reason: "Throttled", message: "re-wrap failed" },
        state: "Inaccessible",
        inaccessibleMessage: "x",
        access: lost,
        availableMessage: "a",
      },
      "False",
      "Throttled",
    ],
    [
      "R10 Ready precedence: then Inaccessible",
      {
        block: undefined,
        state: "Inaccessible",
        inaccessibleMessage: "server s is Inaccessible",
        access: accessible,
        availableMessage: "a",
      },
      "False",
      "Inaccessible",
    ],
    [
      "R10 Ready precedence: then a key lost within its grace period",
      { block: undefined, state: "Available", inaccessibleMessage: "x", access: lost, availableMessage: "a" },
      "False",
      "VaultUnreachable",
    ],
    [
      "R10 Ready precedence: else Available",
      {
        block: undefined,
        state: "Available",
        inaccessibleMessage: "x",
        access: accessible,
        availableMessage: "the DEK is wrapped",
      },
      "True",
      "Available",
    ],
  ])("%s", (_n, input, status, reason) => {
    expect(readyCondition(input)).toMatchObject({ type: "Ready", status, reason });
  });

  it.each<[string, Parameters<typeof probeRecheckMs>[0], number | undefined, number | undefined]>([
    [
      "R33 a key not probed lately: look again after a probe interval (no event would)",
      { accessible: false, unknown: { reason: "KeyNotProbed", message: "m" } },
      60_000,
      60_000,
    ],
    ["R33 a fresh probe: nothing to look again for", { accessible: true }, 60_000, undefined],
    [
      "R10 a lost key: its grace deadline decides, not this",
      { accessible: false, reason: "KeyDisabled" },
      60_000,
      undefined,
    ],
    [
      "no prober clock: nothing",
      { accessible: false, unknown: { reason: "KeyNotProbed", message: "m" } },
      undefined,
      undefined,
    ],
  ])("%s", (_n, access, interval, want) => {
    expect(probeRecheckMs(access, interval)).toBe(want);
  });
});
