import { readFileSync } from "node:fs";
import { join } from "node:path";
import type * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { findWrapByThumbprint } from "../../../src/crypto/index.js";
import { createClusterSecret, kubeconfigThrough, linkTo, startCluster } from "../../harness/clusters.js";
import type { ControlPlane } from "../../harness/control-plane.js";
import type { FaultProxy } from "../../harness/fault-proxy.js";
import { startTestOperator, type TestOperator } from "../../harness/operator.js";
import {
  type Api,
  api,
  cond,
  type EncryptedDatabase,
  importKeyProtector,
  kc,
  keyMaterial,
  readEnvelope,
  suffix,
  unwrapsWithKcv,
  waitFor,
} from "../controllers/helpers.js";
import { repoRoot } from "../deploy/support.js";

/**
 * R19-R22, R31 across clusters: the primary in cluster "east" (the harness's control plane), its
 * secondary in cluster "west" (a second real control plane), each with its own operator and its
 * own Local "vault" holding the same imported key material, each reading the other only through
 * a cluster Secret whose kubeconfig goes through a cuttable link (the harness's fault proxy).
 */
const id = suffix();
const ns = `mc-${id}`; // the same namespace name in both regions, as platform teams name them
const opEast = `mc-op-east-${id}`;
const opWest = `mc-op-west-${id}`;
let west: { plane: ControlPlane; kc: k8s.KubeConfig };
let e: Api;
let w: Api;
let toWest: FaultProxy;
let toEast: FaultProxy;
let east: TestOperator;
let westOp: TestOperator;

const material = { one: keyMaterial(), two: keyMaterial(), three: keyMaterial() };

const primary = () => e.get<EncryptedDatabase>("EncryptedDatabase", ns, "orders");
const secondary = () => w.get<EncryptedDatabase>("EncryptedDatabase", ns, "orders");
const message = (o: EncryptedDatabase, type: string) =>
  o.status?.conditions?.find((c) => c.type === type)?.message ?? "";

const importKey = (a: Api, kp: string, pem: string) => importKeyProtector(a, ns, kp, pem);

/**
 * The manifests of docs/geo-replication.md for one cluster (its yaml blocks that start with
 * "# geo-replication: <cluster>"), created in this test's namespace in place of "prod".
 */
async function applyFromDocs(a: Api, cluster: string): Promise<void> {
  const text = readFileSync(join(repoRoot, "docs", "geo-replication.md"), "utf8");
  const blocks = [...text.matchAll(/```yaml\n# geo-replication: (\w+)\n([\s\S]*?)```/g)].filter(
    (m) => m[1] === cluster,
  );
  expect(blocks).toHaveLength(1);
  const docs = parseAllDocuments(blocks[0]?.[2] ?? "").map(
    (d) =>
      d.toJS() as {
        kind: "EncryptedServer" | "EncryptedDatabase";
        metadata: { name: string };
        spec: unknown;
      },
  );
  for (const d of docs) {
    const spec = JSON.parse(JSON.stringify(d.spec).replaceAll('"prod"', JSON.stringify(ns)));
    await a.create(d.kind, ns, d.metadata.name, spec);
  }
}

const metric = async (op: TestOperator, name: string) =>
  [
    ...(await op.metrics.registry.metrics()).matchAll(
      new RegExp(`^${name}\\{cluster="(\\w+)"\\} (\\S+)$`, "gm"),
    ),
  ].map((m) => ({ cluster: m[1], value: Number(m[2]) }));

beforeAll(async () => {
  west = await startCluster();
  e = api(kc());
  w = api(west.kc);
  toWest = await linkTo(west.kc);
  toEast = await linkTo(kc());
  east = await startTestOperator({
    watchNamespaces: [ns],
    operatorNamespace: opEast,
    clusterName: "east",
    remoteReadTtlMs: 500,
  });
  westOp = await startTestOperator({
    cluster: west.kc,
    kubeConfig: west.kc,
    watchNamespaces: [ns],
    operatorNamespace: opWest,
    clusterName: "west",
    remoteReadTtlMs: 500,
  });
  await createClusterSecret(kc(), opEast, "west", kubeconfigThrough(toWest, "west"));
  await createClusterSecret(west.kc, opWest, "east", kubeconfigThrough(toEast, "east"));
}, 300_000);

afterAll(async () => {
  await east?.stop();
  await westOp?.stop();
  await toWest?.stop();
  await toEast?.stop();
  await west?.plane.stop();
});

