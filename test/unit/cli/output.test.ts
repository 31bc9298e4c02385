import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import type { KeyFilter } from "../../../src/cli/args.js";
import {
  parseTarget,
  revalidatePatch,
  revertPatch,
  revertRefusal,
  rotatePatch,
} from "../../../src/cli/changes.js";
import { render, renderTable, shortTime } from "../../../src/cli/format.js";
import { findImpact, impactColumns, targetsOf } from "../../../src/cli/impact.js";
import { keyColumns, selectKeys, sortKeys } from "../../../src/cli/keys.js";
import { statusColumns, statusRows } from "../../../src/cli/status.js";
import { cond, database, entry, kp, server } from "./fixtures.js";

const A = "a".repeat(64);
const B = "b".repeat(64);
const C = "c".repeat(64);

describe("table and output formats", () => {
  const columns = [
    { header: "NAME", cell: (r: { n: string; s: string }) => r.n },
    { header: "STATE", cell: (r: { n: string; s: string }) => r.s },
  ];
  it("aligns columns three spaces apart and shows - for an empty cell", () => {
    expect(
      renderTable(columns, [
        { n: "orders", s: "Available" },
        { n: "x", s: "" },
      ]),
    ).toBe("NAME     STATE\norders   Available\nx        -\n");
  });
  it("prints JSON and YAML of the data, and a sentence for an empty table", () => {
    const rows = [{ n: "orders", s: "Available" }];
    expect(JSON.parse(render("json", columns, rows))).toEqual(rows);
    expect(parseYaml(render("yaml", columns, rows))).toEqual(rows);
    expect(render("table", columns, [], [], "nothing\n")).toBe("nothing\n");
    expect(render("json", columns, [])).toBe("[]\n");
  });
  it("shortTime drops milliseconds", () => {
    expect(shortTime("2025-01-31T12:00:00.000Z")).toBe("2025-01-31T12:00:00Z");
    expect(shortTime(undefined)).toBe("");
  });
});

describe("R12 R27 status across the three kinds", () => {
  it("one row per resource with state, protector source/type, short thumbprint, key access and ready", () => {
    const rows = statusRows(
      [kp("shop-key", { thumbprint: A })],
      [server("shop-db", { keyProtector: "shop-key", thumbprint: A })],
      [
        database("orders", { effective: { source: "Server", keyProtectorName: "shop-key", thumbprint: A } }),
        database("invoices", {
          own: "invoices-key",
          effective: { source: "Database", keyProtectorName: "invoices-key", thumbprint: B },
          state: "Inaccessible",
          conditions: [
            cond(
              "Ready",
              "False",
              "Inaccessible",
              "key access lost: restore it, then kubectl tde revalidate shop-db",
            ),
            cond("KeyAccessible", "False", "KeyDisabled"),
          ],
        }),
      ],
    );
    expect(
      rows.map((r) => [r.kind, r.name, r.state, r.protector, r.thumbprint, r.keyAccess, r.ready]),
    ).toEqual([
      ["KeyProtector", "shop-key", "Accessible", "Local shop-key-kek", "aaaaaaaaaaaa", "True", "True"],
      [
        "EncryptedServer",
        "shop-db",
        "Available",
        "Server/CustomerManaged shop-key",
        "aaaaaaaaaaaa",
        "True",
        "True",
      ],
      [
        "EncryptedDatabase",
        "invoices",
        "Inaccessible",
        "Database/CustomerManaged invoices-key",
        "bbbbbbbbbbbb",
        "False (KeyDisabled)",
        "False",
      ],
      [
        "EncryptedDatabase",
        "orders",
        "Available",
        "Server/CustomerManaged shop-key",
        "aaaaaaaaaaaa",
        "True",
        "True",
      ],
    ]);
    expect(rows[2]?.message).toContain("kubectl tde revalidate");
    const table = render("table", statusColumns(), rows);
    expect(table.split("\n")[0]).toMatch(
      /^KIND\s+NAMESPACE\s+NAME\s+STATE\s+PROTECTOR\s+THUMBPRINT\s+KEY-ACCESS\s+READY$/,
    );
    expect(table).toMatch(/edb\s+shop\s+invoices\s+Inaccessible/);
  });

  it("R10 a server whose key is lost shows the time left before it becomes Inaccessible, worked out from the fixed deadline", () => {
    const lost = server("shop-db", {
      keyProtector: "k",
      conditions: [cond("Ready", "False", "KeyDisabled"), cond("KeyAccessible", "False", "KeyDisabled")],
    });
    lost.status!.keyAccessLostSince = "2026-01-01T00:00:00Z";
    const at = (t: string) => statusRows([], [lost], [], new Date(t))[0]?.keyAccess;
    expect(at("2026-01-01T00:00:48Z")).toBe("False (KeyDisabled, Inaccessible in 9m 12s)");
    expect(at("2026-01-01T00:09:59Z")).toBe("False (KeyDisabled, Inaccessible in 1s)");
    // once Inaccessible, the plain cell: there is nothing left to count down
    lost.status!.state = "Inaccessible";
    expect(at("2026-01-01T00:10:01Z")).toBe("False (KeyDisabled)");
  });

  it("before the operator reports: Pending, Unknown, and the protector from the spec", () => {
    const s = server("new", { keyProtector: "k" });
    delete s.status;
    const [row] = statusRows([], [s], []);
    expect(row).toMatchObject({
      state: "Pending",
      protector: "Server/CustomerManaged k",
      keyAccess: "Unknown",
      ready: "Unknown",
    });
  });

  it("marks Ready computed for an older generation as stale, and a lost key on a KeyProtector", () => {
    const s = server("shop-db", { generation: 3 });
    const [row] = statusRows([], [s], []);
    expect(row?.ready).toBe("True (stale)");
    const [k] = statusRows(
      [
        kp("gone", {
          azure: true,
          conditions: [
            cond("Ready", "False", "KeyNotAccessible"),
            cond("Accessible", "False", "KeyNotFound"),
          ],
        }),
      ],
      [],
      [],
    );
    expect(k).toMatchObject({
      state: "NotAccessible",
      keyAccess: "False (KeyNotFound)",
      protector: "AzureKeyVault shop-vault.vault.azure.net/gone",
    });
  });

  it("sorts by namespace, then keys, servers, databases, then name", () => {
    const rows = statusRows(
      [kp("z", { namespace: "b" })],
      [server("s", { namespace: "a" })],
      [database("d", { namespace: "a" }), database("c", { namespace: "b" })],
    );
    expect(rows.map((r) => `${r.namespace}/${r.name}`)).toEqual(["a/s", "a/d", "b/z", "b/c"]);
  });
});

