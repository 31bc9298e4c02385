import { generateKeyPairSync } from "node:crypto";
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
const nsA = `geo-a-${id}`; // the primary's region
const nsB = `geo-b-${id}`; // a second region: three secondaries
const nsC = `geo-c-${id}`; // a third region: one secondary, keys added late
const opNs = `geo-op-${id}`;
let a: Api;
let op: TestOperator;

const pem = () =>
  generateKeyPairSync("rsa", { modulusLength: 2048 })
    .privateKey.export({ type: "pkcs8", format: "pem" })
    .toString();
const material = { one: pem(), two: pem(), three: pem() };

const db = (ns: string, name: string) => a.get<EncryptedDatabase>("EncryptedDatabase", ns, name);
const thumbprintOf = async (ns: string, kp: string) =>
  (
    await waitFor(
      `${ns}/${kp} resolved`,
      () => a.get<KeyProtector>("KeyProtector", ns, kp),
      (o) => Boolean(o.status?.thumbprint),
    )
  ).status!.thumbprint!;

/** The same key material imported into a region's "vault" (a Local key), and a KeyProtector for it. */
async function importKey(ns: string, kp: string, pemText: string) {
  await a.local.importKey(ns, `${kp}-kek`, pemText);
  await a.create("KeyProtector", ns, kp, {
    provider: "Local",
    local: { secretRef: { name: `${kp}-kek` } },
    requirements: { requireRecoverable: false },
  });
  return thumbprintOf(ns, kp);
}

async function secondary(ns: string, name: string, kp: string, extra: Record<string, unknown> = {}) {
  await a.create("EncryptedDatabase", ns, name, {
    serverRef: { name: "dr-server" },
    encryptionProtector: { type: "CustomerManaged", keyProtectorRef: { name: kp } },
    replication: { role: "Secondary", primaryRef: { namespace: nsA, name: "orders" } },
    ...extra,
  });
}

beforeAll(async () => {
  a = api(kc());
  op = await startTestOperator({ watchNamespaces: [nsA, nsB, nsC], operatorNamespace: opNs });
});

afterAll(async () => {
  await op?.stop();
});

