/** The dependency indexes and mappers of the server and database controllers (setup.ts). */
import { describe, expect, it } from "vitest";
import type { EncryptedDatabase, EncryptedServer } from "../../../src/api/index.js";
import { SERVICE_MANAGED_KEY_PROTECTOR } from "../../../src/controllers/dependants.js";
import type { Kube } from "../../../src/controllers/resources.js";
import {
  envelopeSecretName,
  OWNER_KIND_LABEL,
  OWNER_NAME_ANNOTATION,
  OWNER_NAME_LABEL,
} from "../../../src/controllers/resources.js";
import { secondariesOf } from "../../../src/controllers/rotation-blocker.js";
import {
  databasePeers,
  databasesOfEnvelope,
  databasesOfKeyProtector,
  databasesOfServer,
  envelopeOwnerKeys,
  indexDatabases,
  indexKeyProtectors,
  indexServers,
  keyProtectorsOfLocalKey,
  serversOfKeyProtector,
} from "../../../src/controllers/setup.js";
import { Store } from "../../../src/runtime/index.js";
import { database, keyProtector, tp } from "./fixtures.js";

const server = (
  ns: string,
  name: string,
  protector: EncryptedServer["spec"]["protector"],
  status?: EncryptedServer["status"],
) =>
  ({
    apiVersion: "tde.dev/v1alpha1",
    kind: "EncryptedServer",
    metadata: { namespace: ns, name, generation: 1 },
    spec: { protector },
    ...(status ? { status } : {}),
  }) as Kube<EncryptedServer>;

const smk = () => {
  const kp = keyProtector("tde-system", SERVICE_MANAGED_KEY_PROTECTOR);
  kp.metadata.labels = { "app.kubernetes.io/managed-by": "tde-operator" };
  return kp;
};
/** the operator setting's default: its own Local key in its namespace */
const config = {
  namespace: "tde-system",
  keyProtectorName: SERVICE_MANAGED_KEY_PROTECTOR,
  operatorNamespace: "tde-system",
};
const names = (keys: { namespace: string; name: string }[]) =>
  keys.map((k) => `${k.namespace}/${k.name}`).sort();

describe("servers by KeyProtector (R10: a key's event wakes exactly its dependants)", () => {
  const servers = new Store<Kube<EncryptedServer>>();
  indexServers(servers);
  servers.upsert(server("a", "cmk", { type: "CustomerManaged", keyProtectorRef: { name: "kp" } }));
  servers.upsert(
    server("a", "moving", { type: "CustomerManaged", keyProtectorRef: { name: "new" } }, {
      protector: {
        type: "CustomerManaged",
        keyProtectorName: "kp",
        keyID: "k",
        thumbprint: tp("a"),
        thumbprintShort: "a",
      },
    } as EncryptedServer["status"]),
  );
  servers.upsert(server("a", "smk", { type: "ServiceManaged" }));
  servers.upsert(server("b", "other-ns", { type: "CustomerManaged", keyProtectorRef: { name: "kp" } }));
  it.each<[string, ReturnType<typeof keyProtector>, string[]]>([
    [
      "R13 R31 a customer key: the servers of its namespace naming it in spec or status",
      keyProtector("a", "kp"),
      ["a/cmk", "a/moving"],
    ],
    ["R14 the new key of a server moving to it", keyProtector("a", "new"), ["a/moving"]],
    ["R7 R9 the service-managed key: every server on it, in any namespace", smk(), ["a/smk"]],
    [
      "R31 a KeyProtector of the same name elsewhere that is not the operator's own",
      keyProtector("c", "kp"),
      [],
    ],
  ])("%s", (_n, kp, want) => {
    expect(names(serversOfKeyProtector(kp, servers, config))).toEqual(want);
  });
});

