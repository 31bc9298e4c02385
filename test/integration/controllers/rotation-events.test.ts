import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestOperator, type TestOperator } from "../../harness/operator.js";
import { type Api, api, cond, type EncryptedDatabase, kc, suffix, waitFor } from "./helpers.js";

const id = suffix();
const ns = `int-${id}`;
const opNs = `int-op-${id}`;
const server = "srv";
const key = "k-main";
const other = "k-other";
const databases = ["db-a", "db-b", "db-c"];
let a: Api;
let op: TestOperator;

/** Events of `reason` about one object of the namespace, counting a recorder's repeats. */
async function events(kind: string, name: string, reason: string) {
  const list = await a.core.listNamespacedEvent({
    namespace: ns,
    fieldSelector: `involvedObject.kind=${kind},involvedObject.name=${name},reason=${reason}`,
  });
  return {
    count: list.items.reduce((sum, e) => sum + (e.count ?? 1), 0),
    messages: list.items.map((e) => e.message ?? ""),
  };
}

const keyIDOf = (db: string) =>
  a.get<EncryptedDatabase>("EncryptedDatabase", ns, db).then((o) => o.status?.effectiveProtector?.keyID);

beforeAll(async () => {
  a = api(kc());
  op = await startTestOperator({ watchNamespaces: [ns], operatorNamespace: opNs });
  for (const k of [key, other]) {
    await a.local.createKey(ns, k, { size: 2048 });
    await a.create("KeyProtector", ns, k, { provider: "Local", local: { secretRef: { name: k } } });
  }
  await a.create("EncryptedServer", ns, server, { protector: { type: "ServiceManaged" } });
  for (const db of databases)
    await a.create("EncryptedDatabase", ns, db, {
      serverRef: { name: server },
      encryptionProtector: { type: "CustomerManaged", keyProtectorRef: { name: key } },
    });
  for (const db of databases)
    await waitFor(
      `${db} Ready`,
      () => a.get<EncryptedDatabase>("EncryptedDatabase", ns, db),
      (o) => cond(o, "Ready")?.status === "True",
    );
});

afterAll(async () => {
  await op?.stop();
});

describe("R12 R16 what a rotation and a move to another key tell, on a real API server", () => {
  it("tells a new version of a key once, on its KeyProtector, and not once per re-wrapped DEK", async () => {
    const before = await keyIDOf(databases[0]!);
    const rotated = await a.local.rotateKey(ns, key, { size: 2048 });
    expect(rotated.keyID).not.toBe(before);
    for (const db of databases)
      await waitFor(
        `${db} re-wrapped under the new version`,
        () => keyIDOf(db),
        (k) => k === rotated.keyID,
      );
    const told = await waitFor(
      "the KeyRotated Event",
      () => events("KeyProtector", key, "KeyRotated"),
      (e) => e.count > 0,
    );
    expect(told.count).toBe(1);
    expect(told.messages[0]).toContain(`now ${rotated.keyID}`);
    expect(told.messages[0]).toContain(`in place of ${before}`);
    expect(told.messages[0]).toContain(`the ${databases.length} dependants'`);
    for (const db of databases)
      expect((await events("EncryptedDatabase", db, "ProtectorChanged")).count).toBe(0);
    // the other key was not rotated: nothing said of it
    expect((await events("KeyProtector", other, "KeyRotated")).count).toBe(0);
  });

  it("tells a move to another key on the database that moved, with both keys", async () => {
    const moved = databases[0]!;
    const from = await keyIDOf(moved);
    await a.patch("EncryptedDatabase", ns, moved, {
      spec: { encryptionProtector: { type: "CustomerManaged", keyProtectorRef: { name: other } } },
    });
    const to = await waitFor(
      `${moved} re-wrapped under ${other}`,
      () => keyIDOf(moved),
      (k) => k?.startsWith(`local://${ns}/${other}/`) === true,
    );
    const told = await waitFor(
      "the ProtectorChanged Event",
      () => events("EncryptedDatabase", moved, "ProtectorChanged"),
      (e) => e.count > 0,
    );
    expect(told.count).toBe(1);
    expect(told.messages[0]).toContain(`from ${from} to ${to}`);
    for (const db of databases.slice(1))
      expect((await events("EncryptedDatabase", db, "ProtectorChanged")).count).toBe(0);
    // a move is no new version of either key
    expect((await events("KeyProtector", other, "KeyRotated")).count).toBe(0);
    expect((await events("KeyProtector", key, "KeyRotated")).count).toBe(1);
  });
});
