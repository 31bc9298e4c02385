import { describe, expect, it } from "vitest";
import type { EncryptedDatabase, EncryptedServer, KeyProtector } from "../../../src/api/index.js";
import { parseCommandLine } from "../../../src/cli/args.js";
import { renderTable } from "../../../src/cli/format.js";
import {
  keyColumns,
  refusal,
  versionColumns,
  versionRow,
  wouldLoseAccess,
} from "../../../src/cli/local-key.js";
import type { KeyDescription } from "../../../src/kms/provider.js";
import { usage } from "./fixtures.js";

describe("R7 kubectl tde local-key: the command line", () => {
  it("each action with its flags", () => {
    expect(parseCommandLine(["local-key", "list", "-n", "shop"])).toEqual({
      name: "local-key",
      request: { action: "list" },
      namespace: "shop",
      allNamespaces: false,
      output: "table",
    });
    expect(parseCommandLine(["local-key", "list", "-A", "-o", "json"])).toMatchObject({
      request: { action: "list" },
      allNamespaces: true,
      output: "json",
    });
    expect(
      parseCommandLine([
        "local-key",
        "create",
        "k",
        "--size",
        "2048",
        "--expires",
        "2030-01-01T00:00:00Z",
        "--disabled",
      ]),
    ).toMatchObject({
      request: {
        action: "create",
        key: "k",
        size: 2048,
        expiresOn: new Date("2030-01-01T00:00:00Z"),
        disabled: true,
      },
    });
    expect(parseCommandLine(["local-key", "rotate", "k"])).toMatchObject({
      request: { action: "rotate", key: "k" },
    });
    expect(parseCommandLine(["local-key", "disable", "k", "--key-version", "v1", "--force"])).toMatchObject({
      request: { action: "disable", key: "k", version: "v1", force: true },
    });
    expect(parseCommandLine(["local-key", "import", "k", "--from-file", "/tmp/k.pem"])).toMatchObject({
      request: { action: "import", key: "k", fromFile: "/tmp/k.pem" },
    });
    for (const action of ["enable", "delete", "recover"])
      expect(parseCommandLine(["local-key", action, "k"])).toMatchObject({ request: { action, key: "k" } });
  });

  it.each([
    [
      ["local-key"],
      "local-key needs an action: create, rotate, disable, enable, import, list, delete, recover",
    ],
    [["local-key", "purge", "k"], 'not "purge"'],
    [["local-key", "create"], "local-key create needs the key's name: kubectl tde local-key create NAME"],
    [["local-key", "create", "a", "b"], "takes one key name, got 2"],
    [["local-key", "create", "Bad_Name"], "is not a Secret name"],
    [
      ["local-key", "create", "k", "--size", "1000"],
      "--size must be an RSA key size in bits from 2048 to 8192",
    ],
    [["local-key", "create", "k", "--expires", "soon"], "--expires must be a time such as"],
    [["local-key", "enable", "k", "--force"], "--force is only for local-key disable, delete"],
    [["local-key", "delete", "k", "--size", "3072"], "--size is only for local-key create, rotate"],
    [["local-key", "import", "k"], "local-key import needs --from-file PATH"],
    [["local-key", "rotate", "k", "-A"], "-A/--all-namespaces is only for local-key list"],
    [["status", "--force"], "--force is only for local-key"],
  ])("refuses %j: %s", (argv, message) => {
    expect(usage(argv)).toContain(message);
  });
});

const meta = (name: string, namespace = "shop") => ({ name, namespace });
const kp = (name: string, secret: string): KeyProtector =>
  ({
    metadata: meta(name),
    spec: { provider: "Local", local: { secretRef: { name: secret } } },
  }) as KeyProtector;
const id = (v: string) => `local://shop/shop-kek/${v}`;
const srv = (name: string, keyProtector: string, version: string): EncryptedServer =>
  ({
    metadata: meta(name),
    spec: { protector: { type: "CustomerManaged", keyProtectorRef: { name: keyProtector } } },
    status: {
      state: "Available",
      protector: {
        type: "CustomerManaged",
        keyProtectorName: keyProtector,
        keyID: id(version),
        thumbprint: "t",
        thumbprintShort: "t",
      },
    },
  }) as unknown as EncryptedServer;
const db = (
  name: string,
  server: string,
  extra: Partial<EncryptedDatabase["spec"]> = {},
): EncryptedDatabase =>
  ({
    metadata: meta(name),
    spec: { serverRef: { name: server }, ...extra },
    status: { state: "Available" },
  }) as unknown as EncryptedDatabase;

