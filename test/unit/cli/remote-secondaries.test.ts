import { describe, expect, it } from "vitest";
import type { EncryptedDatabase, RemoteSecondaryStatus } from "../../../src/api/index.js";
import { render } from "../../../src/cli/format.js";
import { findImpact, impactColumns } from "../../../src/cli/impact.js";
import { statusColumns, statusRows } from "../../../src/cli/status.js";
import { database } from "./fixtures.js";

const A = "a".repeat(64);
const B = "b".repeat(64);

const primaryWith = (remote: RemoteSecondaryStatus[]): EncryptedDatabase => {
  const db = database("orders", { effective: { source: "Database", keyProtectorName: "e1", thumbprint: A } });
  return { ...db, status: { ...db.status, remoteSecondaries: remote } } as EncryptedDatabase;
};

describe("R19-R22 kubectl tde status shows a primary's secondaries in other clusters", () => {
  const db = primaryWith([
    {
      cluster: "west",
      namespace: "prod",
      name: "orders",
      state: "Linked",
      keyListSynced: "True",
      protectorThumbprint: A,
    },
    { cluster: "north", namespace: "prod", name: "orders", state: "Unreachable", reason: "Unreachable" },
  ]);

  it("one row each, right after its primary, with the link, the protector and KeyListSynced", () => {
    const rows = statusRows([], [], [database("audit"), db]);
    expect(rows.map((r) => [r.cluster ?? "", r.name])).toEqual([
      ["", "audit"],
      ["", "orders"],
      ["west", "orders"],
      ["north", "orders"],
    ]);
    expect(rows[2]).toMatchObject({
      state: "Linked",
      protector: "secondary of shop/orders",
      thumbprint: A.slice(0, 12),
      ready: "KeyListSynced=True",
    });
    expect(rows[3]).toMatchObject({ state: "Unreachable (Unreachable)", ready: "Unknown" });
    const table = render("table", statusColumns(rows), rows);
    expect(table.split("\n")[0]).toMatch(/^KIND\s+CLUSTER\s+NAMESPACE\s+NAME/);
    expect(table).toMatch(/edb\s+west\s+prod\s+orders\s+Linked\s+secondary of shop\/orders/);
  });

  it("no CLUSTER column while every row is in this cluster", () => {
    const rows = statusRows([], [], [database("audit")]);
    expect(render("table", statusColumns(rows), rows).split("\n")[0]).toMatch(/^KIND\s+NAMESPACE/);
  });
});

describe("R3 R21 kubectl tde impact names secondaries in other clusters holding the same key material", () => {
  it("by thumbprint, with their cluster", () => {
    const db = primaryWith([
      { cluster: "west", namespace: "prod", name: "orders", state: "Linked", protectorThumbprint: A },
      { cluster: "north", namespace: "prod", name: "orders", state: "Linked", protectorThumbprint: B },
    ]);
    const rows = findImpact([{ namespace: "shop", name: "e1", thumbprint: A }], [], [db]);
    expect(rows.map((r) => [r.cluster ?? "", r.namespace, r.name])).toEqual([
      ["", "shop", "orders"],
      ["west", "prod", "orders"],
    ]);
    expect(rows[1]?.uses).toEqual(["protector (same key material, secondary of shop/orders)"]);
    expect(render("table", impactColumns(rows), rows)).toMatch(/edb\s+west\s+prod\s+orders\s+Linked/);
  });
});
