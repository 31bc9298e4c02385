/** R7: the Local service-managed key as a single point of loss (pure decisions, the cache watch, the gauge). */
import { describe, expect, it } from "vitest";
import type { KeyProtector } from "../../../src/api/index.js";
import type { ServiceManagedKey } from "../../../src/controllers/kek-resolution.js";
import type { Kube } from "../../../src/controllers/resources.js";
import { OWNER_KIND_LABEL } from "../../../src/controllers/resources.js";
import {
  BY_LOCAL_WRAP,
  localWrapIndexValues,
  localWrapValues,
  SinglePointOfLossWatch,
  singlePointOfLossCondition,
} from "../../../src/controllers/single-point-of-loss.js";
import { addWrap, createEnvelope, envelopeSecret } from "../../../src/crypto/index.js";
import { Metrics } from "../../../src/observability/metrics.js";
import type { KubeObject } from "../../../src/runtime/index.js";
import { Store } from "../../../src/runtime/index.js";
import { keyProtector, storeOf, tp } from "./fixtures.js";

const SMK = { namespace: "tde-system", name: "tde-service-managed-key" };
const smkWrap = "local://tde-system/tde-service-managed-key/v1";
const sameNamespace = "local://tde-system/other-kek/v2";
const tenant = "local://shop/extra-kek/v1";
const vault = "https://vault.vault.azure.net/keys/platform-kek/0123456789abcdef";

const SMK_KEY = "tde-system/tde-service-managed-key";

describe("localWrapValues: which Local keys wrap a DEK, and whether it depends on them alone (R7)", () => {
  it.each<[string, string[], boolean]>([
    ["wrapped once, by it", [smkWrap], true],
    ["also by another Local key of the same namespace (deleted with it)", [smkWrap, sameNamespace], true],
    ["also by a Local key in another namespace (an extra key of a database, R13)", [smkWrap, tenant], false],
    ["also by a key in a vault (a retained wrap under the previous key, R16)", [smkWrap, vault], false],
    ["a later version of it (v2) is still it", ["local://tde-system/tde-service-managed-key/v2"], true],
  ])("%s: %s", (_n, keyIDs, alone) => {
    const values = localWrapValues("EncryptedServer", keyIDs);
    expect(values).toContain(`wrapped:${SMK_KEY}`);
    expect(values.includes(`only:EncryptedServer:${SMK_KEY}`)).toBe(alone);
  });

  it("a DEK it does not wrap is not under it at all; other kinds are not counted", () => {
    expect(localWrapValues("EncryptedServer", [tenant])).toEqual([
      "wrapped:shop/extra-kek",
      "only:EncryptedServer:shop/extra-kek",
    ]);
    expect(localWrapValues("EncryptedServer", [vault])).toEqual([]);
    expect(localWrapValues("", [smkWrap])).toEqual([`wrapped:${SMK_KEY}`]);
  });
});

/** The counts the watch reads, from a store indexed as the operator's envelope cache is. */
function countsOver(envelopes: KubeObject[]) {
  const store = new Store<KubeObject>();
  store.addIndex(BY_LOCAL_WRAP, localWrapIndexValues);
  for (const e of envelopes) store.upsert(e);
  const count = (v: string) => store.countByIndex(BY_LOCAL_WRAP, v);
  return {
    wrapped: count(`wrapped:${SMK_KEY}`),
    only: {
      EncryptedServer: count(`only:EncryptedServer:${SMK_KEY}`),
      EncryptedDatabase: count(`only:EncryptedDatabase:${SMK_KEY}`),
    },
  };
}

describe("singlePointOfLossCondition: one verdict, a message that names no count (R7)", () => {
  let n = 0;
  const server = (keyIDs: string[]) => envelope("shop", `tde-esrv-${n++}`, "EncryptedServer", keyIDs);
  it.each<[string, () => KubeObject[], { status: string; reason: string }]>([
    ["no DEK on the key yet", () => [server([tenant])], { status: "False", reason: "NoServiceManagedDEKs" }],
    [
      "every DEK on it has a second wrap kept elsewhere",
      () => [server([smkWrap, tenant]), server([smkWrap, vault])],
      { status: "False", reason: "WrappedElsewhereToo" },
    ],
    [
      "one DEK depends on it alone",
      () => [server([smkWrap, tenant]), server([smkWrap])],
      { status: "True", reason: "OnlyWrappedByLocalKey" },
    ],
  ])("%s", (_n, envelopes, want) => {
    const list = envelopes();
    const c = singlePointOfLossCondition(SMK, countsOver(list));
    expect(c).toMatchObject({ type: "SinglePointOfLoss", ...want });
    expect(c.message).toContain("tde-system/tde-service-managed-key");
    if (want.status === "True") {
      expect(c.message).toContain(
        "deleting that Secret or the namespace tde-system makes them unrecoverable",
      );
      expect(c.message).toContain("--service-managed-key");
      expect(c.message).toContain("docs/operating.md");
      // the same verdict for another count is the same condition: no write per new DEK
      expect(singlePointOfLossCondition(SMK, countsOver([...list, server([smkWrap])]))).toEqual(c);
    }
  });

  it("counts by kind; an envelope that changes or goes is counted again, never twice", () => {
    const store = new Store<KubeObject>();
    store.addIndex(BY_LOCAL_WRAP, localWrapIndexValues);
    store.upsert(envelope("shop", "tde-esrv-a", "EncryptedServer", [smkWrap]));
    store.upsert(envelope("shop", "tde-edb-b", "EncryptedDatabase", [smkWrap]));
    store.upsert(envelope("shop", "tde-edb-c", "EncryptedDatabase", [smkWrap, tenant]));
    store.upsert(envelope("shop", "tde-edb-d", "EncryptedDatabase", [vault]));
    const only = (kind: string) => store.countByIndex(BY_LOCAL_WRAP, `only:${kind}:${SMK_KEY}`);
    expect([only("EncryptedServer"), only("EncryptedDatabase")]).toEqual([1, 1]);
    // b gets a wrap kept elsewhere (R13), a goes
    store.upsert(envelope("shop", "tde-edb-b", "EncryptedDatabase", [smkWrap, vault]));
    store.remove("shop/tde-esrv-a");
    expect([only("EncryptedServer"), only("EncryptedDatabase")]).toEqual([0, 0]);
    expect(store.countByIndex(BY_LOCAL_WRAP, `wrapped:${SMK_KEY}`)).toBe(2);
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

  it("wakes the service-managed key's KeyProtector only for envelopes under that key (a rotation under customer keys wakes nothing)", () => {
    const w = watch("tde-service-managed");
    expect(w.concerns(envelope("shop", "tde-esrv-a", "EncryptedServer", [smkWrap]))).toBe(true);
    // a second wrap elsewhere ends its single point of loss: still its concern
    expect(w.concerns(envelope("shop", "tde-edb-b", "EncryptedDatabase", [smkWrap, tenant]))).toBe(true);
    expect(w.concerns(envelope("shop", "tde-edb-d", "EncryptedDatabase", [tenant]))).toBe(false);
    expect(w.concerns(envelope("shop", "tde-edb-e", "EncryptedDatabase", [vault]))).toBe(false);
    // a service-managed key in a vault has no single point of loss to watch
    expect(watch("platform-kek").concerns(envelope("shop", "tde-esrv-a", "EncryptedServer", [smkWrap]))).toBe(
      false,
    );
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
