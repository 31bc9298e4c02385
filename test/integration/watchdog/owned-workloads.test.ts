/**
 * R10/R11 enforcement that holds against the database operator owning the workload, on the real
 * API server: a CRD serving /scale with a controller that keeps resetting the replicas of the
 * StatefulSet it owns; a workloadRef pointing at that owned StatefulSet (enforced on its owner);
 * someone scaling the owner back up while Inaccessible; and the manifests docs/ shows for
 * mariadb-operator (MariaDB through /scale) and CloudNativePG (the hibernation annotation, and
 * ScaleToZero refused by a Cluster that cannot go below one instance).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  PREVIOUS_REPLICAS_ANNOTATION,
  PREVIOUS_VALUES_ANNOTATION,
} from "../../../src/watchdog/enforcement.js";
import { startTestOperator, type TestOperator } from "../../harness/operator.js";
import { type Api, api, type EncryptedServer, kc, suffix, waitFor } from "../controllers/helpers.js";
import {
  CnpgClusterKind,
  client,
  createOwner,
  EngineKind,
  installOperatorCrds,
  MariaDbKind,
  readOwner,
  readStatefulSet,
  runOwnerController,
  StatefulSetKind,
} from "./database-operators.js";
import { KeyFaults, sleep } from "./support.js";

const id = suffix();
const ns = `owned-${id}`;
const opNs = `owned-op-${id}`;
const PROBE_MS = 1_000;
const GRACE = "5s";
const KEY = "owned-kek";

const faults = new KeyFaults();
let a: Api;
let op: TestOperator;
const controllers: { stop(): Promise<void>; stats: { resets: number } }[] = [];

type Cond = { type: string; status: string; reason: string; message: string };
const cond = (o: { status?: { conditions?: Cond[] } } | undefined, type: string) =>
  o?.status?.conditions?.find((c) => c.type === type);
const server = (name: string) => a.get<EncryptedServer>("EncryptedServer", ns, name);

const inState = (name: string, state: string) =>
  waitFor(
    `${name} ${state}`,
    () => server(name),
    (s) => s.status?.state === state,
    30_000,
  );
const statefulSetAt = (name: string, replicas: number, what: string) =>
  waitFor(
    what,
    () => readStatefulSet(ns, name),
    (s) => s.replicas === replicas,
    10_000,
  );

interface Sample {
  at: number;
  state: string | undefined;
  owner: number | undefined;
  child: number | undefined;
}

/** Polls a server's state, its owner's replicas and its StatefulSet's, every ~100 ms. */
function timeline(serverName: string, read: () => Promise<{ owner?: number; child?: number }>) {
  const samples: Sample[] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      try {
        const [s, r] = await Promise.all([server(serverName), read()]);
        samples.push({ at: Date.now(), state: s.status?.state, owner: r.owner, child: r.child });
      } catch {
        // a failed read says nothing
      }
      await sleep(100);
    }
  })();
  return {
    samples,
    async stop() {
      stopped = true;
      await loop;
      return samples;
    },
  };
}

/** The distinct values in order: [3, 0, 3] means taken once and given back once. */
const runs = (values: (number | undefined)[]) => values.filter((v, i) => i === 0 || v !== values[i - 1]);

beforeAll(async () => {
  await installOperatorCrds([EngineKind, MariaDbKind, CnpgClusterKind]);
  a = api(kc());
  op = await startTestOperator({
    watchNamespaces: [ns],
    operatorNamespace: opNs,
    probeIntervalMs: PROBE_MS,
    wrapLocal: faults.wrap,
  });
  controllers.push(runOwnerController(EngineKind, ns), runOwnerController(MariaDbKind, ns));
  await a.local.createKey(ns, KEY, { size: 2048 });
  await a.create("KeyProtector", ns, "owned-key", { provider: "Local", local: { secretRef: { name: KEY } } });
  await waitFor(
    "KeyProtector owned-key Ready",
    () => a.get<{ status?: { conditions?: Cond[] } }>("KeyProtector", ns, "owned-key"),
    (kp) => cond(kp, "Ready")?.status === "True",
  );
}, 120_000);