describe("geo-replication across clusters", () => {
  const t: Record<string, string> = {};

  it("R29 a cluster name the API server cannot use is refused with the field and the fix", async () => {
    await expect(
      w.create("EncryptedDatabase", ns, "bad", {
        serverRef: { name: "dr-server" },
        replication: { role: "Secondary", primaryRef: { cluster: "East_1", namespace: ns, name: "orders" } },
      }),
    ).rejects.toThrow(/spec.replication.primaryRef.cluster.*must be a cluster name/s);
  });

  it("R19 R20 R23 R31 a secondary in another cluster holds its primary's DEK under its own vault's key", async () => {
    t.one = await importKey(e, "e1", material.one);
    t.two = await importKey(e, "e2", material.two);
    expect(await importKey(w, "w1", material.one)).toBe(t.one); // R3: same material, same thumbprint
    expect(await importKey(w, "w2", material.two)).toBe(t.two);
    // the manifests docs/geo-replication.md shows, as a platform team applies them
    await applyFromDocs(e, "east");
    const p = await waitFor("primary Ready", primary, (o) => cond(o, "Ready")?.status === "True");
    await applyFromDocs(w, "west");
    const s = await waitFor("secondary Available", secondary, (o) => o.status?.state === "Available", 60_000);
    expect(s.status?.dekID).toBe(p.status?.dekID);
    expect(s.status?.effectiveProtector?.thumbprint).toBe(t.one);
    expect(cond(s, "ReplicationLinked")?.status).toBe("True");
    expect(message(s, "ReplicationLinked")).toContain(`east/${ns}/orders`);
    expect(cond(s, "KeyListSynced")?.status).toBe("True");
    expect(cond(s, "Revalidated")?.status).toBe("True");
    // wrapped under west's own key (its own key id), never east's
    const envelope = await readEnvelope(w, ns, s.status!.envelopeSecretName!);
    expect(envelope.wraps.map((x) => x.keyID)).toEqual([
      expect.stringMatching(new RegExp(`^local://${ns}/w1-kek`)),
    ]);
    const linked = await waitFor("primary sees it linked", primary, (o) =>
      message(o, "ReplicationLinked").includes("1 in other clusters"),
    );
    expect(cond(linked, "KeyListSynced")?.status).toBe("True");
    expect(await metric(east, "tde_remote_cluster_up")).toEqual([{ cluster: "west", value: 1 }]);
    expect(await metric(westOp, "tde_remote_cluster_up")).toEqual([{ cluster: "east", value: 1 }]);
    const last = await metric(east, "tde_remote_cluster_last_success_timestamp_seconds");
    expect(last[0]?.value).toBeGreaterThan(Date.now() / 1000 - 60);
  });

  it("R21 a rotation runs in order across clusters: the secondary holds the new key before the primary switches, then follows", async () => {
    await e.patch("EncryptedDatabase", ns, "orders", {
      spec: { encryptionProtector: { keyProtectorRef: { name: "e2" } } },
    });
    const switched = await waitFor(
      "primary switched",
      primary,
      (o) => o.status?.effectiveProtector?.thumbprint === t.two,
      60_000,
    );
    // the order: when the primary's protector changed, the secondary already held a proven wrap under it
    const s = await secondary();
    const held = await readEnvelope(w, ns, s.status!.envelopeSecretName!);
    const wrap = findWrapByThumbprint(held, t.two ?? "");
    const since = switched.status?.keyList?.find(
      (k) => k.thumbprint === t.two && k.role === "protector",
    )?.since;
    expect(wrap).toBeDefined();
    expect(Date.parse(wrap?.addedAt ?? "")).toBeLessThanOrEqual(Date.parse(since ?? ""));
    expect(cond(switched, "RotationBlocked")?.status).not.toBe("True");
    const followed = await waitFor(
      "secondary follows",
      secondary,
      (o) => o.status?.effectiveProtector?.thumbprint === t.two,
      60_000,
    );
    expect(followed.status?.effectiveProtector?.keyProtectorName).toBe("w2");
    expect(followed.status?.dekID).toBe(switched.status?.dekID);
  });

  it("R21 a partition mid-rotation: the primary waits naming the cluster, nothing half-switched, no DEK lost; it heals by itself", async () => {
    t.three = await importKey(e, "e3", material.three);
    expect(await importKey(w, "w3", material.three)).toBe(t.three);
    const dekID = (await primary()).status?.dekID;
    await toWest.loss("refuse");
    await toEast.loss("refuse");
    await e.patch("EncryptedDatabase", ns, "orders", {
      spec: { encryptionProtector: { keyProtectorRef: { name: "e3" } } },
    });
    const blocked = await waitFor(
      "primary waits for the unreachable cluster",
      primary,
      (o) => cond(o, "RotationBlocked")?.reason === "RemoteClusterUnreachable",
      60_000,
    );
    expect(cond(blocked, "RotationBlocked")?.status).toBe("True");
    expect(message(blocked, "RotationBlocked")).toContain(`west/${ns}/orders`);
    expect(message(blocked, "RotationBlocked")).toContain("Unreachable");
    expect(cond(blocked, "KeyListSynced")).toMatchObject({
      status: "False",
      reason: "RemoteClusterUnreachable",
    });
    expect(blocked.status?.effectiveProtector?.thumbprint).toBe(t.two);
    expect(await metric(east, "tde_remote_cluster_up")).toEqual([{ cluster: "west", value: 0 }]);
    const cut = await waitFor(
      "secondary says its primary cannot be read",
      secondary,
      (o) => cond(o, "KeyListSynced")?.reason === "RemoteClusterUnreachable",
      60_000,
    );
    expect(message(cut, "KeyListSynced")).toContain(`east/${ns}/orders`);
    // the secondary keeps its DEK and its key while cut off: nothing moves back, nothing half-switched
    expect(cut.status?.state).toBe("Available");
    expect(cut.status?.effectiveProtector?.thumbprint).toBe(t.two);
    expect(cut.status?.dekID).toBe(dekID);
    const stillPrimary = await readEnvelope(e, ns, blocked.status!.envelopeSecretName!);
    expect(stillPrimary.dekID).toBe(dekID);
    expect(stillPrimary.wraps.find((x) => x.role === "protector")?.thumbprint).toBe(t.two);

    await toWest.heal();
    await toEast.heal();
    const healed = await waitFor(
      "primary rotates once the link is back",
      primary,
      (o) => o.status?.effectiveProtector?.thumbprint === t.three,
      60_000,
    );
    expect(cond(healed, "RotationBlocked")?.status).toBe("False");
    const after = await waitFor(
      "secondary follows and is synced",
      secondary,
      (o) =>
        o.status?.effectiveProtector?.thumbprint === t.three && cond(o, "KeyListSynced")?.status === "True",
      60_000,
    );
    expect(after.status?.dekID).toBe(dekID);
    expect(healed.status?.dekID).toBe(dekID);
    // 0 DEKs lost: each side's DEK unwraps under its own vault's key, with the key check value
    expect(
      await unwrapsWithKcv(e, await readEnvelope(e, ns, healed.status!.envelopeSecretName!), ns, "e3-kek"),
    ).toBe(true);
    expect(
      await unwrapsWithKcv(w, await readEnvelope(w, ns, after.status!.envelopeSecretName!), ns, "w3-kek"),
    ).toBe(true);
    await waitFor(
      "link up again",
      () => metric(east, "tde_remote_cluster_up"),
      (m) => m[0]?.value === 1,
    );
  });

  it("R22 promotion in the secondary's cluster needs no key work; the old primary sees itself demoted", async () => {
    const before = await secondary();
    const envelopeBefore = await readEnvelope(w, ns, before.status!.envelopeSecretName!);
    westOp.resetCounts();
    await w.patch("EncryptedDatabase", ns, "orders", {
      spec: {
        replication: { role: "Primary", primaryRef: null },
        encryptionProtector: {
          type: "CustomerManaged",
          keyProtectorRef: { name: before.status?.effectiveProtector?.keyProtectorName },
        },
      },
    });
    const promoted = await waitFor(
      "promoted",
      secondary,
      (o) =>
        o.status?.observedGeneration === o.metadata?.generation && o.spec.replication?.role === "Primary",
    );
    expect(promoted.status?.state).toBe("Available");
    expect(promoted.status?.dekID).toBe(before.status?.dekID);
    expect(await readEnvelope(w, ns, promoted.status!.envelopeSecretName!)).toEqual(envelopeBefore);
    expect(westOp.counts.kms.dekWrap ?? 0).toBe(0);
    const demoted = await waitFor(
      "old primary demoted",
      primary,
      (o) => cond(o, "ReplicationLinked")?.reason === "SecondaryPromoted",
    );
    expect(cond(demoted, "ReplicationLinked")?.status).toBe("False");
    expect(message(demoted, "ReplicationLinked")).toContain(`west/${ns}/orders`);
  });
});
