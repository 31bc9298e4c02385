import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { envelopeFromCache } from "../../../src/controllers/envelope-summary.js";
import { protectorWrap } from "../../../src/crypto/index.js";
import { SERVICE_MANAGED_KEY_NAME } from "../../../src/kms/local.js";
import { startTestOperator, type TestOperator } from "../../harness/operator.js";
import {
  type Api,
  api,
  cond,
  type EncryptedDatabase,
  type EncryptedServer,
  type KeyProtector,
  kc,
  readEnvelope,
  suffix,
  unwrapsWithKcv,
  waitFor,
} from "./helpers.js";

const id = suffix();
const ns = `ctl-${id}`;
const opNs = `ctl-op-${id}`;
let a: Api;
let op: TestOperator;

const ready = (o: { status?: { conditions?: { type: string; status: string; reason: string }[] } }) =>
  cond(o, "Ready")?.status === "True";
const server = (name: string) => a.get<EncryptedServer>("EncryptedServer", ns, name);
const database = (name: string) => a.get<EncryptedDatabase>("EncryptedDatabase", ns, name);
const keyProtector = (name: string) => a.get<KeyProtector>("KeyProtector", ns, name);

async function localKeyProtector(name: string, keyName = name) {
  await a.local.createKey(ns, keyName, { size: 2048 });
  await a.create("KeyProtector", ns, name, { provider: "Local", local: { secretRef: { name: keyName } } });
  return waitFor(`KeyProtector ${name} Ready`, () => keyProtector(name), ready);
}

beforeAll(async () => {
  a = api(kc());
  op = await startTestOperator({ watchNamespaces: [ns], operatorNamespace: opNs });
});

afterAll(async () => {
  await op?.stop();
});

describe("EncryptedServer", () => {
  it("R7 R9 a server with the service-managed key gets a DEK wrapped by the operator's own KEK", async () => {
    await a.create("EncryptedServer", ns, "smk-server", { protector: { type: "ServiceManaged" } });
    const s = await waitFor(
      "server Available",
      () => server("smk-server"),
      (o) => o.status?.state === "Available",
    );
    expect(s.status?.protector?.type).toBe("ServiceManaged");
    const envelope = await readEnvelope(a, ns, s.status!.envelopeSecretName!);
    expect(envelope.dekID).toBe(s.status?.dekID);
    expect(envelope.wraps).toHaveLength(1);
    expect(protectorWrap(envelope)?.keyID).toMatch(
      new RegExp(`^local://${opNs}/${SERVICE_MANAGED_KEY_NAME}/`),
    );
    expect(await unwrapsWithKcv(a, envelope, opNs, SERVICE_MANAGED_KEY_NAME)).toBe(true);
  });

  it("R9 R16 R4 a customer-managed server is wrapped by its KeyProtector, and a protector change re-wraps online keeping the DEK", async () => {
    const kpA = await localKeyProtector("srv-key-a");
    const kpB = await localKeyProtector("srv-key-b");
    await a.create("EncryptedServer", ns, "cmk-server", {
      protector: { type: "CustomerManaged", keyProtectorRef: { name: "srv-key-a" } },
    });
    const s = await waitFor(
      "server Available",
      () => server("cmk-server"),
      (o) => o.status?.state === "Available",
    );
    expect(s.status?.protector?.thumbprint).toBe(kpA.status?.thumbprint);
    const before = await readEnvelope(a, ns, s.status!.envelopeSecretName!);

    await a.patch("EncryptedServer", ns, "cmk-server", {
      spec: { protector: { keyProtectorRef: { name: "srv-key-b" } } },
    });
    const moved = await waitFor(
      "server re-wrapped",
      () => server("cmk-server"),
      (o) => o.status?.protector?.thumbprint === kpB.status?.thumbprint,
    );
    const after = await readEnvelope(a, ns, moved.status!.envelopeSecretName!);
    expect(after.dekID).toBe(before.dekID);
    expect(after.kcv).toBe(before.kcv);
    expect(after.wraps.find((w) => w.thumbprint === kpA.status?.thumbprint)?.role).toBe("retained");
    expect(await unwrapsWithKcv(a, after, ns, "srv-key-b")).toBe(true);
    expect(await unwrapsWithKcv(a, after, ns, "srv-key-a", kpA.status?.thumbprint)).toBe(true);
  });

  it("R31 a KeyProtector name resolves only in the server's own namespace: a missing one is a waiting condition", async () => {
    await a.create("EncryptedServer", ns, "waiting-server", {
      protector: { type: "CustomerManaged", keyProtectorRef: { name: "not-here-yet" } },
    });
    const s = await waitFor(
      "server waiting",
      () => server("waiting-server"),
      (o) => cond(o, "Ready")?.reason === "KeyProtectorNotFound",
    );
    expect(s.status?.state).toBe("Provisioning");
    expect(cond(s, "Ready")?.status).toBe("False");
    await localKeyProtector("not-here-yet");
    await waitFor(
      "server Available once the KeyProtector exists",
      () => server("waiting-server"),
      (o) => o.status?.state === "Available",
    );
  });
});

