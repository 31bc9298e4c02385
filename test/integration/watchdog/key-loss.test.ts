/**
 * The key-access watchdog against the real API server (R10, R11, R12, R23): every cause of key
 * loss, the countdown, Inaccessible exactly at the grace deadline and not before, the three
 * enforcement modes, both revalidation modes, a short outage, copies, Events and metrics.
 * Grace periods are a few seconds and the probe interval one second; the scenarios run
 * concurrently, each on its own key, KeyProtector, server and workload.
 */
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, type ExpectStatic, it } from "vitest";
import { LocalKeyProvider } from "../../../src/kms/local.js";
import type { KeyAccessReason } from "../../../src/kms/provider.js";
import { adviceFor } from "../../../src/watchdog/access-decision.js";
import { networkPolicyName, PREVIOUS_REPLICAS_ANNOTATION } from "../../../src/watchdog/enforcement.js";
import { startTestOperator, type TestOperator } from "../../harness/operator.js";
import {
  type Api,
  api,
  cond,
  type EncryptedDatabase,
  type EncryptedServer,
  type KeyProtector,
  kc,
  suffix,
  waitFor,
} from "../controllers/helpers.js";
import { kubeConfigForUser } from "../kms/users.js";
import {
  createWorkload,
  eventsFor,
  KeyFaults,
  metricValue,
  readNetworkPolicy,
  readWorkload,
  recordTimeline,
  sleep,
  type WorkloadApis,
  workloadApis,
} from "./support.js";

const id = suffix();
const ns = `wd-${id}`;
const opNs = `wd-op-${id}`;
const PROBE_MS = 1_000;
const GRACE_MS = 6_000;
const GRACE = "6s";
/** how late Inaccessible may come after the deadline: one probe interval, plus scheduling slack under load */
const LATE_MS = PROBE_MS + 1_000;

const faults = new KeyFaults();
let a: Api;
let w: WorkloadApis;
let op: TestOperator;

beforeAll(async () => {
  const cfg = kc();
  a = api(cfg);
  w = workloadApis(cfg);
  op = await startTestOperator({
    watchNamespaces: [ns],
    operatorNamespace: opNs,
    probeIntervalMs: PROBE_MS,
    wrapLocal: faults.wrap,
  });
});

afterAll(async () => {
  await op?.stop();
});

type Cond = { type: string; status: string; reason: string; message: string };
const condOf = (o: { status?: { conditions?: Cond[] } }, type: string) =>
  o.status?.conditions?.find((c) => c.type === type);
const server = (name: string) => a.get<EncryptedServer>("EncryptedServer", ns, name);
const database = (name: string) => a.get<EncryptedDatabase>("EncryptedDatabase", ns, name);
const keyProtector = (name: string) => a.get<KeyProtector>("KeyProtector", ns, name);
const ready = (o: { status?: { conditions?: { type: string; status: string; reason: string }[] } }) =>
  cond(o, "Ready")?.status === "True";

async function newKeyProtector(name: string, keyName: string, spec: Record<string, unknown> = {}) {
  await a.local.createKey(ns, keyName, { size: 2048 });
  await a.create("KeyProtector", ns, name, {
    provider: "Local",
    local: { secretRef: { name: keyName } },
    ...spec,
  });
  return waitFor(`KeyProtector ${name} Ready`, () => keyProtector(name), ready);
}

const transitions = (from: string, to: string, kind = "EncryptedServer") =>
  metricValue(op.metrics.stateTransitions, { kind, from, to });