describe("geo-replication", () => {
  const t: Record<string, string> = {};

  it("R19 R20 R23 a primary with 4 secondaries in other regions: each holds the primary's DEK under its own key", async () => {
    t.one = await importKey(nsA, "a1", material.one);
    await importKey(nsA, "a2", material.two);
    await importKey(nsA, "a3", material.three);
    expect(await importKey(nsB, "b1", material.one)).toBe(t.one);
    await importKey(nsB, "b2", material.two);
    await importKey(nsB, "b3", material.three);
    expect(await importKey(nsC, "c1", material.one)).toBe(t.one);

    await a.create("EncryptedServer", nsA, "primary-server", {
      protector: { type: "CustomerManaged", keyProtectorRef: { name: "a1" } },
    });
    for (const ns of [nsB, nsC]) {
      await a.create("EncryptedServer", ns, "dr-server", {
        protector: { type: "CustomerManaged", keyProtectorRef: { name: ns === nsB ? "b1" : "c1" } },
        revalidation: "Automatic",
      });
    }
    await a.create("EncryptedDatabase", nsA, "orders", {
      serverRef: { name: "primary-server" },
      encryptionProtector: { type: "CustomerManaged", keyProtectorRef: { name: "a1" } },
      replication: {
        role: "Primary",
        secondaries: [
          { namespace: nsB, name: "s1" },
          { namespace: nsB, name: "s2" },
          { namespace: nsB, name: "s3" },
          { namespace: nsC, name: "s4" },
        ],
      },
    });
    const primary = await waitFor(
      "primary Ready",
      () => db(nsA, "orders"),
      (o) => cond(o, "Ready")?.status === "True",
    );
    await secondary(nsB, "s1", "b1");
    await secondary(nsB, "s2", "b1");
    await secondary(nsB, "s3", "b1", { autoRotation: false });
    await secondary(nsC, "s4", "c1");
    for (const [ns, name] of [
      [nsB, "s1"],
      [nsB, "s2"],
      [nsB, "s3"],
      [nsC, "s4"],
    ] as const) {
      const s = await waitFor(
        `${name} Available`,
        () => db(ns, name),
        (o) => o.status?.state === "Available",
      );
      expect(s.status?.dekID).toBe(primary.status?.dekID);
      expect(s.status?.effectiveProtector?.thumbprint).toBe(t.one);
      expect(cond(s, "KeyListSynced")?.status).toBe("True");
      expect(cond(s, "Revalidated")?.status).toBe("True"); // R23: a replica starts Inaccessible until revalidated
      const envelope = await readEnvelope(a, ns, s.status!.envelopeSecretName!);
      expect(envelope.wraps[0]?.keyID).toMatch(new RegExp(`^local://${ns}/`));
    }
  });

  it("R19 a fifth secondary is refused, and so is a chain", async () => {
    await secondary(nsB, "s5", "b1");
    const fifth = await waitFor(
      "fifth refused",
      () => db(nsB, "s5"),
      (o) => cond(o, "ReplicationLinked")?.status === "False",
    );
    expect(cond(fifth, "ReplicationLinked")?.reason).toBe("TooManySecondaries");
    expect(fifth.status?.dekID).toBeUndefined();

    await a.create("EncryptedDatabase", nsB, "chained", {
      serverRef: { name: "dr-server" },
      encryptionProtector: { type: "CustomerManaged", keyProtectorRef: { name: "b1" } },
      replication: { role: "Secondary", primaryRef: { namespace: nsB, name: "s1" } },
    });
    const chained = await waitFor(
      "chain refused",
      () => db(nsB, "chained"),
      (o) => cond(o, "ReplicationLinked")?.status === "False",
    );
    expect(cond(chained, "ReplicationLinked")?.reason).toBe("PrimaryIsNotPrimary");
    expect(chained.status?.dekID).toBeUndefined();
  });

  it("R21 a secondary missing the new key blocks the primary's rotation with its name; nothing switches", async () => {
    t.two = await thumbprintOf(nsA, "a2");
    await a.patch("EncryptedDatabase", nsA, "orders", {
      spec: { encryptionProtector: { keyProtectorRef: { name: "a2" } } },
    });
    const blocked = await waitFor(
      "primary blocked",
      () => db(nsA, "orders"),
      (o) => cond(o, "RotationBlocked")?.reason === "SecondaryCannotUseKey",
    );
    expect(cond(blocked, "RotationBlocked")?.status).toBe("True");
    expect(blocked.status?.conditions?.find((c) => c.type === "RotationBlocked")?.message).toContain(
      `${nsC}/s4`,
    );
    expect(blocked.status?.effectiveProtector?.thumbprint).toBe(t.one);
    const s4 = await waitFor(
      "s4 reports the missing key",
      () => db(nsC, "s4"),
      (o) => cond(o, "KeyListSynced")?.status === "False",
    );
    expect(s4.status?.missingThumbprints).toContain(t.two);
    for (const name of ["s1", "s2"])
      expect((await db(nsB, name)).status?.effectiveProtector?.thumbprint).toBe(t.one);
  });

  it("R21 once every secondary holds the key: the primary switches, then the secondaries", async () => {
    await importKey(nsC, "c2", material.two);
    await waitFor(
      "primary switched",
      () => db(nsA, "orders"),
      (o) => o.status?.effectiveProtector?.thumbprint === t.two,
      45_000,
    );
    for (const [ns, name] of [
      [nsB, "s1"],
      [nsB, "s2"],
      [nsC, "s4"],
    ] as const) {
      await waitFor(
        `${name} follows`,
        () => db(ns, name),
        (o) => o.status?.effectiveProtector?.thumbprint === t.two,
      );
    }
    // s3 does not follow by itself (autoRotation: false): it keeps the old key, retained wraps aside
    const s3 = await db(nsB, "s3");
    expect(s3.status?.effectiveProtector?.thumbprint).toBe(t.one);
    expect(cond(s3, "KeyListSynced")?.status).toBe("True");
  });

  it("R17 the next rotation waits while a secondary still uses the old key, and goes ahead when it moves", async () => {
    t.three = await thumbprintOf(nsA, "a3");
    await importKey(nsC, "c3", material.three);
    await a.patch("EncryptedDatabase", nsA, "orders", {
      spec: { encryptionProtector: { keyProtectorRef: { name: "a3" } } },
    });
    const waiting = await waitFor(
      "R17 blocker",
      () => db(nsA, "orders"),
      (o) => cond(o, "RotationBlocked")?.reason === "KeyRotationAttemptedWhileOldThumbprintInUse",
    );
    expect(waiting.status?.conditions?.find((c) => c.type === "RotationBlocked")?.message).toContain(
      `${nsB}/s3`,
    );
    expect(waiting.status?.effectiveProtector?.thumbprint).toBe(t.two);

    await a.patch("EncryptedDatabase", nsB, "s3", { spec: { autoRotation: true } });
    await waitFor(
      "s3 moves to the current key",
      () => db(nsB, "s3"),
      (o) => o.status?.effectiveProtector?.thumbprint !== t.one,
      45_000,
    );
    const done = await waitFor(
      "primary rotated",
      () => db(nsA, "orders"),
      (o) => o.status?.effectiveProtector?.thumbprint === t.three,
      45_000,
    );
    expect(cond(done, "RotationBlocked")?.status).toBe("False");
    const history = done.status?.keyList ?? [];
    expect(history.filter((e) => e.role === "protector").map((e) => e.thumbprint)).toEqual([
      t.one,
      t.two,
      t.three,
    ]);
  });

  it("R22 promotion of a secondary needs no key work", async () => {
    const before = await waitFor(
      "s1 on the newest key",
      () => db(nsB, "s1"),
      (o) => o.status?.effectiveProtector?.thumbprint === t.three,
      45_000,
    );
    const envelopeBefore = await readEnvelope(a, nsB, before.status!.envelopeSecretName!);
    op.resetCounts();
    // promoted with the key it already holds named as its own protector (a following secondary uses
    // its region's copy of the primary's key): the DEK is already wrapped there
    const holding = before.status?.effectiveProtector?.keyProtectorName;
    expect(holding).toBe("b3");
    await a.patch("EncryptedDatabase", nsB, "s1", {
      spec: {
        replication: { role: "Primary", primaryRef: null },
        encryptionProtector: { type: "CustomerManaged", keyProtectorRef: { name: holding } },
      },
    });
    const promoted = await waitFor(
      "promoted",
      () => db(nsB, "s1"),
      (o) =>
        o.status?.observedGeneration === o.metadata?.generation && o.spec.replication?.role === "Primary",
    );
    expect(promoted.status?.state).toBe("Available");
    expect(promoted.status?.dekID).toBe(before.status?.dekID);
    expect(await readEnvelope(a, nsB, promoted.status!.envelopeSecretName!)).toEqual(envelopeBefore);
    expect(op.counts.kms.dekWrap ?? 0).toBe(0);
  });
});
