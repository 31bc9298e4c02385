import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { DURATION_PATTERN, formatDuration, parseDuration } from "../../../src/api/index.js";

describe("R10 parseDuration", () => {
  it.each([
    ["10m", 600_000],
    ["90s", 90_000],
    ["24h", 86_400_000],
    ["1h30m", 5_400_000],
    ["500ms", 500],
    ["1m30s250ms", 90_250],
    ["0s", 0],
  ])("%s is %i ms", (text, ms) => {
    expect(parseDuration(text)).toBe(ms);
  });

  it.each(["", "10", "ten minutes", "2d", "1.5h", "-5s", "10 m", "m10", "10M"])(
    "%j is refused with a message showing the right form",
    (text) => {
      expect(() => parseDuration(text)).toThrow(
        /invalid duration .*for example "90s", "10m", "24h" or "1h30m"/,
      );
    },
  );

  it("accepts exactly what the CRDs' CEL rule accepts", () => {
    const cel = new RegExp(DURATION_PATTERN);
    fc.assert(
      fc.property(fc.stringMatching(/^[0-9hms]{0,8}$/), (text) => {
        let parsed = true;
        try {
          parseDuration(text);
        } catch {
          parsed = false;
        }
        expect(parsed).toBe(cel.test(text));
      }),
    );
  });

  it("round-trips through formatDuration", () => {
    fc.assert(
      fc.property(fc.nat(10 * 86_400_000), (ms) => {
        expect(parseDuration(formatDuration(ms))).toBe(ms);
      }),
    );
  });
});
