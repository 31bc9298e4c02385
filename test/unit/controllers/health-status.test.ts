import { describe, expect, it } from "vitest";
import { type Condition, setCondition } from "../../../src/api/index.js";
import { withHealth } from "../../../src/controllers/health-status.js";

const t0 = new Date("2026-01-01T00:00:00Z");
const t1 = new Date("2026-01-01T01:00:00Z");
const ready = (status: "True" | "False", reason: string, message = `${reason} message`) =>
  setCondition(undefined, { type: "Ready", status, reason, message }, 4, t0);
const find = (list: Condition[], type: string) => list.find((c) => c.type === type);

describe("R27 Reconciling and Stalled written beside Ready (health-status.ts)", () => {
  it.each<[string, string, Condition[], "True" | "False", "True" | "False", string]>([
    ["R27 Available: neither", "Available", ready("True", "Available"), "False", "False", "NotStalled"],
    [
      "R27 Provisioning: Reconciling",
      "Provisioning",
      ready("False", "KeyProtectorNotReady"),
      "True",
      "False",
      "NotStalled",
    ],
    [
      "R1 R2 an envelope lost: Stalled with its reason",
      "Inaccessible",
      ready("False", "EnvelopeMissing"),
      "False",
      "True",
      "EnvelopeMissing",
    ],
    [
      "R10 Inaccessible: Stalled",
      "Inaccessible",
      ready("False", "Inaccessible"),
      "False",
      "True",
      "Inaccessible",
    ],
  ])("%s", (_name, state, conditions, reconciling, stalled, stalledReason) => {
    const out = withHealth({ kind: "EncryptedServer", generation: 4, state, conditions }, t0);
    expect(find(out, "Reconciling")).toMatchObject({ status: reconciling, observedGeneration: 4 });
    expect(find(out, "Stalled")).toMatchObject({
      status: stalled,
      reason: stalledReason,
      observedGeneration: 4,
    });
    expect(find(out, "Ready")).toEqual(find(conditions, "Ready"));
  });

  it("R27 the same decision an hour later changes nothing (no write when nothing changed)", () => {
    const first = withHealth(
      {
        kind: "EncryptedDatabase",
        generation: 4,
        state: "Available",
        conditions: ready("True", "Available"),
      },
      t0,
    );
    expect(
      withHealth({ kind: "EncryptedDatabase", generation: 4, state: "Available", conditions: first }, t1),
    ).toEqual(first);
  });

  it("R27 a KeyProtector waiting for its first probe is Reconciling", () => {
    const out = withHealth({ kind: "KeyProtector", generation: 1, conditions: undefined }, t0);
    expect(find(out, "Reconciling")).toMatchObject({ status: "True", reason: "AwaitingProbe" });
  });
});