afterAll(async () => {
  for (const c of controllers) await c.stop();
  await op?.stop();
});

const serverSpec = (workloadRef: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
  protector: { type: "CustomerManaged", keyProtectorRef: { name: "owned-key" } },
  keyAccessGracePeriod: GRACE,
  revalidation: "Automatic",
  workloadRef,
  ...extra,
});

describe("R10 R11 enforcement holds against the operator that owns the workload", () => {
  it("R10 a workloadRef at an owned StatefulSet is enforced on its owner through /scale: the lockout holds while the owner's controller keeps resetting, and is given back once", async () => {
    await createOwner(EngineKind, ns, "eng", 3);
    await waitFor(
      "the Engine's StatefulSet",
      () => readStatefulSet(ns, "eng"),
      (s) => s.replicas === 3,
    );
    // what scaling the owned StatefulSet itself would do: its owner's controller puts it back at once
    await client().patch(StatefulSetKind, ns, "eng", { spec: { replicas: 0 } });
    await waitFor(
      "the owner's controller resets it",
      () => readStatefulSet(ns, "eng"),
      (s) => s.replicas === 3,
      5_000,
    );
    await a.create("EncryptedServer", ns, "owned", serverSpec({ kind: "StatefulSet", name: "eng" }));
    // ... a second, pointed at a MariaDB as docs/enforcement-mariadb-operator.md shows
    await createOwner(MariaDbKind, ns, "mdb", 3);
    await a.create(
      "EncryptedServer",
      ns,
      "mariadb",
      serverSpec({ apiVersion: "k8s.mariadb.com/v1alpha1", kind: "MariaDB", name: "mdb" }),
    );
    // ... and a third, on a Cluster the way docs/enforcement-cloudnativepg.md shows: hibernation
    await createOwner(CnpgClusterKind, ns, "pg", 3, {
      annotations: { team: "payments", "cnpg.io/hibernation": "off" },
    });
    await a.create(
      "EncryptedServer",
      ns,
      "cnpg",
      serverSpec(
        { apiVersion: "postgresql.cnpg.io/v1", kind: "Cluster", name: "pg" },
        {
          enforcement: "Patch",
          enforcementPatch: { metadata: { annotations: { "cnpg.io/hibernation": "on" } } },
        },
      ),
    );
    // ... and one that asks a Cluster (at least one instance) for ScaleToZero
    await createOwner(CnpgClusterKind, ns, "pg-min", 2);
    await a.create(
      "EncryptedServer",
      ns,
      "cnpg-scale",
      serverSpec({ apiVersion: "postgresql.cnpg.io/v1", kind: "Cluster", name: "pg-min" }),
    );
    for (const name of ["owned", "mariadb", "cnpg", "cnpg-scale"]) {
      await waitFor(
        `${name} Available`,
        () => server(name),
        (s) => cond(s, "Ready")?.status === "True",
        60_000,
      );
    }
    const owned = await waitFor(
      "owned names the owner to point workloadRef at",
      () => server("owned"),
      (s) => cond(s, "EnforcementTarget")?.reason === "OwnerTargeted",
    );
    expect(cond(owned, "EnforcementTarget")).toMatchObject({ status: "True", reason: "OwnerTargeted" });
    expect(cond(owned, "EnforcementTarget")?.message).toContain(
      "StatefulSet.apps/eng is controlled by Engine.enforce.tde.dev/eng",
    );
    expect(cond(owned, "EnforcementTarget")?.message).toContain(
      "point spec.workloadRef at {apiVersion: enforce.tde.dev/v1, kind: Engine, name: eng}",
    );
    expect(cond(await server("mariadb"), "EnforcementTarget")).toMatchObject({
      status: "True",
      reason: "WorkloadResolved",
    });

    const ownedLine = timeline("owned", async () => ({
      owner: (await readOwner(EngineKind, ns, "eng")).replicas,
      child: (await readStatefulSet(ns, "eng")).replicas,
    }));
    const mariaLine = timeline("mariadb", async () => ({
      owner: (await readOwner(MariaDbKind, ns, "mdb")).replicas,
      child: (await readStatefulSet(ns, "mdb")).replicas,
    }));
    op.resetCounts();
    const resetsBefore = controllers[0]?.stats.resets ?? 0;
    faults.fail(ns, KEY, "KeyDisabled");
    await inState("owned", "Inaccessible");
    await inState("mariadb", "Inaccessible");

    // the Engine's controller follows its owner to 0: nothing resets the StatefulSet back up
    await statefulSetAt("eng", 0, "the owned StatefulSet at 0");
    const inaccessible = await server("owned");
    expect(cond(inaccessible, "Enforced")).toMatchObject({ status: "True", reason: "ScaledToZero" });
    expect(cond(inaccessible, "Enforced")?.message).toContain(
      "Engine.enforce.tde.dev/eng scaled to 0 through /scale (was 3)",
    );
    expect(inaccessible.status?.enforcement).toMatchObject({
      previousReplicas: 3,
      target: "Engine.enforce.tde.dev/eng",
    });
    expect((await readOwner(EngineKind, ns, "eng")).annotations[PREVIOUS_REPLICAS_ANNOTATION]).toBe("3");
    expect((await readStatefulSet(ns, "eng")).annotations[PREVIOUS_REPLICAS_ANNOTATION]).toBeUndefined();

    // CloudNativePG: hibernation is on, the instances untouched; a ScaleToZero is refused by the Cluster
    const pg = await readOwner(CnpgClusterKind, ns, "pg");
    expect(pg.annotations["cnpg.io/hibernation"]).toBe("on");
    expect(pg.annotations[PREVIOUS_VALUES_ANNOTATION]).toBeDefined();
    expect(pg.replicas).toBe(3);
    expect(cond(await server("cnpg"), "Enforced")).toMatchObject({ status: "True", reason: "Patched" });
    const refused = cond(await server("cnpg-scale"), "Enforced");
    expect(refused).toMatchObject({ status: "False", reason: "ScaleRefused" });
    expect(refused?.message).toContain("cnpg.io/hibernation");

    // the lockout holds for a while, many probes and many reconciles of the owner's controller
    await sleep(4_000);
    expect((await readOwner(EngineKind, ns, "eng")).replicas).toBe(0);
    expect((await readOwner(CnpgClusterKind, ns, "pg")).annotations["cnpg.io/hibernation"]).toBe("on");

    const healedAt = Date.now();
    faults.heal(ns, KEY);
    for (const name of ["owned", "mariadb", "cnpg"]) {
      await inState(name, "Available");
    }
    await statefulSetAt("eng", 3, "the owned StatefulSet given back");
    await statefulSetAt("mdb", 3, "the MariaDB's StatefulSet given back");
    await sleep(1_500);
    const samples = await ownedLine.stop();
    const mariaSamples = await mariaLine.stop();

    // while Inaccessible (after the owner's controller had followed it down) nothing came back up,
    // until the give-back after the key answered again
    for (const line of [samples, mariaSamples]) {
      const firstZero = line.findIndex((s) => s.child === 0);
      expect(firstZero).toBeGreaterThan(-1);
      const givenBack = line.findIndex((s, i) => i > firstZero && s.owner !== 0);
      expect(line[givenBack]?.at).toBeGreaterThan(healedAt);
      const held = line.slice(firstZero, givenBack);
      // held through the 4 s the test waits, however many samples a loaded machine managed
      expect(held.at(-1)!.at - held[0]!.at).toBeGreaterThan(3_000);
      const show = (s: Sample) =>
        `${s.state} at heal${s.at - healedAt} ms: owner ${s.owner}, child ${s.child}`;
      expect(
        held.filter((s) => s.owner !== 0 || s.child !== 0).map(show),
        `the timeline from the first 0: ${held.map(show).join("; ")}`,
      ).toEqual([]);
      // until the key answered again; after it, the server turns Available before the give-back
      // lands. The lockout comes first and its record goes into the status write that says
      // Inaccessible, and a sample reads the server and the workloads at once, not atomically: the
      // first samples at 0 may still show the state before that write
      const recorded = held.findIndex((s) => s.state === "Inaccessible");
      expect(recorded, `the timeline from the first 0: ${held.map(show).join("; ")}`).toBeGreaterThan(-1);
      expect(held[recorded]!.at - held[0]!.at).toBeLessThan(2_000);
      expect(
        held
          .slice(recorded)
          .filter((s) => s.at < healedAt && s.state !== "Inaccessible")
          .map(show),
      ).toEqual([]);
      // taken once, given back once: 3 -> 0 -> 3, on the owner and on what it owns
      expect(runs(line.map((s) => s.owner))).toEqual([3, 0, 3]);
      expect(runs(line.map((s) => s.child))).toEqual([3, 0, 3]);
    }
    // the operator wrote each owner's /scale exactly twice (to 0, and back), never the StatefulSets
    const scaleWrites = op.counts.writes.filter((w) => w.subresource === "scale");
    expect(scaleWrites.filter((w) => w.resource === "engines" && w.name === "eng").length).toBe(2);
    expect(scaleWrites.filter((w) => w.resource === "mariadbs" && w.name === "mdb").length).toBe(2);
    expect(op.counts.writes.filter((w) => w.resource === "statefulsets")).toEqual([]);
    // the owner's controller was at work all along: it took its StatefulSet down and up itself
    expect(controllers[0]?.stats.resets).toBeGreaterThanOrEqual(resetsBefore + 2);
    expect((await readOwner(CnpgClusterKind, ns, "pg-min")).annotations).toEqual({});

    // hibernation removed and the Cluster's own annotations exactly as they were
    const back = await readOwner(CnpgClusterKind, ns, "pg");
    expect(back.annotations).toEqual({ team: "payments", "cnpg.io/hibernation": "off" });
    expect(
      (await readOwner(EngineKind, ns, "eng")).annotations[PREVIOUS_REPLICAS_ANNOTATION],
    ).toBeUndefined();
  }, 180_000);

  it("R10 someone scaling the owner back up while Inaccessible is taken back within a probe interval; the first count comes back", async () => {
    await createOwner(EngineKind, ns, "eng2", 2);
    await a.create(
      "EncryptedServer",
      ns,
      "direct",
      serverSpec({ apiVersion: "enforce.tde.dev/v1", kind: "Engine", name: "eng2" }),
    );
    await waitFor(
      "direct Available",
      () => server("direct"),
      (s) => cond(s, "Ready")?.status === "True",
      60_000,
    );
    faults.fail(ns, KEY, "KeyDisabled");
    await waitFor(
      "eng2 at 0",
      () => readOwner(EngineKind, ns, "eng2"),
      (o) => o.replicas === 0,
      30_000,
    );
    // a GitOps sync, or a person, puts the replicas back
    await client().patch(EngineKind.resource, ns, "eng2", { spec: { replicas: 5 } });
    const t = Date.now();
    await waitFor(
      "eng2 back at 0",
      () => readOwner(EngineKind, ns, "eng2"),
      (o) => o.replicas === 0,
      10_000,
    );
    expect(Date.now() - t).toBeLessThan(PROBE_MS * 4 + 2_000);
    expect((await readOwner(EngineKind, ns, "eng2")).annotations[PREVIOUS_REPLICAS_ANNOTATION]).toBe("2");
    faults.heal(ns, KEY);
    await waitFor(
      "direct Available again",
      () => server("direct"),
      (s) => s.status?.state === "Available",
      30_000,
    );
    expect((await readOwner(EngineKind, ns, "eng2")).replicas).toBe(2);
  }, 120_000);
});