describe("R7 local-key refuses what would lose a DEK, naming the dependants (the impact decision)", () => {
  const kps = [kp("shop-key", "shop-kek"), kp("other-key", "other-kek")];
  const servers = [
    srv("old", "shop-key", "v1"),
    srv("new", "shop-key", "v2"),
    srv("elsewhere", "other-key", "x"),
  ];
  const dbs = [
    db("orders", "new"),
    db("escrowed", "elsewhere", { keys: [{ keyProtectorRef: { name: "shop-key" } }] }),
  ];

  it("deleting the key: every dependant whose protector it is, inherited ones too, not those keeping it as an additional key", () => {
    const rows = wouldLoseAccess({ namespace: "shop", key: "shop-kek" }, kps, servers, dbs);
    expect(rows.map((r) => `${r.kind}/${r.name}`)).toEqual([
      "EncryptedServer/new",
      "EncryptedServer/old",
      "EncryptedDatabase/orders",
    ]);
    expect(refusal("deleting local key shop/shop-kek", rows)).toBe(
      "refused: deleting local key shop/shop-kek would make these 3 dependants lose key access and become Inaccessible once their grace period runs out: esrv/new (protector), esrv/old (protector), edb/orders (protector (inherited from server new)). Rotate them to another key first (kubectl tde rotate), or repeat with --force to do it anyway",
    );
  });

  it("disabling the current version hurts every protected dependant (R6: never a fall back to an older version)", () => {
    expect(
      wouldLoseAccess(
        { namespace: "shop", key: "shop-kek", version: "v2", currentVersion: "v2" },
        kps,
        servers,
        dbs,
      ),
    ).toHaveLength(3);
  });

  it("disabling an older version hurts only what it still wraps", () => {
    const rows = wouldLoseAccess(
      { namespace: "shop", key: "shop-kek", version: "v1", currentVersion: "v2" },
      kps,
      servers,
      dbs,
    );
    expect(rows.map((r) => r.name)).toEqual(["old"]);
    expect(
      wouldLoseAccess(
        { namespace: "shop", key: "shop-kek", version: "v0", currentVersion: "v2" },
        kps,
        servers,
        dbs,
      ),
    ).toEqual([]);
  });

  it("a key no KeyProtector names, or the same name in another namespace, protects nothing", () => {
    expect(wouldLoseAccess({ namespace: "shop", key: "unused-kek" }, kps, servers, dbs)).toEqual([]);
    expect(wouldLoseAccess({ namespace: "other", key: "shop-kek" }, kps, servers, dbs)).toEqual([]);
  });
});

describe("R7 local-key output", () => {
  const d: KeyDescription = {
    keyID: "local://shop/shop-kek/abc",
    version: "abc",
    keyType: "RSA",
    keySize: 3072,
    enabled: false,
    createdOn: new Date("2026-01-01T00:00:00.000Z"),
    expiresOn: new Date("2027-01-01T00:00:00.000Z"),
    publicKeyDer: Buffer.from("public"),
    thumbprint: "0123456789abcdef",
    publicKeyKnown: true,
  };

  it("a version row holds no key material, and prints as a table", () => {
    const row = versionRow("shop", "shop-kek", d, true);
    expect(row).toEqual({
      key: "shop-kek",
      namespace: "shop",
      version: "abc",
      current: true,
      enabled: false,
      size: 3072,
      created: "2026-01-01T00:00:00.000Z",
      expires: "2027-01-01T00:00:00.000Z",
      thumbprint: "0123456789abcdef",
      keyID: "local://shop/shop-kek/abc",
    });
    expect(renderTable(versionColumns(), [row])).toBe(
      [
        "KEY        VERSION   CURRENT   ENABLED   SIZE   CREATED                NOT-BEFORE   EXPIRES                THUMBPRINT",
        "shop-kek   abc       yes       false     3072   2026-01-01T00:00:00Z   -            2027-01-01T00:00:00Z   0123456789ab",
        "",
      ].join("\n"),
    );
  });

  it("a key row says Deleted and when, and which KeyProtectors name it", () => {
    const table = renderTable(keyColumns(), [
      {
        namespace: "shop",
        name: "shop-kek",
        state: "Deleted",
        deletedAt: "2026-02-01T00:00:00.000Z",
        versions: 2,
        current: versionRow("shop", "shop-kek", d, true),
        keyProtectors: ["shop-key"],
      },
    ]);
    expect(table).toContain("Deleted 2026-02-01T00:00:00Z");
    expect(table).toContain("shop-key");
  });
});
