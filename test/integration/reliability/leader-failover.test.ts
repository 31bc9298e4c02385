/**
 * R28 R16 leader failover mid-rotation: two operator processes campaign for one Lease; a key
 * rotation of the fleet is under way when the leader is SIGKILLed (no Lease release). The other
 * replica takes over within the lease duration and completes the rotation once: every envelope
 * ends with exactly one wrap per key version (no duplicate wrap, no second DEK), the protector on
 * the new version and the old one retained, both unwrapping with the KCV.
 */
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EncryptedDatabase, EncryptedServer } from "../../../src/api/index.js";
import { decodeEnvelopeSecret, verifyUnwrapped, wrappedBytes } from "../../../src/crypto/index.js";
import { parseLocalKeyID } from "../../../src/kms/local.js";
import { type Api, api, kc, suffix, waitFor } from "../controllers/helpers.js";
import { OperatorProcess, scratchDir } from "./support.js";

const DATABASES = 40;
const id = suffix();
const ns = `rel-lf-${id}`;
const opNs = `rel-lf-op-${id}`;
const KEY = "lf-kek";
const lease = `tde-rel-lf-${id}`;
const dir = scratchDir("failover");
let a: Api;
let objects: k8s.CustomObjectsApi;
const replicas = new Map<string, OperatorProcess>();
const figures = { databases: DATABASES, onNewAtKill: -1, takeoverMs: -1, wrapsChecked: 0 };

const start = async (identity: string) => {
  const op = await OperatorProcess.start({
    operatorNamespace: opNs,
    watchNamespaces: [ns],
    logFile: join(dir, `${identity}.log`),
    probeInterval: "1s",
    latencyMs: 100,
    logLevel: "info",
    leaderElection: { leaseName: lease, identity },
  });
  replicas.set(identity, op);
  return op;
};

type Resource = EncryptedServer | EncryptedDatabase;
const keyIDOf = (o: Resource) => {
  const s = o.status as
    | { effectiveProtector?: { keyID?: string }; protector?: { keyID?: string } }
    | undefined;
  return s?.effectiveProtector?.keyID ?? s?.protector?.keyID;
};
async function fleet(): Promise<Resource[]> {
  const list = async (plural: string) =>
    (
      (await objects.listNamespacedCustomObject({
        group: "tde.dev",
        version: "v1alpha1",
        namespace: ns,
        plural,
      })) as {
        items: Resource[];
      }
    ).items;
  return [...(await list("encryptedservers")), ...(await list("encrypteddatabases"))];
}

beforeAll(async () => {
  const kcfg = kc();
  a = api(kcfg);
  objects = kcfg.makeApiClient(k8s.CustomObjectsApi);
  for (const n of [ns, opNs]) await a.core.createNamespace({ body: { metadata: { name: n } } });
  await a.local.createKey(ns, KEY, { size: 2048 });
  await a.create("KeyProtector", ns, "kp", { provider: "Local", local: { secretRef: { name: KEY } } });
  await a.create("EncryptedServer", ns, "srv", {
    protector: { type: "CustomerManaged", keyProtectorRef: { name: "kp" } },
  });
  await Promise.all(
    Array.from({ length: DATABASES }, (_, i) =>
      a.create("EncryptedDatabase", ns, `db-${i}`, { serverRef: { name: "srv" } }),
    ),
  );
}, 120_000);

afterAll(async () => {
  for (const op of replicas.values()) await op.kill();
  process.stderr.write(`[reliability] leader failover: ${JSON.stringify(figures)}; logs ${dir}\n`);
});

describe("R28 R16 leader killed mid-rotation", () => {
  it("the other replica takes over within the lease duration and completes the rotation once", async () => {
    await Promise.all([start("replica-a"), start("replica-b")]);
    const coordination = kc().makeApiClient(k8s.CoordinationV1Api);
    const holder = async () =>
      (await coordination.readNamespacedLease({ namespace: opNs, name: lease })).spec?.holderIdentity ?? "";
    const leaderName = await waitFor("a leader", holder, (h) => replicas.has(h), 40_000);
    const followerName = [...replicas.keys()].find((n) => n !== leaderName)!;
    const first = await waitFor(
      "the fleet converged",
      fleet,
      (all) => all.length === DATABASES + 1 && all.every((o) => o.status?.dekID && keyIDOf(o)),
      90_000,
    );
    const oldKeyID = keyIDOf(first[0]!)!;
    const dekIDs = new Map(first.map((o) => [`${o.kind}/${o.metadata?.name}`, o.status!.dekID!]));
    expect(await replicas.get(followerName)!.counter("tde_reconcile_total")).toBe(0);

    const newKeyID = (await a.local.rotateKey(ns, KEY, { size: 2048 })).keyID;
    // kill the leader once the rotation is visibly under way, and not finished
    const midway = await waitFor(
      "the rotation under way",
      fleet,
      (all) => all.some((o) => keyIDOf(o) === newKeyID),
      30_000,
    );
    await replicas.get(leaderName)!.kill();
    const killedAt = Date.now();
    figures.onNewAtKill = midway.filter((o) => keyIDOf(o) === newKeyID).length;
    expect(figures.onNewAtKill, "the leader died before the rotation was complete").toBeLessThan(
      DATABASES + 1,
    );

    await waitFor("the follower leads", holder, (h) => h === followerName, 40_000);
    const done = await waitFor(
      "every resource on the new version",
      fleet,
      (all) => all.length === DATABASES + 1 && all.every((o) => keyIDOf(o) === newKeyID),
      60_000,
    );
    figures.takeoverMs = Date.now() - killedAt;
    // lease 15 s + one retry period (2 s) + the rest of the rotation
    expect(figures.takeoverMs).toBeLessThan(40_000);
    expect(replicas.get(followerName)!.alive).toBe(true);
    // both ran as the shipped ServiceAccount (Lease included) and were refused nothing
    for (const r of replicas.values()) expect(r.refusals()).toEqual([]);

    for (const o of done) {
      const owner = `${o.kind}/${o.metadata?.name}`;
      expect(o.status?.dekID, owner).toBe(dekIDs.get(owner));
      const secret = await a.core.readNamespacedSecret({
        namespace: ns,
        name: o.status!.envelopeSecretName!,
      });
      const envelope = decodeEnvelopeSecret(secret as { type?: string; data?: Record<string, string> });
      expect(envelope.dekID).toBe(dekIDs.get(owner));
      // completed once: one wrap per key version, the new one protecting, the old one retained
      expect(envelope.wraps.map((w) => `${w.role} ${w.keyID}`).sort(), owner).toEqual(
        [`protector ${newKeyID}`, `retained ${oldKeyID}`].sort(),
      );
      for (const wrap of envelope.wraps) {
        const ref = parseLocalKeyID(wrap.keyID)!;
        const dek = await a.local.unwrap(
          { provider: "Local", namespace: ref.namespace, keyName: ref.name, keyID: wrap.keyID },
          wrappedBytes(wrap),
        );
        verifyUnwrapped(envelope, dek, wrap.thumbprint);
        dek.fill(0);
        figures.wrapsChecked++;
      }
    }
    const secrets = await a.core.listNamespacedSecret({
      namespace: ns,
      labelSelector: "tde.dev/envelope=true",
    });
    expect(secrets.items).toHaveLength(DATABASES + 1);
  }, 180_000);
});