describe("EncryptedDatabase", () => {
  it("R13 R14 R18 inherits the server's key, overrides it, and an override survives a server key change", async () => {
    const kp1 = await localKeyProtector("db-server-key-1");
    const kp2 = await localKeyProtector("db-server-key-2");
    const own = await localKeyProtector("db-own-key");
    await a.create("EncryptedServer", ns, "db-server", {
      protector: { type: "CustomerManaged", keyProtectorRef: { name: "db-server-key-1" } },
    });
    await a.create("EncryptedDatabase", ns, "inherits", { serverRef: { name: "db-server" } });
    await a.create("EncryptedDatabase", ns, "overrides", {
      serverRef: { name: "db-server" },
      encryptionProtector: { type: "CustomerManaged", keyProtectorRef: { name: "db-own-key" } },
    });
    const inherits = await waitFor("inheriting db Ready", () => database("inherits"), ready);
    const overrides = await waitFor("overriding db Ready", () => database("overrides"), ready);
    expect(inherits.status?.effectiveProtector).toMatchObject({
      source: "Server",
      thumbprint: kp1.status?.thumbprint,
    });
    expect(overrides.status?.effectiveProtector).toMatchObject({
      source: "Database",
      thumbprint: own.status?.thumbprint,
    });
    expect(inherits.status?.dekID).not.toBe(overrides.status?.dekID);
    const overridesEnvelope = await readEnvelope(a, ns, overrides.status!.envelopeSecretName!);

    await a.patch("EncryptedServer", ns, "db-server", {
      spec: { protector: { keyProtectorRef: { name: "db-server-key-2" } } },
    });
    const moved = await waitFor(
      "inheriting db follows the server",
      () => database("inherits"),
      (o) => o.status?.effectiveProtector?.thumbprint === kp2.status?.thumbprint,
    );
    const history = moved.status?.keyList ?? [];
    expect(history.filter((e) => e.until === undefined).map((e) => e.thumbprint)).toEqual([
      kp2.status?.thumbprint,
    ]);
    expect(history.find((e) => e.thumbprint === kp1.status?.thumbprint)?.until).toBeDefined();

    const still = await database("overrides");
    expect(still.status?.effectiveProtector?.thumbprint).toBe(own.status?.thumbprint);
    const untouched = await readEnvelope(a, ns, still.status!.envelopeSecretName!);
    expect(untouched).toEqual(overridesEnvelope);
  });

  it("R15 refuses the service-managed key and a revert on a customer-managed server, and the key stays", async () => {
    const kp = await localKeyProtector("r15-server-key");
    await localKeyProtector("r15-db-key");
    await a.create("EncryptedServer", ns, "r15-server", {
      protector: { type: "CustomerManaged", keyProtectorRef: { name: "r15-server-key" } },
    });
    await a.create("EncryptedDatabase", ns, "r15-db", {
      serverRef: { name: "r15-server" },
      encryptionProtector: { type: "CustomerManaged", keyProtectorRef: { name: "r15-db-key" } },
    });
    const before = await waitFor("db Ready", () => database("r15-db"), ready);
    const envelopeBefore = await readEnvelope(a, ns, before.status!.envelopeSecretName!);

    await a.patch("EncryptedDatabase", ns, "r15-db", {
      spec: { encryptionProtector: { type: "ServiceManaged", keyProtectorRef: null } },
    });
    const refused = await waitFor(
      "refusal",
      () => database("r15-db"),
      (o) => cond(o, "ProtectorChangeAccepted")?.reason === "ServiceManagedKeyNotAllowed",
    );
    expect(cond(refused, "ProtectorChangeAccepted")?.status).toBe("False");
    expect(refused.status?.effectiveProtector?.thumbprint).toBe(
      before.status?.effectiveProtector?.thumbprint,
    );

    await a.patch("EncryptedDatabase", ns, "r15-db", { spec: { encryptionProtector: null } });
    const revert = await waitFor(
      "revert refusal",
      () => database("r15-db"),
      (o) => cond(o, "ProtectorChangeAccepted")?.reason === "RevertToServerKeyNotAllowed",
    );
    expect(revert.status?.effectiveProtector?.source).toBe("Database");
    expect(revert.status?.effectiveProtector?.thumbprint).not.toBe(kp.status?.thumbprint);
    expect(await readEnvelope(a, ns, revert.status!.envelopeSecretName!)).toEqual(envelopeBefore);
  });

  it("R6 R16 a new key version is applied to dependants at once: the DEK is re-wrapped, the old version retained", async () => {
    await localKeyProtector("auto-key");
    await a.create("EncryptedServer", ns, "auto-server", { protector: { type: "ServiceManaged" } });
    await a.create("EncryptedDatabase", ns, "auto-db", {
      serverRef: { name: "auto-server" },
      encryptionProtector: { type: "CustomerManaged", keyProtectorRef: { name: "auto-key" } },
    });
    const before = await waitFor("db Ready", () => database("auto-db"), ready);
    const newVersion = await a.local.rotateKey(ns, "auto-key", { size: 2048 });
    const after = await waitFor(
      "db on the new version",
      () => database("auto-db"),
      (o) => o.status?.effectiveProtector?.keyID === newVersion.keyID,
      30_000,
    );
    expect(after.status?.dekID).toBe(before.status?.dekID);
    const envelope = await readEnvelope(a, ns, after.status!.envelopeSecretName!);
    expect(envelope.wraps.map((w) => w.role).sort()).toEqual(["protector", "retained"]);
    expect(await unwrapsWithKcv(a, envelope, ns, "auto-key")).toBe(true);

    // R2 R16: the operator's cache holds the envelope without the retained wrap's bytes; the next
    // rotation reads it whole, and keeps every wrap
    const name = after.status!.envelopeSecretName!;
    await waitFor(
      "the cached envelope on the new version",
      async () => op.operator.envelopes.store.get(ns, name),
      (s) => s?.metadata?.resourceVersion !== undefined && envelopeFromCache(s).envelope.wraps.length === 2,
    );
    const cached = envelopeFromCache(op.operator.envelopes.store.get(ns, name)!);
    expect(cached.secret).not.toHaveProperty("data");
    expect(cached.partial).toBe(true);
    expect(cached.envelope.wraps.find((w) => w.role === "retained")?.wrapped).toBe("");
    const third = await a.local.rotateKey(ns, "auto-key", { size: 2048 });
    await waitFor(
      "db on the third version",
      () => database("auto-db"),
      (o) => o.status?.effectiveProtector?.keyID === third.keyID,
      30_000,
    );
    const last = await readEnvelope(a, ns, name);
    expect(last.wraps.map((w) => w.role).sort()).toEqual(["protector", "retained", "retained"]);
    expect(last.wraps.every((w) => w.wrapped.length > 0)).toBe(true);
    expect(await unwrapsWithKcv(a, last, ns, "auto-key")).toBe(true);
  });

  it("R25 Retain keeps the envelope after deletion; Shred deletes every wrap", async () => {
    await a.create("EncryptedServer", ns, "del-server", { protector: { type: "ServiceManaged" } });
    await a.create("EncryptedDatabase", ns, "kept", { serverRef: { name: "del-server" } });
    await a.create("EncryptedDatabase", ns, "shredded", {
      serverRef: { name: "del-server" },
      deletionPolicy: "Shred",
    });
    const kept = await waitFor("kept Ready", () => database("kept"), ready);
    const shredded = await waitFor("shredded Ready", () => database("shredded"), ready);
    await a.delete("EncryptedDatabase", ns, "kept");
    await a.delete("EncryptedDatabase", ns, "shredded");
    await waitFor(
      "both gone",
      async () => {
        const names = [];
        for (const n of ["kept", "shredded"]) {
          try {
            await database(n);
            names.push(n);
          } catch {}
        }
        return names;
      },
      (left) => left.length === 0,
    );
    const envelope = await readEnvelope(a, ns, kept.status!.envelopeSecretName!);
    expect(envelope.dekID).toBe(kept.status?.dekID);
    await expect(
      a.core.readNamespacedSecret({ namespace: ns, name: shredded.status!.envelopeSecretName! }),
    ).rejects.toMatchObject({ code: 404 });
  });
});

