/** R7: the Local service-managed key as a single point of loss (pure decisions, the cache watch, the gauge). */
import { describe, expect, it } from "vitest";
import type { KeyProtector } from "../../../src/api/index.js";
import type { ServiceManagedKey } from "../../../src/controllers/kek-resolution.js";
import type { Kube } from "../../../src/controllers/resources.js";
import { OWNER_KIND_LABEL } from "../../../src/controllers/resources.js";
import {
  onlyWrappedBy,
  SinglePointOfLossWatch,
  singlePointOfLossCondition,
  singlePointOfLossCounts,
} from "../../../src/controllers/single-point-of-loss.js";
import { addWrap, createEnvelope, envelopeSecret } from "../../../src/crypto/index.js";
import { Metrics } from "../../../src/observability/metrics.js";
import type { KubeObject } from "../../../src/runtime/index.js";
import { keyProtector, storeOf, tp } from "./fixtures.js";

const SMK = { namespace: "tde-system", name: "tde-service-managed-key" };
const smkWrap = "local://tde-system/tde-service-managed-key/v1";
const sameNamespace = "local://tde-system/other-kek/v2";
const tenant = "local://shop/extra-kek/v1";
const vault = "https://vault.vault.azure.net/keys/platform-kek/0123456789abcdef";

describe("onlyWrappedBy: a DEK that depends on the Local key alone (R7)", () => {
  it.each<[string, string[], boolean]>([
    ["wrapped once, by it", [smkWrap], true],
    ["also by another Local key of the same namespace (deleted with it)", [smkWrap, sameNamespace], true],
    ["also by a Local key in another namespace (an extra key of a database, R13)", [smkWrap, tenant], false],
    ["also by a key in a vault (a retained wrap under the previous key, R16)", [smkWrap, vault], false],
    ["not wrapped by it at all", [tenant], false],
    ["a later version of it (v2) is still it", ["local://tde-system/tde-service-managed-key/v2"], true],
  ])("%s: %s", (_n, keyIDs, want) => {
    expect(onlyWrappedBy(SMK, keyIDs)).toBe(want);
  });
});

describe("singlePointOfLossCondition: one verdict, a message that names no count (R7)", () => {
  const server = (keyIDs: string[]) => ({ kind: "EncryptedServer", keyIDs });
  it.each<[string, ReturnType<typeof server>[], { status: string; reason: string }]>([
    ["no DEK on the key yet", [server([tenant])], { status: "False", reason: "NoServiceManagedDEKs" }],
    [
      "every DEK on it has a second wrap kept elsewhere",
      [server([smkWrap, tenant]), server([smkWrap, vault])],
      { status: "False", reason: "WrappedElsewhereToo" },
    ],
    [
      "one DEK depends on it alone",
      [server([smkWrap, tenant]), server([smkWrap])],
      { status: "True", reason: "OnlyWrappedByLocalKey" },
    ],
  ])("%s", (_n, envelopes, want) => {
    const c = singlePointOfLossCondition(SMK, envelopes);
    expect(c).toMatchObject({ type: "SinglePointOfLoss", ...want });
    expect(c.message).toContain("tde-system/tde-service-managed-key");
    if (want.status === "True") {
      expect(c.message).toContain(
        "deleting that Secret or the namespace tde-system makes them unrecoverable",
      );
      expect(c.message).toContain("--service-managed-key");
      expect(c.message).toContain("docs/operating.md");
      // the same verdict for another count is the same condition: no write per new DEK
      expect(singlePointOfLossCondition(SMK, [...envelopes, server([smkWrap])])).toEqual(c);
    }
  });

  it("counts by kind, and nothing without a Local service-managed key", () => {
    const envelopes = [
      { kind: "EncryptedServer", keyIDs: [smkWrap] },
      { kind: "EncryptedDatabase", keyIDs: [smkWrap] },
      { kind: "EncryptedDatabase", keyIDs: [smkWrap, tenant] },
      { kind: "EncryptedDatabase", keyIDs: [vault] },
    ];
    expect(singlePointOfLossCounts(SMK, envelopes)).toEqual({ EncryptedServer: 1, EncryptedDatabase: 1 });
    expect(singlePointOfLossCounts(undefined, envelopes)).toEqual({
      EncryptedServer: 0,
      EncryptedDatabase: 0,
    });
  });
});

function envelope(namespace: string, name: string, kind: string, keyIDs: string[]): KubeObject {
  let e = createEnvelope(`dek-${name}`, "0123456789abcdef");
  keyIDs.forEach((keyID, i) => {
    e = addWrap(e, { keyID, thumbprint: tp(String(i + 1)), wrapped: "AAAA", role: "protector" });
  });
  return envelopeSecret(namespace, name, e, {
    labels: { [OWNER_KIND_LABEL]: kind },
  }) as unknown as KubeObject;
}

describe("SinglePointOfLossWatch: from the caches, on the service-managed key's KeyProtector only (R7)", () => {
  const localSmk = (() => {
    const kp = keyProtector("tde-system", "tde-service-managed");
    kp.spec = {
      ...kp.spec,
      provider: "Local",
      local: { secretRef: { name: "tde-service-managed-key" } },
    };
    return kp;
  })();
  const azureSmk = (() => {
    const kp = keyProtector("tde-system", "platform-kek");
    kp.spec = {
      ...kp.spec,
      provider: "AzureKeyVault",
      azureKeyVault: { vaultURL: "https://vault.vault.azure.net", keyName: "platform-kek" },
    } as Kube<KeyProtector>["spec"];
    return kp;
  })();
  const envelopes = storeOf(
    envelope("shop", "tde-esrv-a", "EncryptedServer", [smkWrap]),
    envelope("shop", "tde-edb-b", "EncryptedDatabase", [smkWrap, tenant]),
    envelope("shop", "tde-edb-c", "EncryptedDatabase", [smkWrap]),
  );
  const watch = (name: string) =>
    new SinglePointOfLossWatch({
      envelopes,
      keyProtectors: storeOf(localSmk, azureSmk, keyProtector("shop", "extra")),
      smk: {
        namespace: "tde-system",
        keyProtectorName: name,
        operatorNamespace: "tde-system",
      } as ServiceManagedKey,
    });

  it("the Local service-managed key: True on its KeyProtector, none on any other; the gauge counts by kind", async () => {
    const w = watch("tde-service-managed");
    expect(w.condition(localSmk)).toMatchObject({ status: "True", reason: "OnlyWrappedByLocalKey" });
    expect(w.condition(keyProtector("shop", "extra"))).toBeUndefined();
    expect(w.condition(azureSmk)).toBeUndefined();
    expect(w.counts()).toEqual([
      { kind: "EncryptedServer", count: 1 },
      { kind: "EncryptedDatabase", count: 1 },
    ]);
    const metrics = new Metrics({ defaultMetrics: false });
    metrics.setSinglePointOfLossSource(() => w.counts());
    const text = await metrics.registry.metrics();
    expect(text).toContain('tde_service_managed_single_point_of_loss{kind="EncryptedServer"} 1');
    expect(text).toContain('tde_service_managed_single_point_of_loss{kind="EncryptedDatabase"} 1');
  });

  it("a service-managed key in a vault: no condition anywhere, the gauge at 0 for both kinds", () => {
    const w = watch("platform-kek");
    expect(w.condition(azureSmk)).toBeUndefined();
    expect(w.condition(localSmk)).toBeUndefined(); // the previous one carries none either
    expect(w.counts()).toEqual([
      { kind: "EncryptedServer", count: 0 },
      { kind: "EncryptedDatabase", count: 0 },
    ]);
  });
});