describe("databases by KeyProtector, server and replication peers", () => {
  const databases = new Store<Kube<EncryptedDatabase>>();
  indexDatabases(databases);
  databases.upsert(
    database("a", "own", {
      serverRef: { name: "s1" },
      encryptionProtector: { type: "CustomerManaged", keyProtectorRef: { name: "kp" } },
    }),
  );
  databases.upsert(
    database("a", "extra", { serverRef: { name: "s1" }, keys: [{ keyProtectorRef: { name: "kp" } }] }),
  );
  databases.upsert(database("a", "inherits", { serverRef: { name: "s2" } }));
  databases.upsert(
    database("a", "missing", { serverRef: { name: "s2" } }, {
      missingThumbprints: [tp("f")],
    } as EncryptedDatabase["status"]),
  );
  databases.upsert(
    database("p", "primary", {
      replication: { role: "Primary", secondaries: [{ namespace: "s", name: "sec" }] },
    } as Partial<EncryptedDatabase["spec"]>),
  );
  databases.upsert(
    database("s", "sec", {
      replication: { role: "Secondary", primaryRef: { namespace: "p", name: "primary" } },
    } as Partial<EncryptedDatabase["spec"]>),
  );

  it.each<[string, ReturnType<typeof keyProtector>, string[]]>([
    [
      "R13 R14 a database's own protector and its extra keys (spec.keys)",
      keyProtector("a", "kp"),
      ["a/extra", "a/own"],
    ],
    [
      "R20 a secondary missing this key material picks it up from any KeyProtector of its namespace",
      keyProtector("a", "holder", { thumbprint: tp("f") }),
      ["a/missing"],
    ],
    ["R31 nothing in another namespace", keyProtector("b", "kp"), []],
  ])("%s", (_n, kp, want) => {
    expect(names(databasesOfKeyProtector(kp, databases, config))).toEqual(want);
  });

  it("R13 a server's change wakes its databases (they may inherit its protector)", () => {
    expect(names(databasesOfServer(server("a", "s2", { type: "ServiceManaged" }), databases))).toEqual([
      "a/inherits",
      "a/missing",
    ]);
  });

  it("R17 R20 R21 a secondary wakes its primary, a primary its secondaries; BY_PRIMARY is registered beside the controller", () => {
    const primary = databases.get("p", "primary")!;
    const secondary = databases.get("s", "sec")!;
    expect(names(databasePeers(secondary, databases))).toEqual(["p/primary"]);
    expect(names(databasePeers(primary, databases))).toEqual(["s/sec"]);
    expect(databasePeers(databases.get("a", "own")!, databases)).toEqual([]);
    // rotationBlocker reads BY_PRIMARY: the setup registered it
    expect(
      secondariesOf(primary, databases).map((d) => `${d.metadata.namespace}/${d.metadata.name}`),
    ).toEqual(["s/sec"]);
  });

  it("R2 R32 an envelope Secret wakes its owner of its kind only (by its annotation: a label may be shortened)", () => {
    const secret = {
      metadata: {
        namespace: "a",
        name: envelopeSecretName("EncryptedDatabase", "own"),
        labels: { [OWNER_KIND_LABEL]: "EncryptedDatabase", [OWNER_NAME_LABEL]: "ow" },
        annotations: { [OWNER_NAME_ANNOTATION]: "own" },
      },
    };
    expect(envelopeOwnerKeys(secret, "EncryptedDatabase")).toEqual([{ namespace: "a", name: "own" }]);
    expect(envelopeOwnerKeys(secret, "EncryptedServer")).toEqual([]);
  });
});

/**
 * #22: every reference watched from both ends, from an index: a change of the referenced object
 * requeues the one naming it, and the other way round.
 */
