/** R6 R12 R28: which wrap names a version of a key, and what a state change tells (metric, log, Event). */
import { describe, expect, it } from "vitest";
import type { ControllerContext } from "../../../src/controllers/context.js";
import { keyIDBelongsTo } from "../../../src/controllers/dek-operations.js";
import { recordStateChange } from "../../../src/controllers/envelope-cache.js";
import type { KeyReference } from "../../../src/kms/provider.js";

describe("keyIDBelongsTo (R6): a wrap's key id names a version of the key a reference points at", () => {
  const local: KeyReference = { provider: "Local", namespace: "a", keyName: "kek" };
  const azure: KeyReference = {
    provider: "AzureKeyVault",
    namespace: "a",
    vaultURL: "https://v.vault.azure.net/",
    keyName: "Kek",
  };
  it.each<[string, KeyReference, string, boolean]>([
    ["a Local version of the same Secret", local, "local://a/kek/v3", true],
    ["a Local key of the same name in another namespace", local, "local://b/kek/v3", false],
    ["another Local key", local, "local://a/other/v1", false],
    ["not a Local key id at all", local, "https://v.vault.azure.net/keys/kek/1", false],
    [
      "an Azure version of the same key (names are case-insensitive, a trailing slash is ignored)",
      azure,
      "https://V.vault.azure.net/keys/kek/abc",
      true,
    ],
    ["an Azure key whose name only starts the same", azure, "https://v.vault.azure.net/keys/kek2/abc", false],
    ["the same key name in another vault", azure, "https://w.vault.azure.net/keys/kek/abc", false],
  ])("%s", (_name, ref, keyID, belongs) => {
    expect(keyIDBelongsTo(ref, keyID)).toBe(belongs);
  });
});

describe("recordStateChange (R12 R28): a state change is a metric, a log line and, after the first state, an Event", () => {
  function recorder() {
    const seen = {
      metric: [] as unknown[],
      log: [] as [string, string, unknown][],
      events: [] as [string, string][],
    };
    const ctx = {
      metrics: { stateTransitions: { inc: (l: unknown) => seen.metric.push(l) } },
      log: {
        info: (m: string, f: unknown) => seen.log.push(["info", m, f]),
        warn: (m: string, f: unknown) => seen.log.push(["warn", m, f]),
      },
      events: {
        normal: async (_o: unknown, reason: string, message: string) =>
          void seen.events.push([reason, message]),
      },
    } as unknown as ControllerContext;
    return { ctx, seen };
  }
  const obj = { metadata: { namespace: "a", name: "db" } };

  it("R12 R28 into Inaccessible: counted, logged at warn with the cause, and an Event", () => {
    const { ctx, seen } = recorder();
    recordStateChange(ctx, "EncryptedDatabase", obj as never, "Available", "Inaccessible", {
      reason: "KeyDisabled",
      message: "the key is disabled",
    });
    expect(seen.metric).toEqual([{ kind: "EncryptedDatabase", from: "Available", to: "Inaccessible" }]);
    expect(seen.log[0]?.[0]).toBe("warn");
    expect(seen.log[0]?.[2]).toMatchObject({
      reason: "KeyDisabled",
      cause: "the key is disabled",
      name: "db",
    });
    expect(seen.events).toEqual([["StateInaccessible", "state Available -> Inaccessible"]]);
  });

  it("R12 the first state is counted and logged at info, with no Event (nothing changed for a reader yet)", () => {
    const { ctx, seen } = recorder();
    recordStateChange(ctx, "EncryptedServer", obj as never, undefined, "Provisioning");
    expect(seen.metric).toEqual([{ kind: "EncryptedServer", from: "None", to: "Provisioning" }]);
    expect(seen.log[0]?.[0]).toBe("info");
    expect(seen.events).toEqual([]);
  });

  it.each([
    ["no change", "Available", "Available"],
    ["no state decided", "Available", undefined],
  ])("%s: nothing at all", (_name, before, after) => {
    const { ctx, seen } = recorder();
    recordStateChange(ctx, "EncryptedServer", obj as never, before, after);
    expect([seen.metric, seen.log, seen.events]).toEqual([[], [], []]);
  });
});
