import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  type Condition,
  ConditionType,
  conditionsEqual,
  findCondition,
  isFalse,
  isTrue,
  Reason,
  removeCondition,
  setCondition,
  transitionTime,
} from "../../../src/api/index.js";

const t0 = new Date("2025-06-01T12:00:00Z");
const t1 = new Date("2025-06-01T12:05:00Z");

describe("R27 setCondition", () => {
  it("adds a new condition with the transition time and observedGeneration", () => {
    const out = setCondition(
      undefined,
      { type: ConditionType.Ready, status: "True", reason: Reason.Available, message: "ok" },
      3,
      t0,
    );
    expect(out).toEqual([
      {
        type: "Ready",
        status: "True",
        reason: "Available",
        message: "ok",
        lastTransitionTime: "2025-06-01T12:00:00Z",
        observedGeneration: 3,
      },
    ]);
  });

  it("keeps lastTransitionTime when the status does not flip, but updates reason, message and generation", () => {
    const first = setCondition(
      [],
      { type: "KeyAccessible", status: "False", reason: "KeyDisabled", message: "a" },
      1,
      t0,
    );
    const second = setCondition(
      first,
      { type: "KeyAccessible", status: "False", reason: "PermissionDenied", message: "b" },
      2,
      t1,
    );
    expect(second[0]).toMatchObject({
      reason: "PermissionDenied",
      message: "b",
      observedGeneration: 2,
      lastTransitionTime: transitionTime(t0),
    });
  });

  it("moves lastTransitionTime when the status flips", () => {
    const first = setCondition(
      [],
      { type: "Ready", status: "False", reason: "Provisioning", message: "" },
      1,
      t0,
    );
    const second = setCondition(
      first,
      { type: "Ready", status: "True", reason: "Available", message: "" },
      1,
      t1,
    );
    expect(second[0]?.lastTransitionTime).toBe("2025-06-01T12:05:00Z");
  });

  it("writes the time in whole seconds, as Kubernetes writes its own conditions (metav1.Time)", () => {
    const at = new Date("2025-06-01T12:00:07.999Z");
    const out = setCondition(undefined, { type: "Ready", status: "True", reason: "R", message: "" }, 1, at);
    expect(out[0]?.lastTransitionTime).toBe("2025-06-01T12:00:07Z");
    expect(Date.parse(out[0]?.lastTransitionTime ?? "")).toBeLessThanOrEqual(at.getTime());
  });

  it("keeps the other conditions and their order, and never mutates its input", () => {
    const input: Condition[] = [
      { type: "A", status: "True", reason: "R", message: "", lastTransitionTime: t0.toISOString() },
      { type: "B", status: "True", reason: "R", message: "", lastTransitionTime: t0.toISOString() },
    ];
    const frozen = JSON.stringify(input);
    const out = setCondition(input, { type: "A", status: "False", reason: "X", message: "m" }, 5, t1);
    expect(out.map((c) => c.type)).toEqual(["A", "B"]);
    expect(out[1]).toEqual(input[1]);
    expect(JSON.stringify(input)).toBe(frozen);
  });

  it("property: one entry per type; the time changes exactly when the status changes", () => {
    const status = fc.constantFrom("True", "False", "Unknown") as fc.Arbitrary<"True" | "False" | "Unknown">;
    const step = fc.record({
      type: fc.constantFrom("Ready", "KeyAccessible", "Enforced"),
      status,
      gen: fc.nat(20),
    });
    fc.assert(
      fc.property(fc.array(step, { maxLength: 30 }), (steps) => {
        let list: Condition[] = [];
        steps.forEach((s, i) => {
          const now = new Date(t0.getTime() + i * 1000);
          const before = findCondition(list, s.type);
          list = setCondition(list, { type: s.type, status: s.status, reason: "R", message: "" }, s.gen, now);
          const after = findCondition(list, s.type)!;
          expect(after.observedGeneration).toBe(s.gen);
          const flipped = !before || before.status !== s.status;
          expect(after.lastTransitionTime).toBe(flipped ? transitionTime(now) : before.lastTransitionTime);
          expect(new Set(list.map((c) => c.type)).size).toBe(list.length);
        });
      }),
    );
  });
});

describe("findCondition, isTrue, isFalse, removeCondition, conditionsEqual", () => {
  const list = setCondition(
    setCondition([], { type: "Ready", status: "True", reason: "Available", message: "" }, 1, t0),
    { type: "KeyAccessible", status: "False", reason: "KeyDisabled", message: "" },
    1,
    t0,
  );
  it("reads conditions", () => {
    expect(isTrue(list, "Ready")).toBe(true);
    expect(isFalse(list, "KeyAccessible")).toBe(true);
    expect(isTrue(list, "KeyAccessible")).toBe(false);
    expect(isTrue(undefined, "Ready")).toBe(false);
    expect(findCondition(list, "Missing")).toBeUndefined();
  });
  it("removes one", () => {
    expect(removeCondition(list, "Ready").map((c) => c.type)).toEqual(["KeyAccessible"]);
  });
  it("compares ignoring order", () => {
    expect(conditionsEqual(list, [...list].reverse())).toBe(true);
    expect(
      conditionsEqual(
        list,
        setCondition(list, { type: "Ready", status: "True", reason: "Available", message: "x" }, 1, t1),
      ),
    ).toBe(false);
    expect(conditionsEqual(undefined, [])).toBe(true);
  });
});
