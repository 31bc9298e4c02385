import { readFileSync } from "node:fs";
import { join } from "node:path";
import type * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { main } from "../../../src/cli/main.js";
import { findWrapByThumbprint } from "../../../src/crypto/index.js";
import {
  createClusterSecret,
  kubeconfigThrough,
  linkTo,
  remoteReaderKubeConfig,
  startCluster,
} from "../../harness/clusters.js";
import type { ControlPlane } from "../../harness/control-plane.js";
import type { FaultProxy } from "../../harness/fault-proxy.js";
import { leakCanaryDir, scanRun } from "../../harness/leak-scan.js";
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
 * secondaries in clusters "west", "north" and "south" (three more real control planes), each cluster with
 * its own operator and its own Local "vault" holding the same imported key material, each
 * reading the others only through a cluster Secret whose kubeconfig goes through a cuttable
 * link (the harness's fault proxy), one per direction.
 */
const id = suffix();
const ns = `mc-${id}`; // the same namespace name in every region, as platform teams name them
const opEast = `mc-op-east-${id}`;
let e: Api;
let east: TestOperator;

/** A secondary's region: its cluster, its operator, and the links between it and east. */
interface Region {
  cluster: "west" | "north" | "south";
  plane: ControlPlane;
  kc: k8s.KubeConfig;
  api: Api;
  op: TestOperator;
  /** the chart's remote-reader identity of this cluster: what east's operator reads it as */
  reader: k8s.KubeConfig;
  /** east's operator reading this cluster */
  fromEast: FaultProxy;
  /** this cluster's operator reading east */
  toEast: FaultProxy;
}
const regions: Region[] = [];
const region = (cluster: Region["cluster"]) => regions.find((r) => r.cluster === cluster)!;

/** east's remote-reader identity: what the secondaries' operators read east as */
let eastReader: k8s.KubeConfig;

/** A region's operator (again, after a restart: the cluster Secret and everything else stay). */
function regionOperator(rkc: k8s.KubeConfig, cluster: Region["cluster"]): Promise<TestOperator> {
  return startTestOperator({
    cluster: rkc,
    kubeConfig: rkc,
    watchNamespaces: [ns],
    operatorNamespace: `mc-op-${cluster}-${id}`,
    clusterName: cluster,
    remoteReadTtlMs: 500,
  });
}

async function startRegion(cluster: Region["cluster"]): Promise<Region> {
  const { plane, kc: rkc } = await startCluster();
  const operatorNamespace = `mc-op-${cluster}-${id}`;
  const op = await regionOperator(rkc, cluster);
  const reader = await remoteReaderKubeConfig({
    admin: rkc,
    kubeconfigPath: plane.started.kubeconfigPath,
    kubectl: plane.started.binaries.kubectl ?? "",
    releaseNamespace: operatorNamespace,
    namespaces: [ns],
  });
  const r: Region = {
    cluster,
    plane,
    kc: rkc,
    api: api(rkc),
    op,
    reader,
    // each operator reads the other clusters only as their remote reader, through a cuttable link
    fromEast: await linkTo(reader),
    toEast: await linkTo(eastReader),
  };
  await createClusterSecret(kc(), opEast, cluster, kubeconfigThrough(r.fromEast, cluster));
  await createClusterSecret(rkc, operatorNamespace, "east", kubeconfigThrough(r.toEast, "east"));
  return r;
}

const material = { one: keyMaterial(), two: keyMaterial(), three: keyMaterial() };

const primary = () => e.get<EncryptedDatabase>("EncryptedDatabase", ns, "orders");
const secondary = (r: Region = region("west")) =>
  r.api.get<EncryptedDatabase>("EncryptedDatabase", ns, "orders");
const message = (o: EncryptedDatabase, type: string) =>
  o.status?.conditions?.find((c) => c.type === type)?.message ?? "";

const importKey = (a: Api, kp: string, pem: string) => importKeyProtector(a, ns, kp, pem);

/** kubectl-tde, in this process, against east (the primary's cluster). */
async function tde(...argv: string[]): Promise<string> {
  const out: string[] = [];
  const code = await main(argv, { out: (t) => out.push(t), err: (t) => out.push(t) }, kc());
  expect(code, out.join("")).toBe(0);
  return out.join("");
}

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
  ]
    .map((m) => ({ cluster: m[1] ?? "", value: Number(m[2]) }))
    .sort((a, b) => a.cluster.localeCompare(b.cluster));

