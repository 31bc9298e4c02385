/**
 * Durations as the API writes them: one or more `<integer><unit>` parts with the units
 * h, m, s and ms, e.g. "10m", "90s", "24h", "1h30m", "500ms". The same grammar is checked by
 * the CRDs' CEL rules (which then compare with CEL's duration()), so a string the API server
 * accepted always parses here.
 */
export const DURATION_PATTERN = "^([0-9]+(h|m|s|ms))+$";

const WHOLE = /^(?:[0-9]+(?:h|ms|m|s))+$/;
const PART = /([0-9]+)(h|ms|m|s)/g;
const UNIT_MS: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1_000, ms: 1 };

/** Parses a duration such as "10m", "90s", "24h" or "1h30m" into milliseconds. */
export function parseDuration(text: string): number {
  if (typeof text !== "string" || !WHOLE.test(text)) {
    throw new Error(
      `invalid duration ${JSON.stringify(text)}: write a whole number followed by a unit (h, m, s or ms), ` +
        'one or more times, for example "90s", "10m", "24h" or "1h30m"',
    );
  }
  let total = 0;
  for (const match of text.matchAll(PART)) {
    total += Number(match[1]) * (UNIT_MS[match[2] as string] as number);
  }
  if (!Number.isSafeInteger(total)) {
    throw new Error(`invalid duration ${JSON.stringify(text)}: it is too long to represent in milliseconds`);
  }
  return total;
}

/** Formats milliseconds the way the API writes durations ("1h30m", "90s" is written "1m30s"). */
export function formatDuration(ms: number): string {
  if (!Number.isSafeInteger(ms) || ms < 0) throw new Error(`cannot format ${ms} as a duration`);
  if (ms === 0) return "0s";
  let rest = ms;
  let out = "";
  for (const unit of ["h", "m", "s", "ms"] as const) {
    const size = UNIT_MS[unit] as number;
    const n = Math.floor(rest / size);
    if (n > 0) {
      out += `${n}${unit}`;
      rest -= n * size;
    }
  }
  return out;
}
