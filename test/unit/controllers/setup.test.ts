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
  databasesOfKeyProtector,
  databasesOfServer,
  envelopeOwnerKeys,
  indexDatabases,
  indexServers,
  replicationPeers,
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
    expect(names(replicationPeers(secondary))).toEqual(["p/primary"]);
    expect(names(replicationPeers(primary))).toEqual(["s/sec"]);
    expect(replicationPeers(databases.get("a", "own")!)).toEqual([]);
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