/** An identity of its own for one key, through RBAC on the key's Secret: revoking it is a real 403. */
function rbacIdentity(keyName: string) {
  const user = `tde-watchdog-${keyName}`;
  const binding = {
    metadata: { name: `${keyName}-reader` },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: `${keyName}-reader` },
    subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: user }],
  };
  const provider = new LocalKeyProvider(kubeConfigForUser(user).makeApiClient(k8s.CoreV1Api));
  return {
    async grant() {
      await w.rbac.createNamespacedRoleBinding({ namespace: ns, body: binding });
      // RBAC is enforced from its informer cache: wait until the identity really reads the key
      await waitFor(
        "the identity reads its key",
        () => provider.describe({ provider: "Local", namespace: ns, keyName }),
        () => true,
        10_000,
      );
    },
    async setup() {
      await w.rbac.createNamespacedRole({
        namespace: ns,
        body: {
          metadata: { name: `${keyName}-reader` },
          rules: [{ apiGroups: [""], resources: ["secrets"], resourceNames: [keyName], verbs: ["get"] }],
        },
      });
      faults.route(ns, keyName, provider);
    },
    async revoke() {
      await w.rbac.deleteNamespacedRoleBinding({ namespace: ns, name: `${keyName}-reader` });
    },
  };
}

interface Scenario {
  /** the stem of every name in the scenario; unique */
  name: string;
  reason: KeyAccessReason;
  enforcement: "ScaleToZero" | "NetworkIsolation" | "None";
  revalidation: "Automatic" | "Manual";
  workload: "StatefulSet" | "Deployment";
  keyProtectorSpec?: Record<string, unknown>;
  serverSpec?: Record<string, unknown>;
  /** before the key exists */
  prepare?: (key: string) => Promise<void>;
  /** after the key exists, before its KeyProtector */
  afterKey?: (key: string) => Promise<void>;
  lose: (key: string) => Promise<void>;
  restore: (key: string) => Promise<void>;
  withDatabase?: boolean;
}

const injected = (reason: KeyAccessReason): Pick<Scenario, "lose" | "restore"> => ({
  lose: async (key) => faults.fail(ns, key, reason),
  restore: async (key) => faults.heal(ns, key),
});

const permissionRevoked = (() => {
  let identity: ReturnType<typeof rbacIdentity>;
  return {
    prepare: async (key: string) => {
      identity = rbacIdentity(key);
      await identity.setup();
    },
    afterKey: async () => identity.grant(),
    lose: async () => identity.revoke(),
    restore: async () => identity.grant(),
  };
})();

const scenarios: Scenario[] = [
  {
    name: "disabled",
    reason: "KeyDisabled",
    enforcement: "ScaleToZero",
    revalidation: "Automatic",
    workload: "StatefulSet",
    withDatabase: true,
    lose: (key) => a.local.setEnabled(ns, key, false),
    restore: (key) => a.local.setEnabled(ns, key, true),
  },
  {
    name: "deleted",
    reason: "KeyNotFound",
    enforcement: "NetworkIsolation",
    revalidation: "Automatic",
    workload: "StatefulSet",
    lose: (key) => a.local.deleteKey(ns, key),
    restore: (key) => a.local.recoverKey(ns, key),
  },
  {
    name: "expired",
    reason: "KeyExpired",
    enforcement: "None",
    revalidation: "Automatic",
    workload: "StatefulSet",
    keyProtectorSpec: { requirements: { allowExpiry: true } },
    lose: (key) => a.local.setExpiry(ns, key, new Date(Date.now() - 60_000)),
    restore: (key) => a.local.setExpiry(ns, key, null),
  },
  {
    name: "revoked",
    reason: "PermissionDenied",
    enforcement: "ScaleToZero",
    revalidation: "Manual",
    workload: "Deployment",
    ...permissionRevoked,
  },
  {
    name: "unreachable",
    reason: "VaultUnreachable",
    enforcement: "NetworkIsolation",
    revalidation: "Manual",
    workload: "StatefulSet",
    // a token set at creation is not a request to revalidate (R11: only a change is)
    serverSpec: { revalidationToken: "set-at-creation" },
    ...injected("VaultUnreachable"),
  },
  {
    name: "denied",
    reason: "PermissionDenied",
    enforcement: "None",
    revalidation: "Manual",
    workload: "Deployment",
    ...injected("PermissionDenied"),
  },
  {
    name: "rejected",
    reason: "AuthenticationFailed",
    enforcement: "ScaleToZero",
    revalidation: "Automatic",
    workload: "Deployment",
    ...injected("AuthenticationFailed"),
  },
  {
    name: "throttled",
    reason: "Throttled",
    enforcement: "NetworkIsolation",
    revalidation: "Automatic",
    workload: "Deployment",
    ...injected("Throttled"),
  },
];

