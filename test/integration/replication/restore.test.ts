import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startTestOperator, type TestOperator } from "../../harness/operator.js";
import {
  type Api,
  api,
  cond,
  type EncryptedDatabase,
  type KeyProtector,
  kc,
  readEnvelope,
  suffix,
  waitFor,
} from "../controllers/helpers.js";

const id = suffix();
const ns = `restore-${id}`;
const opNs = `restore-op-${id}`;
let a: Api;
let op: TestOperator;

const db = (name: string) => a.get<EncryptedDatabase>("EncryptedDatabase", ns, name);
const exists = async (name: string) => {
  try {
    await a.core.readNamespacedSecret({ namespace: ns, name });
    return true;
  } catch {
    return false;
  }
};

async function keyProtector(name: string) {
  await a.create("KeyProtector", ns, name, {
    provider: "Local",
    local: { secretRef: { name: `${name}-kek` } },
  });
  return (
    await waitFor(
      `${name} Ready`,
      () => a.get<KeyProtector>("KeyProtector", ns, name),
      (o) => cond(o, "Ready")?.status === "True",
    )
  ).status!.thumbprint!;
}

beforeAll(async () => {
  a = api(kc());
  op = await startTestOperator({ watchNamespaces: [ns], operatorNamespace: opNs });
});

afterAll(async () => {
  await op?.stop();
});

describe("restore", () => {
  const t: Record<string, string> = {};
  let pointInTime = "";
  let source: EncryptedDatabase;

  it("R18 the source's key history says which keys protected it when", async () => {
    t.r1 = await keyProtector("r1");
    t.r2 = await keyProtector("r2");
    await a.create("EncryptedServer", ns, "srv", {
      protector: { type: "ServiceManaged" },
      revalidation: "Manual",
    });
    await a.create("EncryptedDatabase", ns, "src", {
      serverRef: { name: "srv" },
      encryptionProtector: { type: "CustomerManaged", keyProtectorRef: { name: "r1" } },
    });
    await waitFor(
      "source Ready",
      () => db("src"),
      (o) => cond(o, "Ready")?.status === "True",
    );
    await new Promise((r) => setTimeout(r, 1_100));
    pointInTime = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 1_100));
    await a.patch("EncryptedDatabase", ns, "src", {
      spec: { encryptionProtector: { keyProtectorRef: { name: "r2" } } },
    });
    source = await waitFor(
      "source on r2",
      () => db("src"),
      (o) => o.status?.effectiveProtector?.thumbprint === t.r2,
    );
    expect(source.status?.keyList?.find((e) => e.thumbprint === t.r1)?.until).toBeDefined();
  });

  it("R24 a point-in-time restore without the key that protected the source then is refused by thumbprint, and nothing is created", async () => {
    await a.create("EncryptedDatabase", ns, "missing-key", {
      serverRef: { name: "srv" },
      restore: { sourceRef: { name: "src" }, pointInTime, keys: [{ keyProtectorRef: { name: "r2" } }] },
    });
    const refused = await waitFor(
      "refused",
      () => db("missing-key"),
      (o) => cond(o, "Restored")?.reason === "MissingRestoreKeys",
    );
    expect(refused.status?.missingThumbprints).toEqual([t.r1]);
    expect(refused.status?.conditions?.find((c) => c.type === "Restored")?.message).toContain(t.r1);
    expect(refused.status?.dekID).toBeUndefined();
    expect(await exists("tde-edb-missing-key")).toBe(false);
  });

  it("R23 R24 with the needed key the restore gets the source's DEK and starts Inaccessible until revalidated", async () => {
    await a.create("EncryptedDatabase", ns, "pitr", {
      serverRef: { name: "srv" },
      restore: { sourceRef: { name: "src" }, pointInTime, keys: [{ keyProtectorRef: { name: "r1" } }] },
    });
    const copy = await waitFor(
      "restored",
      () => db("pitr"),
      (o) => cond(o, "Restored")?.status === "True",
    );
    expect(copy.status?.dekID).toBe(source.status?.dekID);
    expect(copy.status?.state).toBe("Inaccessible");
    const envelope = await readEnvelope(a, ns, copy.status!.envelopeSecretName!);
    expect(envelope.kcv).toBe((await readEnvelope(a, ns, source.status!.envelopeSecretName!)).kcv);

    await a.patch("EncryptedServer", ns, "srv", { spec: { revalidationToken: "after-restore" } });
    await waitFor(
      "revalidated",
      () => db("pitr"),
      (o) => o.status?.state === "Available",
    );
  });

  it("R24 R25 a dropped database is restored from its retained envelope", async () => {
    const dekID = source.status?.dekID;
    await a.delete("EncryptedDatabase", ns, "src");
    await waitFor(
      "source gone",
      async () => {
        try {
          await db("src");
          return false;
        } catch {
          return true;
        }
      },
      (gone) => gone,
    );
    expect(await exists("tde-edb-src")).toBe(true);
    await a.create("EncryptedDatabase", ns, "undropped", {
      serverRef: { name: "srv" },
      restore: {
        sourceRef: { name: "src" },
        keys: [{ keyProtectorRef: { name: "r1" } }, { keyProtectorRef: { name: "r2" } }],
      },
    });
    const copy = await waitFor(
      "restored",
      () => db("undropped"),
      (o) => cond(o, "Restored")?.status === "True",
    );
    expect(copy.status?.dekID).toBe(dekID);
  });
});
