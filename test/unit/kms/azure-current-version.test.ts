import type { KeyProperties } from "@azure/keyvault-keys";
import { describe, expect, it } from "vitest";
import { disabledCurrentVersion } from "../../../src/kms/azure-key-vault.js";

const version = (id: string, createdSecond: number, enabled: boolean): KeyProperties =>
  ({
    name: "k",
    vaultUrl: "https://v",
    version: id,
    enabled,
    createdOn: new Date(Date.UTC(2026, 0, 1, 0, 0, createdSecond)),
  }) as KeyProperties;

describe("R6 the current version when the vault says it is disabled", () => {
  const table: Array<[string, KeyProperties[], string | undefined]> = [
    ["the newest version is disabled", [version("a", 1, true), version("b", 2, false)], "b"],
    [
      "an older version is enabled: never chosen (no move back, revocation holds)",
      [version("a", 1, true), version("b", 5, false)],
      "b",
    ],
    [
      "same-second versions: the disabled one of the newest second",
      [version("a", 1, true), version("c", 2, true), version("b", 2, false)],
      "b",
    ],
    [
      "several disabled ties: the same answer every time",
      [version("x", 3, false), version("y", 3, false), version("w", 3, false)],
      "y",
    ],
    ["no newest version is disabled: not a disabled current version", [version("a", 2, true)], undefined],
    ["no versions", [], undefined],
  ];
  for (const [what, versions, expected] of table) {
    it(`R6 ${what} -> ${expected ?? "none"}`, () => {
      expect(disabledCurrentVersion(versions)?.version).toBe(expected);
      expect(disabledCurrentVersion([...versions].reverse())?.version).toBe(expected);
    });
  }
});