/** Checks what enforcement holds on the workload while the server is Inaccessible. */
async function expectEnforced(expect: ExpectStatic, s: Scenario, srv: EncryptedServer, wl: string) {
  const workload = await readWorkload(w, ns, s.workload, wl);
  const policy = await readNetworkPolicy(w, ns, networkPolicyName(s.name));
  const enforced = condOf(srv, "Enforced");
  if (s.enforcement === "ScaleToZero") {
    expect(workload.replicas).toBe(0);
    expect(workload.annotations[PREVIOUS_REPLICAS_ANNOTATION]).toBe("3");
    expect(srv.status?.enforcement?.previousReplicas).toBe(3);
    expect(enforced).toMatchObject({ status: "True", reason: "ScaledToZero" });
    expect(policy).toBeUndefined();
  } else if (s.enforcement === "NetworkIsolation") {
    expect(workload.replicas).toBe(3);
    expect(policy?.spec?.podSelector).toEqual({ matchLabels: { app: wl } });
    expect(policy?.spec?.policyTypes).toEqual(["Ingress"]);
    expect(policy?.spec?.ingress ?? []).toEqual([]);
    expect(policy?.metadata?.ownerReferences?.[0]).toMatchObject({ kind: "EncryptedServer", name: s.name });
    expect(enforced).toMatchObject({ status: "True", reason: "NetworkIsolated" });
  } else {
    expect(workload.replicas).toBe(3);
    expect(policy).toBeUndefined();
    expect(enforced).toMatchObject({ status: "False", reason: "EnforcementDisabled" });
  }
}

async function expectGivenBack(expect: ExpectStatic, s: Scenario, wl: string) {
  const workload = await readWorkload(w, ns, s.workload, wl);
  expect(workload.replicas).toBe(3);
  expect(workload.annotations[PREVIOUS_REPLICAS_ANNOTATION]).toBeUndefined();
  expect(await readNetworkPolicy(w, ns, networkPolicyName(s.name))).toBeUndefined();
}

