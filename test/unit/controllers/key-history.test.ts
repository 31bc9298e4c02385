import { describe, expect, it } from "vitest";
import {
  currentKeys,
  keysAt,
  reconcileKeyList,
  thumbprintsAt,
} from "../../../src/controllers/key-history.js";

const t = (s: string) => new Date(`2026-01-01T${s}Z`);
const A = { keyID: "kv/a/1", thumbprint: "aa", role: "protector" as const, keyProtectorName: "a" };
const B = { keyID: "kv/b/1", thumbprint: "bb", role: "protector" as const, keyProtectorName: "b" };
const X = { keyID: "kv/x/1", thumbprint: "xx", role: "additional" as const };

describe("R18 key history", () => {
  it("opens entries for new keys, closes entries for keys no longer in use, answers current and at-T", () => {
    let h = reconcileKeyList([], [A, X], t("00:00:00"));
    expect(currentKeys(h).map((e) => e.thumbprint)).toEqual(["aa", "xx"]);
    h = reconcileKeyList(h, [B, X], t("01:00:00"));
    expect(
      currentKeys(h)
        .map((e) => e.thumbprint)
        .sort(),
    ).toEqual(["bb", "xx"]);
    expect(thumbprintsAt(h, t("00:30:00")).sort()).toEqual(["aa", "xx"]);
    expect(thumbprintsAt(h, t("01:30:00")).sort()).toEqual(["bb", "xx"]);
    expect(keysAt(h, t("01:00:00")).find((e) => e.thumbprint === "aa")).toBeUndefined();
  });

  it("returns the same array when nothing changed, so no status write follows", () => {
    const h = reconcileKeyList([], [A], t("00:00:00"));
    expect(reconcileKeyList(h, [A], t("02:00:00"))).toBe(h);
  });

  it("a new version of the same material (same thumbprint) updates the id without a new interval", () => {
    const h = reconcileKeyList([], [A], t("00:00:00"));
    const next = reconcileKeyList(h, [{ ...A, keyID: "kv/a/2" }], t("01:00:00"));
    expect(next).toHaveLength(1);
    expect(next[0]?.keyID).toBe("kv/a/2");
  });
});
