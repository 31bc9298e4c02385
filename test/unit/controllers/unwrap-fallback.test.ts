import { describe, expect, it } from "vitest";
import { mayFallBack } from "../../../src/controllers/dek-operations.js";
import { KEY_ACCESS_REASONS, KeyAccessError } from "../../../src/kms/provider.js";

describe("R16 revocation holds: the operator tries an older wrap only when the protector's key is gone", () => {
  for (const reason of KEY_ACCESS_REASONS) {
    const expected = reason === "KeyNotFound";
    it(`R16 ${reason} ${expected ? "lets" : "does not let"} the next wrap be tried`, () => {
      expect(mayFallBack(new KeyAccessError(reason, "x"))).toBe(expected);
    });
  }
  it("R16 a KCV mismatch or an unclassified failure ends the unwrap", () => {
    expect(mayFallBack(new Error("the wrapped key could not be unwrapped"))).toBe(false);
  });
});
