import { type Condition, type HealthKind, healthConditions, setCondition } from "../api/index.js";

/**
 * R27: the conditions to write with kstatus' `Reconciling` and `Stalled` beside Ready, from what
 * the pass decided (its state and conditions): the one place both are set for every kind, just
 * before the status is written. Pure; the clock is the pass's. Unchanged conditions stay as they
 * were (no write when nothing changed); `lastTransitionTime` moves only on a flip.
 */
export function withHealth(
  input: {
    kind: HealthKind;
    generation: number | undefined;
    state?: string | undefined;
    deleting?: boolean;
    conditions: Condition[] | undefined;
  },
  now: Date,
): Condition[] {
  const h = healthConditions(input);
  return setCondition(
    setCondition(input.conditions, h.reconciling, input.generation, now),
    h.stalled,
    input.generation,
    now,
  );
}
