/** R7 R9 R16: the service-managed key an operator setting names, and a move from one to another (pure). */
import { describe, expect, it } from "vitest";
import type { EncryptedServer, KeyProtector } from "../../../src/api/index.js";
import { dependantsIn, SERVICE_MANAGED_KEY_PROTECTOR } from "../../../src/controllers/dependants.js";
import {
  resolveKek,
  type ServiceManagedKey,
  serviceManagedCandidates,
  unwrapCandidates,
} from "../../../src/controllers/kek-resolution.js";
import { keyToWatch } from "../../../src/controllers/key-to-watch.js";
import type { Kube } from "../../../src/controllers/resources.js";
import {
  heldForServiceManagedMove,
  resolveProtector,
  serviceManagedThumbprintOf,
} from "../../../src/controllers/service-managed-key.js";
import { indexServers } from "../../../src/controllers/setup.js";
import { addWrap, createEnvelope } from "../../../src/crypto/index.js";
import { serviceManagedKeyOf } from "../../../src/operator.js";
import { Store } from "../../../src/runtime/index.js";
import { keyProtector, storeOf, tp } from "./fixtures.js";

const OLD = tp("a"); // the operator's own Local key
const NEW = tp("b"); // the KeyProtector the setting now names
const kp = (
  namespace: string,
  name: string,
  thumbprint: string | undefined,
  health: { accessible?: "True" | "False"; requirements?: "True" | "False" } = {},
) =>
  keyProtector(
    namespace,
    name,
    thumbprint
      ? {
          keyID: `local://${namespace}/${name}-kek/v1`,
          thumbprint,
          accessible: health.accessible ?? "True",
          requirements: health.requirements ?? "True",
        }
      : {},
  );
const own = kp("tde-system", SERVICE_MANAGED_KEY_PROTECTOR, OLD);
const byDefault: ServiceManagedKey = serviceManagedKeyOf({ operatorNamespace: "tde-system" });
const moved: ServiceManagedKey = serviceManagedKeyOf({
  operatorNamespace: "tde-system",
  serviceManagedKey: { namespace: "tde-system", name: "platform-kek" },
});
const sm = { type: "ServiceManaged" as const };
const underOld = { keyID: `local://tde-system/${SERVICE_MANAGED_KEY_PROTECTOR}-kek/v1`, thumbprint: OLD };
const underNew = { keyID: "local://tde-system/platform-kek-kek/v1", thumbprint: NEW };

describe("serviceManagedKeyOf: the setting, defaulting to the operator's own Local key (R7)", () => {
  it.each<[string, Parameters<typeof serviceManagedKeyOf>[0], ServiceManagedKey]>([
    [
      "absent: KeyProtector tde-service-managed in the operator's namespace, created by the operator",
      { operatorNamespace: "ops" },
      { namespace: "ops", keyProtectorName: SERVICE_MANAGED_KEY_PROTECTOR, operatorNamespace: "ops" },
    ],
    [
      "naming that same one is the default",
      {
        operatorNamespace: "ops",
        serviceManagedKey: { namespace: "ops", name: SERVICE_MANAGED_KEY_PROTECTOR },
      },
      { namespace: "ops", keyProtectorName: SERVICE_MANAGED_KEY_PROTECTOR, operatorNamespace: "ops" },
    ],
    [
      "another KeyProtector: configured (the platform creates it; messages name the setting)",
      { operatorNamespace: "ops", serviceManagedKey: { namespace: "keys", name: "vault-kek" } },
      { namespace: "keys", keyProtectorName: "vault-kek", operatorNamespace: "ops", configured: true },
    ],
  ])("%s", (_n, config, want) => {
    expect(serviceManagedKeyOf(config)).toEqual(want);
  });
});

