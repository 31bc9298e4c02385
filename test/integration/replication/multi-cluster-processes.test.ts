/**
 * R19-R21 across clusters with each cluster's operator as its own OS process (`tsx src/main.ts`,
 * as the image runs it): east's under the shipped ServiceAccount and RBAC on the harness's control
 * plane (so the shipped RBAC is proven enough to read the cluster Secrets), west's on a second real
 * control plane (as its admin), each reading the other only as the chart's remote reader through a link of its
 * own. West's operator is SIGKILLed while the primary rotates: the primary waits for it, nothing
 * switches half-way, and once west's operator is back the rotation completes with the same DEK.
 * The in-process journeys (partition, promotion, four clusters) are multi-cluster.test.ts.
 */
import { join } from "node:path";
import type * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findWrapByThumbprint } from "../../../src/crypto/index.js";
import { startCluster } from "../../harness/clusters.js";
import type { ControlPlane } from "../../harness/control-plane.js";
import type { FaultProxy } from "../../harness/fault-proxy.js";
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
  waitFor,
} from "../controllers/helpers.js";
import { OperatorProcess, scratchDir } from "../reliability/support.js";
import { createGeoPair, harnessEnd, linkClusters, planeEnd } from "./geo-support.js";

const id = suffix();
const ns = `mcp-${id}`;
const opEast = `mcp-op-east-${id}`;
const opWest = `mcp-op-west-${id}`;
const logs = scratchDir("multi-cluster-processes");

let e: Api;
let w: Api;
let westKc: k8s.KubeConfig;
let westPlane: ControlPlane;
let east: OperatorProcess;
let west: OperatorProcess;
const links: FaultProxy[] = [];
const material = { one: keyMaterial(), two: keyMaterial(), three: keyMaterial() };
const t: Record<string, string> = {};

const geoFlags = (cluster: string) => ["--cluster-name", cluster, "--remote-read-ttl", "500ms"];
const westOperator = () =>
  OperatorProcess.start({
    operatorNamespace: opWest,
    watchNamespaces: [ns],
    logFile: join(logs, "west.log"),
    kubeconfigPath: westPlane.started.kubeconfigPath,
    extraArgs: geoFlags("west"),
  });

const primary = () => e.get<EncryptedDatabase>("EncryptedDatabase", ns, "orders");
const secondary = () => w.get<EncryptedDatabase>("EncryptedDatabase", ns, "orders");
const message = (o: EncryptedDatabase, type: string) =>
  o.status?.conditions?.find((c) => c.type === type)?.message ?? "";

beforeAll(async () => {
  e = api(kc());
  const started = await startCluster();
  westPlane = started.plane;
  westKc = started.kc;
  w = api(westKc);
  for (const [a, names] of [
    [e, [ns]],
    [w, [ns, opWest]],
  ] as const)
    for (const name of names) await a.core.createNamespace({ body: { metadata: { name } } });
  // east's operator namespace is made by the shipped RBAC's install (OperatorProcess)
  east = await OperatorProcess.start({
    operatorNamespace: opEast,
    watchNamespaces: [ns],
    logFile: join(logs, "east.log"),
    extraArgs: geoFlags("east"),
  });
  west = await westOperator();
  links.push(...(await linkClusters(harnessEnd(opEast), planeEnd("west", westPlane, westKc, opWest), [ns])));
}, 300_000);

afterAll(async () => {
  await east?.stop();
  await west?.stop();
  for (const l of links) await l.stop();
  await westPlane?.stop();
});

