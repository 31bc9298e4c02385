import type { Result } from "../runtime/index.js";
import { soonest } from "./requeue.js";

/**
 * What one step of a pass gives back (CloudNativePG's ordered steps, controller-runtime's
 * results). A pass runs its steps in order and stops at the first that does not `continue`.
 * - `continue`: done, go on to the next step;
 * - `wait`: a normal result, not an error: the pass stops and comes back after `afterMs` (or on
 *   the event it waits for, when undefined), with `reason` on a condition;
 * - `retry`: a transient failure (a KMS call that failed with Throttled or VaultUnreachable, a
 *   409): retried with per-key exponential backoff, never sooner than `afterMs` (a Retry-After);
 * - `terminal`: recorded on a condition and not retried until the spec (or what it names) changes.
 */
export type Step =
  | { kind: "continue" }
  | { kind: "wait"; reason: string; afterMs?: number }
  | { kind: "retry"; error: unknown; afterMs?: number }
  | { kind: "terminal"; reason: string };

export const step = {
  continue: (): Step => ({ kind: "continue" }),
  wait: (reason: string, afterMs?: number): Step =>
    afterMs === undefined ? { kind: "wait", reason } : { kind: "wait", reason, afterMs },
  retry: (error: unknown, afterMs?: number): Step =>
    afterMs === undefined ? { kind: "retry", error } : { kind: "retry", error, afterMs },
  terminal: (reason: string): Step => ({ kind: "terminal", reason }),
} as const;

/** Runs `steps` in order; the first that does not continue ends the run and is its result. */
export async function runSteps(steps: readonly (() => Promise<Step> | Step)[]): Promise<Step> {
  for (const s of steps) {
    const result = await s();
    if (result.kind !== "continue") return result;
  }
  return step.continue();
}

/** A transient failure of a KMS call (any classified key-access error): its retry, honouring the vault's Retry-After. */
export function kmsRetry(error: { retryAfterMs?: number }): Step {
  return step.retry(error, error.retryAfterMs);
}

/**
 * The controller's `Result` for a pass that wrote its status and ends with `outcome`, coming
 * back after `requeueAfterMs` for timed work in any case (a grace deadline, a pruning window).
 */
export function resultOf(outcome: Step, requeueAfterMs?: number): Result | undefined {
  const after = outcome.kind === "wait" ? soonest(outcome.afterMs, requeueAfterMs) : requeueAfterMs;
  const timed = after === undefined ? {} : { requeueAfterMs: after };
  if (outcome.kind === "retry")
    return {
      ...timed,
      retry:
        outcome.afterMs === undefined
          ? { error: outcome.error }
          : { error: outcome.error, afterMs: outcome.afterMs },
    };
  return after === undefined ? undefined : timed;
}
