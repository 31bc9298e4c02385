import { describe, expect, it } from "vitest";
import { evaluateGrace, formatRemaining } from "../../../src/watchdog/grace.js";

describe("R10 grace period", () => {
  const lost = new Date("2026-01-01T00:00:00Z");
  it("is not expired before the deadline and says how long remains", () => {
    const v = evaluateGrace(lost, 600_000, new Date("2026-01-01T00:09:58Z"));
    expect(v.expired).toBe(false);
    expect(v.remainingMs).toBe(2_000);
    expect(v.deadline.toISOString()).toBe("2026-01-01T00:10:00.000Z");
  });
  it("is expired exactly at the deadline", () => {
    expect(evaluateGrace(lost, 600_000, new Date("2026-01-01T00:10:00Z")).expired).toBe(true);
  });
  it("formats remaining time for people", () => {
    expect(formatRemaining(598_000)).toBe("9m 58s");
    expect(formatRemaining(42_000)).toBe("42s");
    expect(formatRemaining(0)).toBe("0s");
    expect(formatRemaining(3_600_000)).toBe("1h");
  });
});