async function runScenario(expect: ExpectStatic, s: Scenario) {
  const key = `${s.name}-key`;
  const kp = `${s.name}-kp`;
  const wl = `${s.name}-engine`;
  const dbName = `${s.name}-data`;
  await s.prepare?.(key);
  if (s.afterKey) {
    await a.local.createKey(ns, key, { size: 2048 });
    await s.afterKey(key);
    await a.create("KeyProtector", ns, kp, {
      provider: "Local",
      local: { secretRef: { name: key } },
      ...s.keyProtectorSpec,
    });
    await waitFor(`KeyProtector ${kp} Ready`, () => keyProtector(kp), ready);
  } else {
    await newKeyProtector(kp, key, s.keyProtectorSpec);
  }
  await createWorkload(w, ns, s.workload, wl, 3);
  await a.create("EncryptedServer", ns, s.name, {
    protector: { type: "CustomerManaged", keyProtectorRef: { name: kp } },
    keyAccessGracePeriod: GRACE,
    revalidation: s.revalidation,
    enforcement: s.enforcement,
    workloadRef: { kind: s.workload, name: wl },
    ...s.serverSpec,
  });
  if (s.withDatabase) await a.create("EncryptedDatabase", ns, dbName, { serverRef: { name: s.name } });
  await waitFor(
    `${s.name} Available`,
    () => server(s.name),
    (o) => o.status?.state === "Available",
  );
  if (s.withDatabase) await waitFor(`${dbName} Ready`, () => database(dbName), ready);

  // --- the key is lost: the countdown (R10)
  const timeline = recordTimeline(() => server(s.name));
  const lostAtLeast = Date.now();
  await s.lose(key);
  const counting = await waitFor(
    `${s.name} KeyAccessible=False`,
    () => server(s.name),
    (o) => condOf(o, "KeyAccessible")?.status === "False",
    PROBE_MS + 4_000,
  );
  const keyAccessible = condOf(counting, "KeyAccessible")!;
  expect(keyAccessible.reason).toBe(s.reason);
  expect(counting.status?.state).toBe("Available");
  expect(counting.status?.keyAccessLostSince).toBeDefined();
  const lostSince = Date.parse(counting.status!.keyAccessLostSince!);
  // from the first failed probe: no later than one probe interval after the loss (plus slack)
  expect(lostSince).toBeGreaterThanOrEqual(lostAtLeast);
  expect(lostSince - lostAtLeast).toBeLessThanOrEqual(PROBE_MS + 1_500);
  expect(keyAccessible.message).toMatch(
    /the resource becomes Inaccessible at \S+ \(grace period [0-9hms ]+\) unless access returns/,
  );
  expect(keyAccessible.message).toContain(adviceFor(s.reason));
  expect(condOf(counting, "Ready")).toMatchObject({ status: "False", reason: s.reason });
  const kpLost = await keyProtector(kp);
  expect(condOf(kpLost, "Accessible")).toMatchObject({ status: "False", reason: s.reason });
  expect(kpLost.status?.keyAccessLostSince).toBe(counting.status?.keyAccessLostSince);
  expect(await metricValue(op.metrics.keyAccessible, { namespace: ns, keyprotector: kp })).toBe(0);
  const deadline = lostSince + GRACE_MS;

  // --- Inaccessible exactly at the deadline, not before (R10)
  const gone = await waitFor(
    `${s.name} Inaccessible`,
    () => server(s.name),
    (o) => o.status?.state === "Inaccessible",
    GRACE_MS + 5_000,
  );
  const observations = await timeline.stop();
  const inaccessibleSince = Date.parse(gone.status!.inaccessibleSince!);
  expect(inaccessibleSince).toBeGreaterThanOrEqual(deadline);
  expect(inaccessibleSince - deadline).toBeLessThanOrEqual(LATE_MS);
  expect(observations.filter((o) => o.state === "Inaccessible" && o.end < deadline)).toEqual([]);
  const justBefore = observations.filter((o) => o.start >= deadline - 1_000 && o.end < deadline);
  expect(justBefore.length).toBeGreaterThan(0);
  expect(justBefore.filter((o) => o.state !== "Available" || o.keyAccessible !== "False")).toEqual([]);
  expect(condOf(gone, "KeyAccessible")?.message).toMatch(/the grace period has run out/);
  expect(condOf(gone, "Ready")).toMatchObject({ status: "False", reason: "Inaccessible" });
  await expectEnforced(expect, s, gone, wl);
  if (s.withDatabase) {
    await waitFor(
      `${dbName} Inaccessible`,
      () => database(dbName),
      (o) => o.status?.state === "Inaccessible",
    );
  }

  // --- Events and metrics for each step (R12)
  const events = await waitFor(
    `${s.name} events`,
    () => eventsFor(a.core, ns, "EncryptedServer", s.name),
    (list) => ["Inaccessible", "StateInaccessible", s.reason].every((r) => list.some((e) => e.reason === r)),
    10_000,
  );
  expect(events.find((e) => e.reason === s.reason)?.type).toBe("Warning");
  expect(events.find((e) => e.reason === "Inaccessible")?.type).toBe("Warning");
  expect(events.find((e) => e.reason === "StateInaccessible")?.message).toBe(
    "state Available -> Inaccessible",
  );
  await waitFor(
    `${kp} event`,
    () => eventsFor(a.core, ns, "KeyProtector", kp),
    (list) => list.some((e) => e.reason === s.reason && e.type === "Warning"),
    10_000,
  );
  expect(await transitions("Available", "Inaccessible")).toBeGreaterThanOrEqual(1);

  // --- access returns: revalidation (R11)
  await s.restore(key);
  if (s.revalidation === "Manual") {
    const reachable = await waitFor(
      `${s.name} key reachable`,
      () => server(s.name),
      (o) => condOf(o, "KeyAccessible")?.status === "True",
      PROBE_MS + 8_000,
    );
    expect(condOf(reachable, "KeyAccessible")?.message).toMatch(/revalidation is Manual/);
    // a few probes later, still waiting for a new token: nothing given back
    await sleep(2 * PROBE_MS + 500);
    const waiting = await server(s.name);
    expect(waiting.status?.state).toBe("Inaccessible");
    await expectEnforced(expect, s, waiting, wl);
    await a.patch("EncryptedServer", ns, s.name, { spec: { revalidationToken: `now-${Date.now()}` } });
  }
  const back = await waitFor(
    `${s.name} Available again`,
    () => server(s.name),
    (o) => o.status?.state === "Available",
    PROBE_MS + 8_000,
  );
  expect(condOf(back, "Revalidated")).toMatchObject({ status: "True", reason: "Revalidated" });
  expect(condOf(back, "KeyAccessible")?.status).toBe("True");
  expect(condOf(back, "Ready")?.status).toBe("True");
  expect(back.status?.keyAccessLostSince).toBeUndefined();
  expect(back.status?.inaccessibleSince).toBeUndefined();
  expect(back.status?.enforcement).toBeUndefined();
  await expectGivenBack(expect, s, wl);
  if (s.withDatabase) {
    const db = await waitFor(
      `${dbName} Available`,
      async () => ({ status: (await database(dbName)).status }) as EncryptedDatabase,
      (o) => o.status?.state === "Available",
    );
    expect(condOf(db, "Revalidated")?.status).toBe("True");
  }
  await waitFor(
    `${s.name} recovery events`,
    () => eventsFor(a.core, ns, "EncryptedServer", s.name),
    (list) =>
      ["Revalidated", "StateAvailable", "KeyAccessRestored"].every((r) => list.some((e) => e.reason === r)),
    10_000,
  );
  expect(await metricValue(op.metrics.keyAccessible, { namespace: ns, keyprotector: kp })).toBe(1);
  expect(await transitions("Inaccessible", "Available")).toBeGreaterThanOrEqual(1);
}

