import { describe, expect, it } from "vitest";
import { revalidationFailed } from "../../../src/controllers/pass.js";
import { rewrapFailed } from "../../../src/controllers/rewrap.js";
import { kmsRetry, resultOf, runSteps, type Step, step } from "../../../src/controllers/step.js";
import { KeyAccessError } from "../../../src/kms/provider.js";
import { retryAfterMsOf } from "../../../src/runtime/errors.js";
import { ApiError } from "../../../src/runtime/index.js";

describe("step results: continue, wait, retry, terminal", () => {
  it("runSteps runs in order and stops at the first step that does not continue", async () => {
    const ran: string[] = [];
    const s = (name: string, result: Step) => () => {
      ran.push(name);
      return result;
    };
    expect(
      await runSteps([
        s("a", step.continue()),
        s("b", step.wait("KeyProtectorNotReady")),
        s("c", step.continue()),
      ]),
    ).toEqual({ kind: "wait", reason: "KeyProtectorNotReady" });
    expect(ran).toEqual(["a", "b"]);
    ran.length = 0;
    expect(await runSteps([s("a", step.continue()), async () => step.continue()])).toEqual(step.continue());
    expect(ran).toEqual(["a"]);
  });

  const error = new Error("x");
  it.each<[string, Step, number | undefined, ReturnType<typeof resultOf>]>([
    ["continue, nothing timed: done until something changes", step.continue(), undefined, undefined],
    ["continue with timed work", step.continue(), 5_000, { requeueAfterMs: 5_000 }],
    ["wait: comes back after its delay", step.wait("Waiting", 2_000), undefined, { requeueAfterMs: 2_000 }],
    ["wait and timed work: the sooner", step.wait("Waiting", 9_000), 3_000, { requeueAfterMs: 3_000 }],
    ["wait for an event: no timer", step.wait("Waiting"), undefined, undefined],
    ["retry: backoff", step.retry(error), undefined, { retry: { error } }],
    [
      "retry with a Retry-After",
      step.retry(error, 700),
      60_000,
      { requeueAfterMs: 60_000, retry: { error, afterMs: 700 } },
    ],
    ["terminal: recorded, not retried", step.terminal("ForeignEnvelope"), undefined, undefined],
  ])("resultOf: %s", (_name, outcome, timed, want) => {
    expect(resultOf(outcome, timed)).toEqual(want);
  });
});

describe("R16 a re-wrap that fails with a KMS error (the unit twin of rewrap-retry.test.ts)", () => {
  it.each<[string, KeyAccessError, number | undefined]>([
    [
      "Throttled with the vault's Retry-After",
      new KeyAccessError("Throttled", "slow down", { retryAfterMs: 4_000 }),
      4_000,
    ],
    ["Throttled without one: backoff", new KeyAccessError("Throttled", "slow down"), undefined],
    ["VaultUnreachable: backoff", new KeyAccessError("VaultUnreachable", "timeout"), undefined],
  ])(
    "R16 %s: Ready names the failure and the pass is retried, even while the probe is healthy",
    (_n, err, after) => {
      const failed = rewrapFailed(err, "https://v/keys/k/2");
      expect(failed.ready.reason).toBe(err.reason);
      expect(failed.ready.message).toContain("the DEK stays under its current protector");
      expect(failed.outcome).toEqual(
        after === undefined ? { kind: "retry", error: err } : { kind: "retry", error: err, afterMs: after },
      );
      // what the controller gets: a retry, whatever the key's probe asks for (nothing, when healthy)
      expect(resultOf(failed.outcome, undefined)?.retry?.error).toBe(err);
      expect(kmsRetry(err)).toEqual(failed.outcome);
    },
  );
});

describe("retryAfterMsOf: how long the remote asked to wait", () => {
  it.each<[string, unknown, number | undefined]>([
    ["a KMS error's retryAfterMs", new KeyAccessError("Throttled", "t", { retryAfterMs: 1_500 }), 1_500],
    [
      "an API server's Retry-After in seconds",
      new ApiError(429, "TooManyRequests", "t", undefined, "3"),
      3_000,
    ],
    [
      "an HTTP date is not taken",
      new ApiError(503, "ServiceUnavailable", "t", undefined, "Wed, 21 Oct 2026 07:28:00 GMT"),
      undefined,
    ],
    ["a plain error", new Error("x"), undefined],
    ["not an object", "x", undefined],
  ])("%s", (_n, err, want) => {
    expect(retryAfterMsOf(err)).toBe(want);
  });
});

describe("revalidationFailed (R11): a failed revalidation is said on Revalidated, and a KMS failure is retried", () => {
  it.each<[string, unknown, string, Step["kind"], number | undefined]>([
    [
      "a throttled unwrap is retried, no sooner than the vault's Retry-After",
      new KeyAccessError("Throttled", "slow down", { retryAfterMs: 2_000 }),
      "Throttled",
      "retry",
      2_000,
    ],
    [
      "an unreachable vault is retried with backoff",
      new KeyAccessError("VaultUnreachable", "reset"),
      "VaultUnreachable",
      "retry",
      undefined,
    ],
    [
      "a KCV mismatch is not a KMS failure: it waits for a change",
      new Error("KCV mismatch"),
      "RevalidationFailed",
      "continue",
      undefined,
    ],
  ])("%s", (_name, error, reason, kind, afterMs) => {
    const failed = revalidationFailed(error, "database");
    expect(failed.reason).toBe(reason);
    expect(failed.message).toContain("the database stays Inaccessible");
    expect(failed.outcome.kind).toBe(kind);
    if (failed.outcome.kind === "retry") expect(failed.outcome.afterMs).toBe(afterMs);
  });
});