describe("both ends of every reference (R19 R20 R21 R24 R31)", () => {
  const databases = new Store<Kube<EncryptedDatabase>>();
  indexDatabases(databases);
  const servers = new Store<Kube<EncryptedServer>>();
  indexServers(servers);
  servers.upsert(server("a", "cmk", { type: "CustomerManaged", keyProtectorRef: { name: "srv-kp" } }));
  // a primary that does not (yet) list a database naming it
  databases.upsert(database("p", "primary", { replication: { role: "Primary", secondaries: [] } } as never));
  databases.upsert(
    database("s", "unlisted", {
      replication: { role: "Secondary", primaryRef: { namespace: "p", name: "primary" } },
    } as never),
  );
  // a database that is not (yet) a Primary, named by a secondary
  databases.upsert(database("p", "not-yet-primary"));
  databases.upsert(
    database("s", "early", {
      replication: { role: "Secondary", primaryRef: { namespace: "p", name: "not-yet-primary" } },
    } as never),
  );
  // a restore source, its cross-namespace restore (not yet allowed), an allowed target, a same-namespace restore
  databases.upsert(
    database("p", "source", { allowedRestoreTargets: [{ namespace: "t", name: "allowed" }] } as never),
  );
  databases.upsert(
    database("t", "restored", {
      restore: { sourceRef: { namespace: "p", name: "source" }, keys: [{ keyProtectorRef: { name: "rk" } }] },
    } as never),
  );
  databases.upsert(database("p", "local-restore", { restore: { sourceRef: { name: "source" } } } as never));
  // a restore of a dropped database: only its retained envelope is left
  databases.upsert(database("p", "undropped", { restore: { sourceRef: { name: "dropped" } } } as never));
  // databases on a server that names a KeyProtector, before they record any protector (R13)
  databases.upsert(database("a", "inherits", { serverRef: { name: "cmk" } }));

  it("R19 R31 a primary wakes a database naming it even when it does not list it yet (it may just have added it)", () => {
    expect(names(databasePeers(databases.get("p", "primary")!, databases))).toEqual(["s/unlisted"]);
  });

  it("R19 a database that may just have become a Primary wakes the secondaries naming it", () => {
    expect(names(databasePeers(databases.get("p", "not-yet-primary")!, databases))).toEqual(["s/early"]);
  });

  it("R24 R31 a restore source wakes its restores and the targets it allows; a restore wakes its source", () => {
    expect(names(databasePeers(databases.get("p", "source")!, databases))).toEqual([
      "p/local-restore",
      "t/allowed",
      "t/restored",
    ]);
    expect(names(databasePeers(databases.get("t", "restored")!, databases))).toEqual(["p/source"]);
    expect(names(databasePeers(databases.get("p", "local-restore")!, databases))).toEqual(["p/source"]);
  });

  const envelopeOf = (ns: string, owner: string) => ({
    metadata: {
      namespace: ns,
      name: envelopeSecretName("EncryptedDatabase", owner),
      labels: { [OWNER_KIND_LABEL]: "EncryptedDatabase", [OWNER_NAME_LABEL]: owner },
      annotations: { [OWNER_NAME_ANNOTATION]: owner },
    },
  });
  it.each<[string, ReturnType<typeof envelopeOf>, string[]]>([
    [
      "R19 a primary's envelope: its owner and its secondaries (they copy its DEK)",
      envelopeOf("p", "primary"),
      ["p/primary", "s/unlisted"],
    ],
    [
      "R21 a secondary's envelope: its owner and its primary (it checks the wrap under its next key)",
      envelopeOf("s", "unlisted"),
      ["p/primary", "s/unlisted"],
    ],
    [
      "R24 a source's envelope: its owner and its restores",
      envelopeOf("p", "source"),
      ["p/local-restore", "p/source", "t/restored"],
    ],
    [
      "R24 R25 the retained envelope of a dropped database wakes its restore",
      envelopeOf("p", "dropped"),
      ["p/dropped", "p/undropped"],
    ],
  ])("%s", (_n, secret, want) => {
    expect(names(databasesOfEnvelope(secret, databases))).toEqual(want);
  });

  it("R24 a KeyProtector named in spec.restore.keys wakes the restore", () => {
    expect(names(databasesOfKeyProtector(keyProtector("t", "rk"), databases, config, servers))).toEqual([
      "t/restored",
    ]);
  });

  it("R13 a server's KeyProtector wakes the databases on that server before they record a protector", () => {
    expect(names(databasesOfKeyProtector(keyProtector("a", "srv-kp"), databases, config, servers))).toEqual([
      "a/inherits",
    ]);
  });

  it("R20 R24 a database lacking a thumbprint is found by the index, in its namespace only", () => {
    databases.upsert(
      database("t", "lacking", {}, { missingThumbprints: [tp("e")] } as EncryptedDatabase["status"]),
    );
    expect(
      names(databasesOfKeyProtector(keyProtector("t", "any", { thumbprint: tp("e") }), databases, config)),
    ).toEqual(["t/lacking"]);
    expect(
      databasesOfKeyProtector(keyProtector("u", "any", { thumbprint: tp("e") }), databases, config),
    ).toEqual([]);
    // found it: the index forgets it
    databases.upsert(database("t", "lacking", {}, {} as EncryptedDatabase["status"]));
    expect(
      databasesOfKeyProtector(keyProtector("t", "any", { thumbprint: tp("e") }), databases, config),
    ).toEqual([]);
  });

  it("R7 R33 a Local KEK Secret wakes the KeyProtectors naming it, in its namespace only", () => {
    const kps = new Store<ReturnType<typeof keyProtector>>();
    indexKeyProtectors(kps);
    const named = (ns: string, name: string, secret: string) => {
      const kp = keyProtector(ns, name);
      kp.spec = { provider: "Local", local: { secretRef: { name: secret } } } as never;
      return kp;
    };
    kps.upsert(named("a", "one", "kek"));
    kps.upsert(named("a", "two", "kek"));
    kps.upsert(named("a", "other", "other-kek"));
    kps.upsert(named("b", "one", "kek"));
    const azure = keyProtector("a", "azure");
    azure.spec = {
      provider: "AzureKeyVault",
      azureKeyVault: { vaultURL: "https://v.vault.azure.net", keyName: "kek" },
    } as never;
    kps.upsert(azure);
    expect(names(keyProtectorsOfLocalKey({ metadata: { namespace: "a", name: "kek" } }, kps))).toEqual([
      "a/one",
      "a/two",
    ]);
  });
});