describe("R10 R11 R12 key loss, grace period, enforcement and revalidation", () => {
  for (const s of scenarios) {
    it.concurrent(`R10 R11 R12 ${s.reason}: KeyAccessible=False with a countdown, Inaccessible at the deadline (${s.enforcement}), ${s.revalidation} revalidation gives it back [${s.name}]`, async ({
      expect,
    }) => {
      await runScenario(expect, s);
    });
  }

  it.concurrent("R10 an outage shorter than the grace period changes no state and enforces nothing", async ({
    expect,
  }) => {
    const name = "blip";
    await newKeyProtector(`${name}-kp`, `${name}-key`);
    await createWorkload(w, ns, "StatefulSet", `${name}-engine`, 3);
    await a.create("EncryptedServer", ns, name, {
      protector: { type: "CustomerManaged", keyProtectorRef: { name: `${name}-kp` } },
      keyAccessGracePeriod: GRACE,
      revalidation: "Automatic",
      enforcement: "ScaleToZero",
      workloadRef: { kind: "StatefulSet", name: `${name}-engine` },
    });
    await waitFor(
      `${name} Available`,
      () => server(name),
      (o) => o.status?.state === "Available",
    );
    const timeline = recordTimeline(() => server(name));
    await a.local.setEnabled(ns, `${name}-key`, false);
    const counting = await waitFor(
      "countdown",
      () => server(name),
      (o) => condOf(o, "KeyAccessible")?.status === "False",
      PROBE_MS + 4_000,
    );
    const deadline = Date.parse(counting.status!.keyAccessLostSince!) + GRACE_MS;
    await a.local.setEnabled(ns, `${name}-key`, true);
    await waitFor(
      "key accessible again",
      () => server(name),
      (o) => condOf(o, "KeyAccessible")?.status === "True",
      PROBE_MS + 4_000,
    );
    expect(Date.now()).toBeLessThan(deadline);
    // well past the deadline the outage would have had
    await sleep(Math.max(0, deadline - Date.now()) + 2 * PROBE_MS);
    const observations = await timeline.stop();
    expect(new Set(observations.map((o) => o.state))).toEqual(new Set(["Available"]));
    const after = await server(name);
    expect(after.status?.keyAccessLostSince).toBeUndefined();
    expect(after.status?.inaccessibleSince).toBeUndefined();
    expect(condOf(after, "Enforced")).toBeUndefined();
    const workload = await readWorkload(w, ns, "StatefulSet", `${name}-engine`);
    expect(workload.replicas).toBe(3);
    expect(workload.annotations[PREVIOUS_REPLICAS_ANNOTATION]).toBeUndefined();
    const events = await waitFor(
      "the flip and its end are Events",
      () => eventsFor(a.core, ns, "EncryptedServer", name),
      (list) => list.some((e) => e.reason === "KeyAccessRestored"),
      10_000,
    );
    expect(events.filter((e) => e.reason === "KeyDisabled").map((e) => e.type)).toContain("Warning");
    expect(events.filter((e) => /Inaccessible/.test(e.reason ?? ""))).toEqual([]);
  });

  it.concurrent("R10 two KeyProtectors naming one key both see its loss, from one probe per interval", async ({
    expect,
  }) => {
    await newKeyProtector("shared-a", "shared-key");
    await a.create("KeyProtector", ns, "shared-b", {
      provider: "Local",
      local: { secretRef: { name: "shared-key" } },
    });
    await waitFor("shared-b Ready", () => keyProtector("shared-b"), ready);
    for (const kp of ["shared-a", "shared-b"]) {
      await a.create("EncryptedServer", ns, `${kp}-srv`, {
        protector: { type: "CustomerManaged", keyProtectorRef: { name: kp } },
        keyAccessGracePeriod: GRACE,
        revalidation: "Automatic",
        enforcement: "None",
      });
    }
    for (const kp of ["shared-a", "shared-b"])
      await waitFor(
        `${kp}-srv Available`,
        () => server(`${kp}-srv`),
        (o) => o.status?.state === "Available",
      );
    const lostAt = Date.now();
    await a.local.setEnabled(ns, "shared-key", false);
    const lost = await Promise.all(
      ["shared-a", "shared-b"].map((kp) =>
        waitFor(
          `${kp} sees the loss`,
          () => keyProtector(kp),
          (o) => condOf(o, "Accessible")?.status === "False",
          PROBE_MS + 4_000,
        ),
      ),
    );
    for (const kp of lost) {
      expect(condOf(kp, "Accessible")?.reason).toBe("KeyDisabled");
      expect(Date.parse(kp.status!.keyAccessLostSince!) - lostAt).toBeLessThanOrEqual(PROBE_MS + 1_500);
    }
    await Promise.all(
      ["shared-a", "shared-b"].map((kp) =>
        waitFor(
          `${kp}-srv Inaccessible`,
          () => server(`${kp}-srv`),
          (o) => o.status?.state === "Inaccessible",
          GRACE_MS + 5_000,
        ),
      ),
    );
    await a.local.setEnabled(ns, "shared-key", true);
    await Promise.all(
      ["shared-a", "shared-b"].map((kp) =>
        waitFor(
          `${kp}-srv Available`,
          () => server(`${kp}-srv`),
          (o) => o.status?.state === "Available",
          10_000,
        ),
      ),
    );
  });
});

