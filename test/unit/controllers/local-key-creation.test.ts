/** R7: a Local KeyProtector's missing Secret: a key made on first use, or waited for (create: Never). */
import { describe, expect, it } from "vitest";
import type { KeyProtector } from "../../../src/api/index.js";
import { statusFrom } from "../../../src/controllers/keyprotector-status.js";
import { keySecretWaitMessage, missingLocalKey } from "../../../src/controllers/local-key-creation.js";
import type { ProbeOutcome } from "../../../src/watchdog/prober.js";
import { keyProtector, T, tp } from "./fixtures.js";

const notFound: ProbeOutcome = {
  at: new Date(T(1)),
  unmet: [],
  access: { ok: false, permissions: [], failedAt: "get", reason: "KeyNotFound", message: "no Secret a/k" },
};
const unreachable: ProbeOutcome = {
  ...notFound,
  access: { ...notFound.access, reason: "VaultUnreachable", message: "timeout" } as ProbeOutcome["access"],
};
const kp = (create?: "IfMissing" | "Never", status?: Parameters<typeof keyProtector>[2]): KeyProtector => {
  const base = keyProtector("a", "k", status);
  return {
    ...base,
    spec: { provider: "Local", local: { secretRef: { name: "k" }, ...(create ? { create } : {}) } },
  } as KeyProtector;
};

describe("missingLocalKey (R7): what a Local KeyProtector does when its Secret is missing", () => {
  it.each<[string, KeyProtector, ProbeOutcome, ReturnType<typeof missingLocalKey>]>([
    ["no create field (IfMissing by default): a key is made", kp(), notFound, "create"],
    ["create: IfMissing: a key is made", kp("IfMissing"), notFound, "create"],
    ["create: Never: the Secret is waited for", kp("Never"), notFound, "wait"],
    [
      "a key that existed and vanished is a loss, never re-made (IfMissing)",
      kp("IfMissing", { keyID: "local://a/k/v1", thumbprint: tp("a") }),
      notFound,
      "none",
    ],
    [
      "a key that existed and vanished is a loss, not a wait (Never)",
      kp("Never", { keyID: "local://a/k/v1", thumbprint: tp("a") }),
      notFound,
      "none",
    ],
    ["another failure is not a missing Secret", kp("Never"), unreachable, "none"],
    [
      "an AzureKeyVault key is never made",
      {
        ...kp(),
        spec: { provider: "AzureKeyVault", azureKeyVault: { vaultURL: "https://v/", keyName: "k" } },
      } as KeyProtector,
      notFound,
      "none",
    ],
  ])("%s", (_name, protector, outcome, want) => {
    expect(missingLocalKey(protector, outcome)).toBe(want);
  });

  it("waiting is a status of its own: KeySecretNotFound on Accessible and Ready, no outage clock", () => {
    const protector = kp("Never");
    const message = keySecretWaitMessage(protector);
    const status = statusFrom(protector, notFound, new Date(T(1)), message);
    for (const type of ["Accessible", "Ready"]) {
      const c = status.conditions?.find((x) => x.type === type);
      expect(c).toMatchObject({ status: "False", reason: "KeySecretNotFound", message });
    }
    expect(status.keyAccessLostSince).toBeUndefined();
    expect(status.consecutiveFailures).toBeUndefined();
    expect(message).toContain("a/k");
    expect(message).toContain("spec.local.create");
  });

  it("without waiting the same probe is a loss of access with its clock (R10)", () => {
    const status = statusFrom(kp(), notFound, new Date(T(1)));
    expect(status.conditions?.find((x) => x.type === "Ready")?.reason).toBe("KeyNotFound");
    expect(status.keyAccessLostSince).toBe(T(1));
  });
});
