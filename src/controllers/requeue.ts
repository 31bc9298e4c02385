/** When to come back: the earliest of some optional requeue delays (undefined: no need to). */
export function soonest(...delays: (number | undefined)[]): number | undefined {
  const given = delays.filter((d): d is number => d !== undefined);
  return given.length === 0 ? undefined : Math.min(...given);
}