describe("R23 a copy starts Inaccessible until revalidated", () => {
  it.concurrent("R23 R11 a restored server (Manual) is held Inaccessible and enforced until its revalidationToken changes", async ({
    expect,
  }) => {
    await a.create("EncryptedServer", ns, "copy-source", { protector: { type: "ServiceManaged" } });
    await waitFor(
      "source Available",
      () => server("copy-source"),
      (o) => o.status?.state === "Available",
    );
    await createWorkload(w, ns, "StatefulSet", "copy-manual-engine", 2);
    await a.create("EncryptedServer", ns, "copy-manual", {
      protector: { type: "ServiceManaged" },
      source: { kind: "Restore", sourceRef: { name: "copy-source" } },
      revalidation: "Manual",
      // copied from the source's spec: not a request to revalidate
      revalidationToken: "copied",
      workloadRef: { kind: "StatefulSet", name: "copy-manual-engine" },
    });
    const held = await waitFor(
      "copy Inaccessible",
      () => server("copy-manual"),
      (o) => o.status?.state === "Inaccessible",
    );
    expect(condOf(held, "KeyAccessible")?.status).toBe("True");
    expect(condOf(held, "Revalidated")).toMatchObject({ status: "False", reason: "WaitingForRevalidation" });
    expect(condOf(held, "Ready")).toMatchObject({ status: "False", reason: "Inaccessible" });
    expect(condOf(held, "Ready")?.message).toMatch(/copy starts Inaccessible until it is revalidated/);
    expect((await readWorkload(w, ns, "StatefulSet", "copy-manual-engine")).replicas).toBe(0);
    await sleep(2 * PROBE_MS + 500);
    const still = await server("copy-manual");
    expect(still.status?.state).toBe("Inaccessible");
    expect(condOf(still, "KeyAccessible")?.message).toMatch(/revalidation is Manual/);

    await a.patch("EncryptedServer", ns, "copy-manual", { spec: { revalidationToken: "go" } });
    const back = await waitFor(
      "copy revalidated",
      () => server("copy-manual"),
      (o) => o.status?.state === "Available",
      10_000,
    );
    expect(back.status?.lastRevalidatedToken).toBe("go");
    expect(condOf(back, "Revalidated")).toMatchObject({ status: "True", reason: "Revalidated" });
    const workload = await readWorkload(w, ns, "StatefulSet", "copy-manual-engine");
    expect(workload.replicas).toBe(2);
    expect(workload.annotations[PREVIOUS_REPLICAS_ANNOTATION]).toBeUndefined();
    const events = await waitFor(
      "copy events",
      () => eventsFor(a.core, ns, "EncryptedServer", "copy-manual"),
      (list) =>
        ["Inaccessible", "Revalidated", "StateAvailable"].every((r) => list.some((e) => e.reason === r)),
      10_000,
    );
    expect(events.find((e) => e.reason === "Inaccessible")?.message).toMatch(/copy starts Inaccessible/);
  });

  it.concurrent("R23 R11 a replica server (Automatic) is Inaccessible first and revalidated as soon as its key answers", async ({
    expect,
  }) => {
    await a.create("EncryptedServer", ns, "replica-source", { protector: { type: "ServiceManaged" } });
    await waitFor(
      "source Available",
      () => server("replica-source"),
      (o) => o.status?.state === "Available",
    );
    await createWorkload(w, ns, "Deployment", "replica-engine", 2);
    await a.create("EncryptedServer", ns, "replica", {
      protector: { type: "ServiceManaged" },
      source: { kind: "Replica", sourceRef: { name: "replica-source" } },
      revalidation: "Automatic",
      enforcement: "NetworkIsolation",
      workloadRef: { kind: "Deployment", name: "replica-engine" },
    });
    const back = await waitFor(
      "replica Available",
      () => server("replica"),
      (o) => o.status?.state === "Available",
    );
    expect(condOf(back, "Revalidated")).toMatchObject({ status: "True", reason: "Revalidated" });
    const events = await waitFor(
      "replica events",
      () => eventsFor(a.core, ns, "EncryptedServer", "replica"),
      (list) =>
        ["Inaccessible", "Revalidated", "StateAvailable"].every((r) => list.some((e) => e.reason === r)),
      10_000,
    );
    expect(events.find((e) => e.reason === "StateAvailable")?.message).toBe(
      "state Inaccessible -> Available",
    );
    expect(await readNetworkPolicy(w, ns, networkPolicyName("replica"))).toBeUndefined();
    expect(await transitions("None", "Inaccessible")).toBeGreaterThanOrEqual(1);
  });
});