describe("R18 keys: the database's key history", () => {
  const history = [
    entry(A, "2025-01-01T00:00:00Z", "2025-02-01T00:00:00Z", "protector", "old-key"),
    entry(C, "2025-01-15T00:00:00Z", undefined, "additional", "escrow"),
    entry(B, "2025-02-01T00:00:00Z", undefined, "protector", "new-key"),
  ];
  const pick = (filter: KeyFilter) => sortKeys(selectKeys(history, filter)).map((e) => e.keyProtectorName);

  it("all, protector first then by start", () => {
    expect(pick({ kind: "all" })).toEqual(["old-key", "new-key", "escrow"]);
  });
  it("--filter current: the open entries", () => {
    expect(pick({ kind: "current" })).toEqual(["new-key", "escrow"]);
  });
  it("--at T: entries whose [since, until) holds T", () => {
    expect(pick({ kind: "at", at: new Date("2025-01-20T00:00:00Z") })).toEqual(["old-key", "escrow"]);
    expect(pick({ kind: "at", at: new Date("2025-02-01T00:00:00Z") })).toEqual(["new-key", "escrow"]);
    expect(pick({ kind: "at", at: new Date("2024-12-31T00:00:00Z") })).toEqual([]);
  });
  it("renders role, key protector, short thumbprint, since, until, key id", () => {
    const table = render("table", keyColumns(), sortKeys(history));
    expect(table.split("\n")[0]).toMatch(/^ROLE\s+KEYPROTECTOR\s+THUMBPRINT\s+SINCE\s+UNTIL\s+KEY-ID$/);
    expect(table).toMatch(/protector\s+old-key\s+aaaaaaaaaaaa\s+2025-01-01T00:00:00Z\s+2025-02-01T00:00:00Z/);
    expect(table).toMatch(/additional\s+escrow\s+cccccccccccc\s+2025-01-15T00:00:00Z\s+-/);
  });
});