describe("geo-replication across clusters, each operator its own process", () => {
  it("R20 R31 the secondary in west holds the primary's DEK under west's own key, the operators each a process (east under the shipped RBAC)", async () => {
    t.one = await importKeyProtector(e, ns, "e1", material.one);
    t.two = await importKeyProtector(e, ns, "e2", material.two);
    t.three = await importKeyProtector(e, ns, "e3", material.three);
    expect(await importKeyProtector(w, ns, "w1", material.one)).toBe(t.one);
    expect(await importKeyProtector(w, ns, "w2", material.two)).toBe(t.two);
    expect(await importKeyProtector(w, ns, "w3", material.three)).toBe(t.three);
    await createGeoPair(e, w, ns, "e1", "w1");
    const p = await waitFor("primary Ready", primary, (o) => cond(o, "Ready")?.status === "True", 60_000);
    const s = await waitFor("secondary Available", secondary, (o) => o.status?.state === "Available", 90_000);
    expect(s.status?.dekID).toBe(p.status?.dekID);
    expect(cond(s, "KeyListSynced")?.status).toBe("True");
    const envelope = await readEnvelope(w, ns, s.status!.envelopeSecretName!);
    expect(envelope.wraps.map((x) => x.keyID)).toEqual([
      expect.stringMatching(new RegExp(`^local://${ns}/w1-kek/`)),
    ]);
    // R21 orders a rotation over the secondaries the primary has seen linked (as within one
    // cluster): wait for its read of west, reused for the read ttl, to say so
    await waitFor(
      "the primary sees west linked and synced",
      primary,
      (o) =>
        (o.status?.remoteSecondaries ?? []).some((r) => r.state === "Linked" && r.keyListSynced === "True"),
      60_000,
    );
    expect(east.refusals()).toEqual([]); // the shipped RBAC reads the cluster Secret and all it needs
  });

  it("R21 a rotation runs in order between the two processes", async () => {
    await e.patch("EncryptedDatabase", ns, "orders", {
      spec: { encryptionProtector: { keyProtectorRef: { name: "e2" } } },
    });
    const switched = await waitFor(
      "primary switched",
      primary,
      (o) => o.status?.effectiveProtector?.thumbprint === t.two,
      60_000,
    );
    const since = switched.status?.keyList?.find(
      (k) => k.thumbprint === t.two && k.role === "protector",
    )?.since;
    const wrap = findWrapByThumbprint(
      await readEnvelope(w, ns, (await secondary()).status!.envelopeSecretName!),
      t.two ?? "",
    );
    expect(Date.parse(wrap?.addedAt ?? "")).toBeLessThanOrEqual(Date.parse(since ?? ""));
    await waitFor(
      "west follows",
      secondary,
      (o) => o.status?.effectiveProtector?.thumbprint === t.two,
      60_000,
    );
  });

  it("R21 R1 west's operator SIGKILLed: the primary's next rotation waits for west, nothing half-switched; west's operator back, it completes with the same DEK", async () => {
    const dekID = (await primary()).status?.dekID;
    await west.kill();
    await e.patch("EncryptedDatabase", ns, "orders", {
      spec: { encryptionProtector: { keyProtectorRef: { name: "e3" } } },
    });
    const blocked = await waitFor(
      "primary waits for west",
      primary,
      (o) => cond(o, "RotationBlocked")?.status === "True",
      60_000,
    );
    expect(message(blocked, "RotationBlocked")).toContain(`west/${ns}/orders`);
    expect(blocked.status?.effectiveProtector?.thumbprint).toBe(t.two);
    // a few read ttls later, still nothing has moved on either side
    await new Promise((r) => setTimeout(r, 3_000));
    expect((await primary()).status?.effectiveProtector?.thumbprint).toBe(t.two);
    const cut = await secondary();
    expect(cut.status?.effectiveProtector?.thumbprint).toBe(t.two);
    expect(cut.status?.dekID).toBe(dekID);
    west = await westOperator();
    const done = await waitFor(
      "primary rotates once west's operator is back",
      primary,
      (o) => o.status?.effectiveProtector?.thumbprint === t.three,
      90_000,
    );
    expect(done.status?.dekID).toBe(dekID);
    const followed = await waitFor(
      "west follows",
      secondary,
      (o) =>
        o.status?.effectiveProtector?.thumbprint === t.three && cond(o, "KeyListSynced")?.status === "True",
      90_000,
    );
    expect(followed.status?.dekID).toBe(dekID);
    expect(followed.status?.state).toBe("Available");
  });
});