describe("resolveKek names the setting and its fix when the service-managed key it names is missing or unresolved (R7 R9)", () => {
  it.each<[string, ServiceManagedKey, Kube<KeyProtector>[], string, RegExp]>([
    [
      "the operator's own, not created yet",
      byDefault,
      [],
      "KeyProtectorNotFound",
      /the operator creates it at start/,
    ],
    [
      "a configured one that does not exist",
      moved,
      [own],
      "KeyProtectorNotFound",
      /KeyProtector tde-system\/platform-kek \(--service-managed-key \(TDE_SERVICE_MANAGED_KEY, chart value operator.serviceManagedKey\)\), which does not exist: create it, or set the setting back/,
    ],
    [
      "a configured one that has not resolved its key",
      moved,
      [own, kp("tde-system", "platform-kek", undefined)],
      "KeyProtectorNotReady",
      /the service-managed key, KeyProtector tde-system\/platform-kek \(--service-managed-key.*every DEK stays under its current key/,
    ],
  ])("%s", (_n, smk, kps, reason, message) => {
    const r = resolveKek(storeOf(...kps), "shop", sm, smk);
    expect(r).toMatchObject({ ok: false, reason });
    expect(r.ok ? "" : r.message).toMatch(message);
  });
});

describe("resolveProtector: a move of the service-managed key (R7 R16)", () => {
  type Row = [
    string,
    Kube<KeyProtector>[],
    typeof underOld | undefined,
    {
      /** the key keyToWatch then watches */
      watches?: string;
      /** the reason Ready is held back for, if any */
      block?: string;
      message?: RegExp;
    },
  ];
  it.each<Row>([
    [
      "the new key Ready: chosen and watched, so the pass re-wraps the DEK under it (the old wrap retained)",
      [own, kp("tde-system", "platform-kek", NEW)],
      underOld,
      { watches: NEW },
    ],
    [
      "the new key missing: the DEK stays under the previous one, still watched; Ready names the setting",
      [own],
      underOld,
      {
        watches: OLD,
        block: "KeyProtectorNotFound",
        message: /--service-managed-key.*does not exist/,
      },
    ],
    [
      "the new key not probed yet: nothing moves",
      [own, kp("tde-system", "platform-kek", undefined)],
      underOld,
      { watches: OLD, block: "KeyProtectorNotReady", message: /to resolve its key/ },
    ],
    [
      "the new key not accessible: nothing moves and the DEKs are not taken down with it (the previous key is watched)",
      [own, kp("tde-system", "platform-kek", NEW, { accessible: "False" })],
      underOld,
      {
        watches: OLD,
        block: "KeyProtectorNotReady",
        message: /cannot take DEKs yet.*set the setting back to KeyProtector tde-system\/tde-service-managed/,
      },
    ],
    [
      "the new key failing its requirements: nothing moves",
      [own, kp("tde-system", "platform-kek", NEW, { requirements: "False" })],
      underOld,
      { watches: OLD, block: "KeyProtectorNotReady", message: /does not meet its requirements/ },
    ],
    [
      "already moved: the new key, whatever became of the old one",
      [kp("tde-system", "platform-kek", NEW)],
      underNew,
      { watches: NEW },
    ],
    [
      "the service-managed key itself down (its DEKs under it): its own access is reported, as before",
      [own, kp("tde-system", "platform-kek", NEW, { accessible: "False" })],
      underNew,
      { watches: NEW },
    ],
    [
      "no DEK yet: wait for the new key, never wrap under the old",
      [own],
      undefined,
      { block: "KeyProtectorNotFound" },
    ],
  ])("%s", (_n, kps, protecting, want) => {
    const store = storeOf(...kps);
    const { chosen, recorded } = resolveProtector(store, "shop", sm, sm, protecting, moved);
    const watched = keyToWatch(chosen, recorded, protecting, undefined);
    if (!want.watches) {
      expect(watched).toBeUndefined();
      expect(chosen).toMatchObject({ ok: false, reason: want.block });
      return;
    }
    expect(watched?.resolved.kek.thumbprint).toBe(want.watches);
    expect(watched?.resolved.kek.keyProtectorName).toBeUndefined(); // a service-managed key names no tenant KeyProtector
    expect(watched?.block?.reason).toBe(want.block);
    if (want.message) expect(watched?.block?.message).toMatch(want.message);
    if (want.block) expect(watched?.block?.message).toContain("the DEK stays under the service-managed key");
  });

  it("a customer key is resolved as before: only the service-managed choice moves with the setting", () => {
    const store = storeOf(own, kp("shop", "cmk", tp("c")));
    const cmk = { type: "CustomerManaged" as const, keyProtectorName: "cmk" };
    const r = resolveProtector(
      store,
      "shop",
      cmk,
      cmk,
      { keyID: "local://shop/cmk-kek/v1", thumbprint: tp("c") },
      moved,
    );
    expect(r.chosen).toMatchObject({ ok: true, kek: { keyProtectorName: "cmk", thumbprint: tp("c") } });
    expect(r.recorded).toEqual(r.chosen);
  });

  it("R31 a previous service-managed key is looked for only in the platform's namespaces", () => {
    const tenantCopy = kp("shop", "looks-like-it", OLD);
    const { recorded } = resolveProtector(storeOf(tenantCopy), "shop", sm, sm, underOld, moved);
    expect(recorded?.ok).toBe(false);
  });
});

describe("unwrapCandidates: a previous service-managed key stays usable (R16, R31)", () => {
  it("the namespace's own keys, then the service-managed key, then the other KeyProtectors of the platform's namespaces; never another tenant's", () => {
    const store = storeOf(
      own,
      kp("tde-system", "platform-kek", NEW),
      kp("shop", "cmk", tp("c")),
      kp("other", "theirs", tp("d")),
    );
    const names = unwrapCandidates(store, "shop", moved).map((r) => `${r.namespace}/${r.keyName}`);
    expect(names).toEqual(["shop/cmk", "tde-system/platform-kek", "tde-system/tde-service-managed"]);
    expect(serviceManagedCandidates(store, byDefault).map((k) => k.metadata.name)).toEqual([
      SERVICE_MANAGED_KEY_PROTECTOR,
      "platform-kek",
    ]);
  });
});

const server = (name: string, thumbprint?: string, type = "ServiceManaged") =>
  ({
    apiVersion: "tde.dev/v1alpha1",
    kind: "EncryptedServer",
    metadata: { namespace: "shop", name, uid: name },
    spec: { protector: { type } },
    ...(thumbprint
      ? { status: { protector: { type, keyID: "k", thumbprint, thumbprintShort: thumbprint.slice(0, 12) } } }
      : {}),
  }) as unknown as Kube<EncryptedServer>;

describe("who depends on a previous service-managed key (R16 R33)", () => {
  const servers = new Store<Kube<EncryptedServer>>();
  indexServers(servers);
  for (const s of [
    server("moved", NEW),
    server("left-behind", OLD),
    server("new"),
    server("cmk", OLD, "CustomerManaged"),
  ])
    servers.upsert(s);
  const names = (kps: Kube<EncryptedServer>[]) => kps.map((s) => s.metadata.name).sort();

  it.each<[string, Kube<KeyProtector>, string[]]>([
    [
      "the key the setting names: every server on the service-managed key",
      kp("tde-system", "platform-kek", NEW),
      ["left-behind", "moved", "new"],
    ],
    ["the previous one: only the service-managed servers still under its key", own, ["left-behind"]],
    [
      "R31 a tenant's KeyProtector named like the operator's own is neither",
      kp("shop", SERVICE_MANAGED_KEY_PROTECTOR, OLD),
      [],
    ],
  ])("%s", (_n, k, want) => {
    expect(names(dependantsIn(k, servers, moved))).toEqual(want);
  });

  it("the service-managed thumbprint a status records (a customer-managed one has none)", () => {
    expect(serviceManagedThumbprintOf(server("moved", NEW))).toBe(NEW);
    expect(serviceManagedThumbprintOf(server("cmk", OLD, "CustomerManaged"))).toBeUndefined();
    expect(serviceManagedThumbprintOf(server("new"))).toBeUndefined();
  });
});

describe("heldForServiceManagedMove: the old wrap is kept until every DEK has the new one (R16)", () => {
  let e = createEnvelope("dek-1", "0123456789abcdef");
  e = addWrap(e, { keyID: "local://tde-system/old/v1", thumbprint: OLD, wrapped: "AAAA", role: "protector" });
  e = addWrap(e, { keyID: "local://tde-system/new/v1", thumbprint: NEW, wrapped: "AAAA", role: "protector" });
  const under = (busy: string[]) => (t: string) => busy.includes(t);
  it.each<[string, string | undefined, string[], string[]]>([
    ["another service-managed DEK is still under the old key: its wrap stays", NEW, [OLD], [OLD]],
    ["every service-managed DEK has moved: nothing held (the retention window decides)", NEW, [NEW], []],
    ["a DEK that is not service-managed holds nothing (its revocation must hold, R16)", undefined, [OLD], []],
  ])("%s", (_n, owner, busy, want) => {
    expect(e.wraps.find((w) => w.thumbprint === OLD)?.role).toBe("retained");
    expect(heldForServiceManagedMove(owner, e, under(busy))).toEqual(want);
  });
});
