/** R1 R2 R4: a recorded DEK's envelope is never replaced; its loss is reported, naming the DEK id. */
import { describe, expect, it } from "vitest";
import { type EnvelopeObservation, envelopeLoss } from "../../../src/controllers/envelope-loss.js";

const observe = (o: Partial<EnvelopeObservation> = {}): EnvelopeObservation => ({
  kind: "EncryptedDatabase",
  namespace: "shop",
  secretName: "tde-edb-orders",
  recordedDekID: "dek-1",
  found: { dekID: "dek-1" },
  ...o,
});

describe("envelopeLoss (R1 R2 R4)", () => {
  it.each([
    ["the recorded envelope is there", observe(), undefined],
    [
      "nothing recorded, no Secret yet: the DEK is still to be made",
      observe({ recordedDekID: undefined, found: { missing: true } }),
      undefined,
    ],
    [
      "nothing recorded, an envelope there: adoption decides (R31)",
      observe({ recordedDekID: undefined, found: { dekID: "dek-9" } }),
      undefined,
    ],
    ["recorded, Secret missing", observe({ found: { missing: true } }), "EnvelopeMissing"],
    [
      "recorded, Secret unreadable",
      observe({ found: { unreadable: "invalid envelope: kcv is missing" } }),
      "EnvelopeUnreadable",
    ],
    [
      "not recorded, Secret unreadable: no envelope can be written in its place",
      observe({ recordedDekID: undefined, found: { unreadable: "bad" } }),
      "EnvelopeUnreadable",
    ],
    ["recorded, another DEK in the Secret", observe({ found: { dekID: "dek-2" } }), "EnvelopeDEKMismatch"],
  ])("%s", (_what, observation, reason) => {
    expect(envelopeLoss(observation)?.reason).toBe(reason);
  });

  it("the message names the Secret and the DEK id and says what to do", () => {
    const loss = envelopeLoss(observe({ found: { missing: true } }));
    expect(loss?.message).toContain("shop/tde-edb-orders");
    expect(loss?.message).toContain("DEK dek-1");
    expect(loss?.message).toContain("Restore the Secret shop/tde-edb-orders from a backup");
    expect(loss?.message).toContain("spec.restore");
    expect(loss?.message).toContain("never makes a new DEK");
  });

  it("a replaced envelope names both DEK ids", () => {
    const loss = envelopeLoss(observe({ kind: "EncryptedServer", found: { dekID: "dek-2" } }));
    expect(loss?.message).toContain("holds DEK dek-2");
    expect(loss?.message).toContain("server's status records DEK dek-1");
  });
});
