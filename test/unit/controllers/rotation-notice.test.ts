import { describe, expect, it } from "vitest";
import { rotationNotice } from "../../../src/controllers/keyprotector-reconciler.js";
import { rotatedInPlace } from "../../../src/controllers/protector-rewrap.js";
import { keyProtector } from "./fixtures.js";

const v = (n: number) => `local://tenant/kek/${n}`;

describe("R12, R16: a rotation is told once, on the KeyProtector", () => {
  it("a new version of the recorded key is a KeyRotated notice naming both versions and the dependants", () => {
    const kp = keyProtector("tenant", "kek", { keyID: v(1) });
    let counted = 0;
    const message = rotationNotice(kp, { keyID: v(2), thumbprintShort: "abcdef012345" }, () => {
      counted++;
      return 1010;
    });
    expect(message).toContain(v(2));
    expect(message).toContain(`in place of ${v(1)}`);
    expect(message).toContain("the 1010 dependants' DEKs");
    expect(message).toContain("abcdef012345");
    expect(counted).toBe(1);
  });

  it.each([
    ["the first resolution", undefined, v(1)],
    ["the same version", v(1), v(1)],
    ["another key, not a version of it", v(1), "local://tenant/other/2"],
    ["a probe that resolved nothing", v(1), undefined],
  ])("is silent for %s, and counts no dependants", (_, before, after) => {
    const kp = keyProtector("tenant", "kek", before ? { keyID: before } : undefined);
    let counted = 0;
    const message = rotationNotice(kp, after ? { keyID: after } : {}, () => {
      counted++;
      return 1;
    });
    expect(message).toBeUndefined();
    expect(counted).toBe(0);
  });

  it("a re-wrap under a new version of the same key is not the resource's own Event; a move to another key is", () => {
    expect(rotatedInPlace(v(1), v(2))).toBe(true);
    expect(rotatedInPlace(v(1), "local://tenant/other/1")).toBe(false);
    expect(rotatedInPlace(v(1), "https://v.vault.azure.net/keys/kek/2")).toBe(false);
    // an envelope with no protector wrap recorded: the re-wrap is told on the resource
    expect(rotatedInPlace(undefined, v(2))).toBe(false);
  });
});