beforeAll(async () => {
  e = api(kc());
  east = await startTestOperator({
    watchNamespaces: [ns],
    operatorNamespace: opEast,
    clusterName: "east",
    remoteReadTtlMs: 500,
  });
  eastReader = await remoteReaderKubeConfig({
    admin: kc(),
    kubeconfigPath: inject("kubeconfigPath"),
    kubectl: inject("kubectlPath"),
    releaseNamespace: opEast,
    namespaces: [ns],
  });
  regions.push(...(await Promise.all([startRegion("west"), startRegion("north"), startRegion("south")])));
}, 300_000);

afterAll(async () => {
  await east?.stop();
  for (const r of regions) {
    await r.op.stop();
    await r.fromEast.stop();
    await r.toEast.stop();
    await r.plane.stop();
  }
});

describe("geo-replication across clusters", () => {
  const t: Record<string, string> = {};
  const secondaryClusters = () => regions.map((r) => r.cluster);

  it("R29 a cluster name the API server cannot use is refused with the field and the fix", async () => {
    await expect(
      region("west").api.create("EncryptedDatabase", ns, "bad", {
        serverRef: { name: "dr-server" },
        replication: { role: "Secondary", primaryRef: { cluster: "East_1", namespace: ns, name: "orders" } },
      }),
    ).rejects.toThrow(/spec.replication.primaryRef.cluster.*must be a cluster name/s);
    await expect(
      e.create("EncryptedDatabase", ns, "bad", {
        serverRef: { name: "primary-server" },
        replication: { role: "Primary", secondaries: [{ cluster: "West", namespace: ns, name: "orders" }] },
      }),
    ).rejects.toThrow(/spec.replication.secondaries\[0\].cluster.*must be a cluster name/s);
    // one entry per cluster, namespace and name: the same name in two regions is two secondaries
    await expect(
      e.create("EncryptedDatabase", ns, "bad", {
        serverRef: { name: "primary-server" },
        replication: {
          role: "Primary",
          secondaries: [
            { cluster: "west", namespace: ns, name: "orders" },
            { cluster: "west", namespace: ns, name: "orders" },
          ],
        },
      }),
    ).rejects.toThrow(/Duplicate value/);
  });

  it("R19 R20 R23 R31 secondaries in three other clusters hold the primary's DEK, each under its own vault's key", async () => {
    t.one = await importKey(e, "e1", material.one);
    t.two = await importKey(e, "e2", material.two);
    for (const r of regions) {
      expect(await importKey(r.api, "w1", material.one)).toBe(t.one); // R3: same material, same thumbprint
      expect(await importKey(r.api, "w2", material.two)).toBe(t.two);
    }
    // the manifests docs/geo-replication.md shows, as a platform team applies them; north and
    // south are set up as west is, and the primary lists them too
    await applyFromDocs(e, "east");
    await e.patch("EncryptedDatabase", ns, "orders", {
      spec: {
        replication: {
          secondaries: secondaryClusters().map((cluster) => ({ cluster, namespace: ns, name: "orders" })),
        },
      },
    });
    const p = await waitFor("primary Ready", primary, (o) => cond(o, "Ready")?.status === "True");
    for (const r of regions) await applyFromDocs(r.api, "west");
    for (const r of regions) {
      const s = await waitFor(
        `${r.cluster} Available`,
        () => secondary(r),
        (o) => o.status?.state === "Available",
        60_000,
      );
      expect(s.status?.dekID).toBe(p.status?.dekID);
      expect(s.status?.effectiveProtector?.thumbprint).toBe(t.one);
      expect(cond(s, "ReplicationLinked")?.status).toBe("True");
      expect(message(s, "ReplicationLinked")).toContain(`east/${ns}/orders`);
      expect(cond(s, "KeyListSynced")?.status).toBe("True");
      expect(message(s, "KeyListSynced")).toContain(`east/${ns}/orders`);
      expect(cond(s, "Revalidated")?.status).toBe("True");
      // wrapped under its own cluster's key (its own key id), never east's
      const envelope = await readEnvelope(r.api, ns, s.status!.envelopeSecretName!);
      expect(envelope.wraps.map((x) => x.keyID)).toEqual([
        expect.stringMatching(new RegExp(`^local://${ns}/w1-kek`)),
      ]);
      expect(await metric(r.op, "tde_remote_cluster_up")).toEqual([{ cluster: "east", value: 1 }]);
    }
    // the identity each operator reads another cluster as may read there, never write (the chart's remote reader)
    const asReader = api(region("west").reader);
    expect((await asReader.get<EncryptedDatabase>("EncryptedDatabase", ns, "orders")).metadata?.name).toBe(
      "orders",
    );
    await expect(
      asReader.patch("EncryptedDatabase", ns, "orders", { metadata: { labels: { x: "y" } } }),
    ).rejects.toMatchObject({ code: 403 });
    // what the primary says comes from its last reads (reused for the ttl): it catches up by itself
    const linked = await waitFor(
      "primary sees every secondary linked and synced",
      primary,
      (o) =>
        message(o, "ReplicationLinked").includes(`${regions.length} in other clusters`) &&
        cond(o, "KeyListSynced")?.status === "True",
    );
    expect(message(linked, "KeyListSynced")).toContain(`(${regions.length})`);
    expect(await metric(east, "tde_remote_cluster_up")).toEqual([
      { cluster: "north", value: 1 },
      { cluster: "south", value: 1 },
      { cluster: "west", value: 1 },
    ]);
    const last = await metric(east, "tde_remote_cluster_last_success_timestamp_seconds");
    expect(last.every((m) => m.value > Date.now() / 1000 - 60)).toBe(true);
    // kubectl tde status and impact in east show the secondaries in the other clusters
    const shown = await waitFor(
      "every secondary synced in the primary's status",
      primary,
      (o) =>
        (o.status?.remoteSecondaries ?? []).filter((r) => r.keyListSynced === "True").length ===
        regions.length,
    );
    expect(shown.status?.remoteSecondaries?.map((r) => [r.cluster, r.state])).toEqual([
      ["west", "Linked"],
      ["north", "Linked"],
      ["south", "Linked"],
    ]);
    const status = await tde("status", "-n", ns);
    for (const cluster of secondaryClusters())
      expect(status).toMatch(
        new RegExp(
          `edb\\s+${cluster}\\s+${ns}\\s+orders\\s+Linked\\s+secondary of ${ns}/orders\\s+${t.one?.slice(0, 12)}\\s+-\\s+KeyListSynced=True`,
        ),
      );
    const impact = await tde("impact", "e1", "-n", ns);
    for (const cluster of secondaryClusters())
      expect(impact).toMatch(new RegExp(`edb\\s+${cluster}\\s+${ns}\\s+orders`));
  });

  it("R19 R21 linked, synced and unchanging: no write and no DEK wrap or unwrap in any cluster, and each link reads at most its objects once per read ttl", async () => {
    const ops = () => [east, ...regions.map((r) => r.op)];
    const quiet = () => ops().every((op) => op.counts.writes.every((w) => w.resource === "events"));
    // let the sync above settle: 2 s with no write, then a window of ten read ttls (500 ms)
    const settleBy = Date.now() + 60_000;
    do {
      for (const op of ops()) op.resetCounts();
      await new Promise((r) => setTimeout(r, 2_000));
    } while (!quiet() && Date.now() < settleBy);
    for (const op of ops()) op.resetCounts();
    for (const r of regions) {
      r.fromEast.resetCounts();
      r.toEast.resetCounts();
    }
    const windowMs = 5_000;
    await new Promise((r) => setTimeout(r, windowMs));
    for (const op of ops()) {
      expect(op.counts.writes.filter((w) => w.resource !== "events")).toEqual([]);
      expect(op.counts.kms.dekWrap ?? 0).toBe(0);
      // every unwrap is a probe's round trip (give or take one in flight per key at either edge)
      const keys = op.operator.keyProtectors.store.list().length;
      expect((op.counts.kms.unwrap ?? 0) - (op.counts.kms.wrap ?? 0)).toBeLessThanOrEqual(keys);
    }
    // a link reads the peer database and its envelope, each at most once per ttl (500 ms), with
    // a ttl's slack at either edge of the window: 2 x (10 + 2)
    for (const r of regions)
      for (const link of [r.fromEast, r.toEast]) {
        const reads = link.snapshot().requests;
        expect(reads, r.cluster).toBeGreaterThan(0);
        expect(reads, r.cluster).toBeLessThanOrEqual(2 * (windowMs / 500 + 2));
      }
  });

  it("R21 a rotation runs in order across clusters: every secondary holds the new key before the primary switches, then each follows", async () => {
    await e.patch("EncryptedDatabase", ns, "orders", {
      spec: { encryptionProtector: { keyProtectorRef: { name: "e2" } } },
    });
    const switched = await waitFor(
      "primary switched",
      primary,
      (o) => o.status?.effectiveProtector?.thumbprint === t.two,
      60_000,
    );
    expect(cond(switched, "RotationBlocked")?.status).not.toBe("True");
    const since = switched.status?.keyList?.find(
      (k) => k.thumbprint === t.two && k.role === "protector",
    )?.since;
    for (const r of regions) {
      // the order: when the primary's protector changed, each secondary already held a proven wrap under it
      const s = await secondary(r);
      const wrap = findWrapByThumbprint(
        await readEnvelope(r.api, ns, s.status!.envelopeSecretName!),
        t.two ?? "",
      );
      expect(wrap, r.cluster).toBeDefined();
      expect(Date.parse(wrap?.addedAt ?? "")).toBeLessThanOrEqual(Date.parse(since ?? ""));
      const followed = await waitFor(
        `${r.cluster} follows`,
        () => secondary(r),
        (o) => o.status?.effectiveProtector?.thumbprint === t.two,
        60_000,
      );
      expect(followed.status?.effectiveProtector?.keyProtectorName).toBe("w2");
      expect(followed.status?.dekID).toBe(switched.status?.dekID);
    }
  });

  it("R21 west partitioned mid-rotation: the primary waits naming it, north holds the key but nothing switches, no DEK lost; it heals by itself", async () => {
    const west = region("west");
    const north = region("north");
    t.three = await importKey(e, "e3", material.three);
    for (const r of regions) expect(await importKey(r.api, "w3", material.three)).toBe(t.three);
    const dekID = (await primary()).status?.dekID;
    // a black hole one way (reads time out), refused connections the other
    await west.fromEast.loss("hold");
    await west.toEast.loss("refuse");
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
    expect(message(blocked, "RotationBlocked")).not.toContain(`north/${ns}/orders`);
    expect(cond(blocked, "KeyListSynced")).toMatchObject({
      status: "False",
      reason: "RemoteClusterUnreachable",
    });
    expect(message(blocked, "KeyListSynced")).toContain("west");
    expect(blocked.status?.effectiveProtector?.thumbprint).toBe(t.two);
    expect(await tde("status", "-n", ns)).toMatch(/edb\s+west\s+\S+\s+orders\s+Unreachable \(Unreachable\)/);
    expect(await metric(east, "tde_remote_cluster_up")).toEqual([
      { cluster: "north", value: 1 },
      { cluster: "south", value: 1 },
      { cluster: "west", value: 0 },
    ]);
    // north, still linked, takes the new key as an additional one, and keeps its protector
    const ready = await waitFor(
      "north holds the new key",
      () => secondary(north),
      (o) => (o.status?.keyList ?? []).some((k) => k.thumbprint === t.three && k.until === undefined),
      60_000,
    );
    expect(ready.status?.effectiveProtector?.thumbprint).toBe(t.two);
    const cut = await waitFor(
      "west says its primary cannot be read",
      () => secondary(west),
      (o) => cond(o, "KeyListSynced")?.reason === "RemoteClusterUnreachable",
      60_000,
    );
    expect(message(cut, "KeyListSynced")).toContain(`east/${ns}/orders`);
    // west keeps its DEK and its key while cut off: nothing moves back, nothing half-switched
    expect(cut.status?.state).toBe("Available");
    expect(cut.status?.effectiveProtector?.thumbprint).toBe(t.two);
    expect(cut.status?.dekID).toBe(dekID);
    const stillPrimary = await readEnvelope(e, ns, blocked.status!.envelopeSecretName!);
    expect(stillPrimary.dekID).toBe(dekID);
    expect(stillPrimary.wraps.find((x) => x.role === "protector")?.thumbprint).toBe(t.two);
    expect((await primary()).status?.effectiveProtector?.thumbprint).toBe(t.two);
    // west's operator restarts while cut off: it remembers nothing, and still moves nothing
    await west.op.stop();
    west.op = await regionOperator(west.kc, "west");
    await new Promise((r) => setTimeout(r, 3_000));
    const restarted = await secondary(west);
    expect(cond(restarted, "KeyListSynced")?.reason).toBe("RemoteClusterUnreachable");
    expect(restarted.status?.effectiveProtector?.thumbprint).toBe(t.two);
    expect(restarted.status?.state).toBe("Available");
    expect(west.op.counts.kms.dekWrap ?? 0).toBe(0);

    await west.fromEast.heal();
    await west.toEast.heal();
    const healed = await waitFor(
      "primary rotates once the link is back",
      primary,
      (o) => o.status?.effectiveProtector?.thumbprint === t.three,
      60_000,
    );
    expect(cond(healed, "RotationBlocked")?.status).toBe("False");
    expect(healed.status?.dekID).toBe(dekID);
    // 0 DEKs lost: every region's DEK unwraps under its own vault's key, with the key check value
    expect(
      await unwrapsWithKcv(e, await readEnvelope(e, ns, healed.status!.envelopeSecretName!), ns, "e3-kek"),
    ).toBe(true);
    for (const r of regions) {
      const after = await waitFor(
        `${r.cluster} follows and is synced`,
        () => secondary(r),
        (o) =>
          o.status?.effectiveProtector?.thumbprint === t.three && cond(o, "KeyListSynced")?.status === "True",
        60_000,
      );
      expect(after.status?.dekID).toBe(dekID);
      expect(
        await unwrapsWithKcv(
          r.api,
          await readEnvelope(r.api, ns, after.status!.envelopeSecretName!),
          ns,
          "w3-kek",
        ),
      ).toBe(true);
    }
    await waitFor(
      "links up again",
      () => metric(east, "tde_remote_cluster_up"),
      (m) => m.every((x) => x.value === 1),
    );
  });

  it("R22 promotion in west needs no key work; the old primary sees itself demoted by west, and north stays its secondary", async () => {
    const west = region("west");
    const before = await secondary(west);
    const envelopeBefore = await readEnvelope(west.api, ns, before.status!.envelopeSecretName!);
    west.op.resetCounts();
    await west.api.patch("EncryptedDatabase", ns, "orders", {
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
      () => secondary(west),
      (o) =>
        o.status?.observedGeneration === o.metadata?.generation && o.spec.replication?.role === "Primary",
    );
    expect(promoted.status?.state).toBe("Available");
    expect(promoted.status?.dekID).toBe(before.status?.dekID);
    expect(await readEnvelope(west.api, ns, promoted.status!.envelopeSecretName!)).toEqual(envelopeBefore);
    expect(west.op.counts.kms.dekWrap ?? 0).toBe(0);
    const demoted = await waitFor(
      "old primary demoted",
      primary,
      (o) => cond(o, "ReplicationLinked")?.reason === "SecondaryPromoted",
    );
    expect(cond(demoted, "ReplicationLinked")?.status).toBe("False");
    expect(message(demoted, "ReplicationLinked")).toContain(`west/${ns}/orders was promoted`);
    expect(message(demoted, "ReplicationLinked")).not.toContain("north");
    expect(cond(await secondary(region("north")), "ReplicationLinked")?.status).toBe("True");
  });

  it("R1 no DEK in any object of the other clusters", async () => {
    const dir = leakCanaryDir();
    expect(dir, "the integration project's global setup provides the run directory").toBeDefined();
    for (const r of regions) {
      const scan = await scanRun(dir ?? "", r.kc);
      expect(scan.listFailures).toEqual([]);
      expect(scan.deks).toBeGreaterThan(0);
      expect(scan.envelopes).toBeGreaterThan(0);
      expect(scan.leaks, r.cluster).toEqual([]);
    }
  });
});