describe("steady state", () => {
  it("a converged operator makes no KMS call and no API write while nothing changes (beyond probes)", async () => {
    // let everything above settle (on a loaded machine the last test's work may still be in
    // flight): wait for 2 s without a write, then watch for a few probe intervals
    const settleBy = Date.now() + 60_000;
    for (;;) {
      op.resetCounts();
      await new Promise((r) => setTimeout(r, 2_000));
      if (op.counts.writes.every((w) => w.resource === "events") || Date.now() > settleBy) break;
    }
    const probesBefore = await probeCount(op);
    op.resetCounts();
    await new Promise((r) => setTimeout(r, 4_000));
    const probes = (await probeCount(op)) - probesBefore;
    const writes = op.counts.writes.filter((w) => w.resource !== "events");
    expect(writes).toEqual([]);
    // no DEK was wrapped, and every unwrap belongs to a probe's round trip (give or take the
    // probes in flight at either edge of the window: at most one per key)
    const keys = op.operator.keyProtectors.store.list().length;
    expect(probes).toBeGreaterThan(0);
    expect(op.counts.kms.dekWrap ?? 0).toBe(0);
    expect(Math.abs((op.counts.kms.unwrap ?? 0) - (op.counts.kms.wrap ?? 0))).toBeLessThanOrEqual(keys);
    // and one probe per distinct key per interval (1 s here), however many resources use it
    expect(probes).toBeLessThanOrEqual(keys * 5);
  });
});

/** Probes the operator has made so far, from its tde_key_probes_total counter. */
async function probeCount(o: TestOperator): Promise<number> {
  const metric = await o.metrics.keyProbes.get();
  return metric.values.reduce((sum, v) => sum + v.value, 0);
}