describe("impact: what uses a KeyProtector", () => {
  const kps = [
    kp("shop-key", { thumbprint: A }),
    kp("other-key", { thumbprint: B }),
    kp("shop-key", { namespace: "eu", thumbprint: A }),
  ];
  const servers = [
    server("shop-db", { keyProtector: "shop-key", thumbprint: A }),
    server("other-db", { keyProtector: "other-key", thumbprint: B }),
    server("moving-db", { keyProtector: "shop-key", statusKeyProtector: "other-key", thumbprint: B }),
    server("eu-db", { namespace: "eu", keyProtector: "shop-key", thumbprint: A }),
  ];
  const dbs = [
    database("orders", {
      server: "shop-db",
      effective: { source: "Server", keyProtectorName: "shop-key", thumbprint: A },
    }),
    database("fresh", { server: "shop-db" }),
    database("invoices", {
      server: "other-db",
      own: "invoices-key",
      keys: ["shop-key"],
      effective: { source: "Database", keyProtectorName: "invoices-key", thumbprint: C },
    }),
    database("archive", {
      server: "other-db",
      effective: { source: "Server", keyProtectorName: "other-key", thumbprint: B },
      keyList: [
        entry(A, "2025-01-01T00:00:00Z", "2025-02-01T00:00:00Z", "protector", "shop-key"),
        entry(B, "2025-02-01T00:00:00Z", undefined, "protector", "other-key"),
      ],
    }),
    database("unrelated", {
      server: "other-db",
      effective: { source: "Server", keyProtectorName: "other-key", thumbprint: B },
    }),
  ];

  it("in one namespace: protector, inherited, requested, additional key and key history", () => {
    const inShop = (list: { metadata: { namespace?: string } }[]) =>
      list.filter((o) => o.metadata.namespace === "shop");
    const rows = findImpact(
      targetsOf(inShop(kps) as typeof kps, "shop-key"),
      inShop(servers) as typeof servers,
      inShop(dbs) as typeof dbs,
    );
    expect(rows.map((r) => [r.kind, r.name, r.uses])).toEqual([
      ["EncryptedServer", "moving-db", ["protector (requested)"]],
      ["EncryptedServer", "shop-db", ["protector"]],
      [
        "EncryptedDatabase",
        "archive",
        ["key history until 2025-02-01T00:00:00Z (restores to before then need it)"],
      ],
      ["EncryptedDatabase", "fresh", ["protector (inherited from server shop-db)"]],
      ["EncryptedDatabase", "invoices", ["additional key"]],
      ["EncryptedDatabase", "orders", ["protector (inherited from server shop-db)"]],
    ]);
    expect(render("table", impactColumns(), rows)).toMatch(/esrv\s+shop\s+shop-db\s+Available\s+protector/);
  });

  it("with -A: the KeyProtector of that name in every namespace, and the same key material anywhere", () => {
    const rows = findImpact(targetsOf(kps, "shop-key"), servers, dbs);
    expect(rows.filter((r) => r.namespace === "eu").map((r) => [r.name, r.uses])).toEqual([
      ["eu-db", ["protector"]],
    ]);
    const other = findImpact(targetsOf(kps, "other-key"), servers, dbs);
    expect(other.map((r) => `${r.namespace}/${r.name}`)).toEqual([
      "shop/moving-db",
      "shop/other-db",
      "shop/archive",
      "shop/unrelated",
    ]);
  });

  it("finds nothing for an unused key", () => {
    expect(findImpact([{ namespace: "shop", name: "spare" }], servers, dbs)).toEqual([]);
  });
});

describe("rotate, revalidate, revert: the patches", () => {
  it("rotate sets the server's protector or the database's encryptionProtector", () => {
    expect(rotatePatch("EncryptedServer", "k2")).toEqual({
      spec: { protector: { type: "CustomerManaged", keyProtectorRef: { name: "k2" } } },
    });
    expect(rotatePatch("EncryptedDatabase", "k2")).toEqual({
      spec: { encryptionProtector: { type: "CustomerManaged", keyProtectorRef: { name: "k2" } } },
    });
  });

  it("R11 revalidate writes a new revalidationToken, the time", () => {
    expect(revalidatePatch(new Date("2025-05-05T05:05:05Z"))).toEqual({
      spec: { revalidationToken: "2025-05-05T05:05:05.000Z" },
    });
  });

  it("revert removes encryptionProtector with a merge patch", () => {
    expect(revertPatch()).toEqual({ spec: { encryptionProtector: null } });
  });

  it("R15 revert is refused on a server with a customer-managed key, allowed on the service-managed key", () => {
    const own = database("invoices", {
      own: "invoices-key",
      effective: { source: "Database", keyProtectorName: "invoices-key", thumbprint: B },
    });
    const refusal = revertRefusal(own, server("shop-db", { keyProtector: "shop-key", thumbprint: A }));
    expect(refusal).toMatch(/^RevertToServerKeyNotAllowed: R15/);
    expect(revertRefusal(own, server("shop-db"))).toBeUndefined();
    expect(revertRefusal(database("orders"), server("shop-db"))).toMatch(/already inherits/);
  });

  it("parseTarget reads NAME and kind/NAME", () => {
    expect(parseTarget("orders")).toEqual({ name: "orders" });
    expect(parseTarget("edb/orders")).toEqual({ kind: "EncryptedDatabase", name: "orders" });
    expect(parseTarget("encryptedservers.tde.dev/shop")).toEqual({ kind: "EncryptedServer", name: "shop" });
    expect(() => parseTarget("pod/x")).toThrow(/not a server or database/);
  });
});
