/** When to come back: the earlier of two optional requeue delays (undefined: no need to). */
export function soonest(a: number | undefined, b: number | undefined): number | undefined {
  return a === undefined ? b : b === undefined ? a : Math.min(a, b);
}
