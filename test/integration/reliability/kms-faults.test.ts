/**
 * KMS faults through a fault-injecting proxy of our own (issue 11; R10, R11, R12, R4).
 *
 * The operator runs in-process; its Local KMS provider keeps the KEKs in Secrets, so every KMS
 * call (describe, wrap, unwrap) is an HTTP request to the real kube-apiserver. Here that provider
 * reaches the API server only through `FaultProxy` (test/harness/fault-proxy.ts), which injects
 * real transport faults into the real KMS path: 429 with Retry-After, 500, 503, requests held
 * until the client gives up, slow answers, connection resets, and total loss (a black hole that
 * never answers, then resets, then connections refused). The operator's own API traffic (informers, status) goes direct.
 *
 * Times are the production ones shortened in proportion: a grace period of 40 s instead of
 * 10 min, faults for 36 s instead of 9 min, a KMS request timeout of 1.5 s instead of 20 s; the
 * probe interval is 1 s. Every status change of every server, database and KeyProtector is
 * recorded from watches (not sampled), and checked after each scenario.
 */
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalKeyProvider } from "../../../src/kms/local.js";
import { FaultProxy, kubeConfigThrough, upstreamFromKubeConfig } from "../../harness/fault-proxy.js";
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
} from "../controllers/helpers.js";
import { createWorkload, readWorkload, sleep, type WorkloadApis, workloadApis } from "../watchdog/support.js";

const id = suffix();
const ns = `kmsf-${id}`;
const opNs = `kmsf-op-${id}`;
const PROBE_MS = 1_000;
const GRACE_MS = 40_000;
const GRACE = "40s";
/** 9 minutes of a 10-minute grace period */
const FAULT_WINDOW_MS = (GRACE_MS * 9) / 10;
/** 20 s of a 10-minute grace period, rounded up */
const KMS_REQUEST_TIMEOUT_MS = 1_500;
const KEY = "kek";
const KP = "kp";
const ENGINE = "engine";
const AUTO = "auto";
const MANUAL = "manual";
const AUTO_DATABASES = ["auto-db-0", "auto-db-1", "auto-db-2", "auto-db-3"];
const MANUAL_DATABASES = ["manual-db-0"];
const SERVERS = [AUTO, MANUAL];
const DATABASES = [...AUTO_DATABASES, ...MANUAL_DATABASES];

const log = (line: string) => process.stderr.write(`[kms-faults] ${line}\n`);

// ---- every status change, from watches ----

interface Seen {
  at: number;
  kind: "EncryptedServer" | "EncryptedDatabase" | "KeyProtector";
  name: string;
  state?: string;
  /** servers and databases: KeyAccessible; KeyProtectors: Accessible */
  access?: string;
  lostSince?: string;
}

type Status = {
  state?: string;
  keyAccessLostSince?: string;
  conditions?: { type: string; status: string }[];
};

/** Records every version of every server, database and KeyProtector of a namespace, as the API server sends it. */
class StatusLog {
  readonly seen: Seen[] = [];
  /** watches that had to be re-established (each from the last resourceVersion seen) */
  restarts = 0;
  /** events that could have been missed (a watch answered ERROR, e.g. 410 Gone) */
  gaps = 0;
  private stopped = false;
  private readonly aborts: AbortController[] = [];

  constructor(
    private readonly kcfg: k8s.KubeConfig,
    private readonly namespace: string,
  ) {}

  async start(): Promise<void> {
    await Promise.all([
      this.watch("encryptedservers", "EncryptedServer"),
      this.watch("encrypteddatabases", "EncryptedDatabase"),
      this.watch("keyprotectors", "KeyProtector"),
    ]);
  }

  stop(): void {
    this.stopped = true;
    for (const a of this.aborts) a.abort();
  }

  private async watch(plural: string, kind: Seen["kind"], resourceVersion?: string): Promise<void> {
    let last = resourceVersion;
    const path = `/apis/tde.dev/v1alpha1/namespaces/${this.namespace}/${plural}`;
    const abort = await new k8s.Watch(this.kcfg).watch(
      path,
      { allowWatchBookmarks: true, ...(resourceVersion ? { resourceVersion } : {}) },
      (type, obj: { metadata?: { name?: string; resourceVersion?: string }; status?: Status }) => {
        if (type === "ERROR") {
          this.gaps++;
          return;
        }
        last = obj.metadata?.resourceVersion ?? last;
        if (type === "BOOKMARK" || type === "DELETED") return;
        const status = obj.status ?? {};
        const access = status.conditions?.find(
          (c) => c.type === (kind === "KeyProtector" ? "Accessible" : "KeyAccessible"),
        )?.status;
        this.seen.push({
          at: Date.now(),
          kind,
          name: obj.metadata?.name ?? "",
          ...(status.state ? { state: status.state } : {}),
          ...(access ? { access } : {}),
          ...(status.keyAccessLostSince ? { lostSince: status.keyAccessLostSince } : {}),
        });
      },
      () => {
        if (this.stopped) return;
        this.restarts++;
        void this.watch(plural, kind, last).catch(() => {
          this.gaps++;
        });
      },
    );
    this.aborts.push(abort);
  }

  /** One object's versions since `from` (ms), oldest first. */
  of(kind: Seen["kind"], name: string, from = 0): Seen[] {
    return this.seen.filter((s) => s.kind === kind && s.name === name && s.at >= from);
  }

  /** How many times an object's value of `field` became `to` since `from` (consecutive repeats are one). */
  changesTo(kind: Seen["kind"], name: string, field: "state" | "access", to: string, from = 0): number {
    let count = 0;
    let previous: string | undefined;
    for (const s of this.of(kind, name)) {
      const value = s[field];
      if (value === undefined) continue;
      if (value === to && previous !== to && s.at >= from) count++;
      previous = value;
    }
    return count;
  }

  /** The longest continuous loss of a KeyProtector's key (Accessible=False until True again) since `from`, ms. */
  longestLoss(name: string, from: number, until: number): number {
    let longest = 0;
    let lostAt: number | undefined;
    for (const s of this.of("KeyProtector", name, from)) {
      if (s.access === "False" && lostAt === undefined) lostAt = s.lostSince ? Date.parse(s.lostSince) : s.at;
      if (s.access === "True" && lostAt !== undefined) {
        longest = Math.max(longest, s.at - lostAt);
        lostAt = undefined;
      }
    }
    if (lostAt !== undefined) longest = Math.max(longest, until - lostAt);
    return longest;
  }
}

// ---- the fleet ----

let a: Api;
let w: WorkloadApis;
let core: k8s.CoreV1Api;
let proxy: FaultProxy;
let op: TestOperator;
let statusLog: StatusLog;
const dekIDs = new Map<string, string>();
const figures: Record<string, unknown> = {};

const server = (name: string) => a.get<EncryptedServer>("EncryptedServer", ns, name);
const database = (name: string) => a.get<EncryptedDatabase>("EncryptedDatabase", ns, name);
const keyProtector = () => a.get<KeyProtector>("KeyProtector", ns, KP);
const everyObject = () => [
  ...SERVERS.map((name) => ({ kind: "EncryptedServer" as const, name })),
  ...DATABASES.map((name) => ({ kind: "EncryptedDatabase" as const, name })),
];

async function states(): Promise<Record<string, string | undefined>> {
  const out: Record<string, string | undefined> = {};
  for (const name of SERVERS) out[name] = (await server(name)).status?.state;
  for (const name of DATABASES) out[name] = (await database(name)).status?.state;
  return out;
}

/** Probes by result since the last call (the tenant's key and the operator's own, both through the proxy). */
async function probeCounts(): Promise<Record<string, number>> {
  const { values } = await op.metrics.keyProbes.get();
  const out: Record<string, number> = {};
  for (const v of values) out[String(v.labels.result)] = (out[String(v.labels.result)] ?? 0) + v.value;
  return out;
}
const minus = (after: Record<string, number>, before: Record<string, number>) =>
  Object.fromEntries(
    Object.entries(after)
      .map(([k, v]) => [k, v - (before[k] ?? 0)] as const)
      .filter(([, v]) => v > 0),
  );

async function transitionsInto(to: string): Promise<number> {
  const { values } = await op.metrics.stateTransitions.get();
  return values.filter((v) => v.labels.to === to).reduce((sum, v) => sum + v.value, 0);
}

/** core/v1 Events about one object with this reason, counting repeats folded into one Event. */
async function eventCount(kind: string, name: string, reason: string, message?: string): Promise<number> {
  const list = await core.listNamespacedEvent({
    namespace: ns,
    fieldSelector: `involvedObject.kind=${kind},involvedObject.name=${name},reason=${reason}`,
  });
  return list.items
    .filter((e) => message === undefined || e.message === message)
    .reduce((sum, e) => sum + (e.count ?? 1), 0);
}

/** Each resource's dekID is the one first recorded, and its protector wrap unwraps with a matching KCV (R2, R4). */
async function expectNoDataLost(): Promise<number> {
  let checked = 0;
  for (const { kind, name } of everyObject()) {
    const o = kind === "EncryptedServer" ? await server(name) : await database(name);
    expect(o.status?.dekID, name).toBe(dekIDs.get(name));
    const envelope = await readEnvelope(a, ns, o.status!.envelopeSecretName!);
    expect(envelope.dekID, name).toBe(dekIDs.get(name));
    // unwrapped by the test itself, directly (not through the proxy)
    expect(await unwrapsWithKcv(a, envelope, ns, KEY)).toBe(true);
    checked++;
  }
  return checked;
}

beforeAll(async () => {
  const admin = kc();
  a = api(admin);
  w = workloadApis(admin);
  core = admin.makeApiClient(k8s.CoreV1Api);
  proxy = await FaultProxy.start({ upstream: await upstreamFromKubeConfig(admin) });
  log(`fault proxy ${proxy.url} -> ${admin.getCurrentCluster()?.server}, seed ${proxy.seed}`);
  const through = kubeConfigThrough(proxy);
  op = await startTestOperator({
    watchNamespaces: [ns],
    operatorNamespace: opNs,
    probeIntervalMs: PROBE_MS,
    // the operator's Local KMS provider reaches its key Secrets only through the proxy
    wrapLocal: () =>
      new LocalKeyProvider(through.makeApiClient(k8s.CoreV1Api), {
        requestTimeoutMs: KMS_REQUEST_TIMEOUT_MS,
      }),
  });
  statusLog = new StatusLog(admin, ns);
  await statusLog.start();

  await a.local.createKey(ns, KEY, { size: 2048 });
  await a.create("KeyProtector", ns, KP, { provider: "Local", local: { secretRef: { name: KEY } } });
  await waitFor("KeyProtector Ready", keyProtector, (o) => cond(o, "Ready")?.status === "True", 60_000);
  await createWorkload(w, ns, "StatefulSet", ENGINE, 3);
  const protector = { type: "CustomerManaged", keyProtectorRef: { name: KP } };
  await a.create("EncryptedServer", ns, AUTO, {
    protector,
    keyAccessGracePeriod: GRACE,
    revalidation: "Automatic",
    enforcement: "ScaleToZero",
    workloadRef: { kind: "StatefulSet", name: ENGINE },
  });
  await a.create("EncryptedServer", ns, MANUAL, {
    protector,
    keyAccessGracePeriod: GRACE,
    revalidation: "Manual",
    enforcement: "None",
  });
  for (const name of AUTO_DATABASES)
    await a.create("EncryptedDatabase", ns, name, { serverRef: { name: AUTO } });
  for (const name of MANUAL_DATABASES)
    await a.create("EncryptedDatabase", ns, name, { serverRef: { name: MANUAL } });
  await waitFor(
    "the fleet Available",
    states,
    (s) => Object.values(s).every((v) => v === "Available"),
    90_000,
  );
  for (const { kind, name } of everyObject()) {
    const o = kind === "EncryptedServer" ? await server(name) : await database(name);
    dekIDs.set(name, o.status!.dekID!);
  }
  figures.deks = dekIDs.size;
}, 240_000);

afterAll(async () => {
  statusLog?.stop();
  await op?.stop();
  await proxy?.stop();
  log(`figures: ${JSON.stringify(figures)}`);
});

describe("R10 R11 KMS faults through a fault-injecting proxy in front of the Local provider's API server", () => {
  it("R10 R4 30% mixed KMS faults (429 + Retry-After, 500, 503, held requests, slow answers, resets) for 9/10 of the grace period never make anything Inaccessible, and change no DEK", async () => {
    const before = await probeCounts();
    const transitionsBefore = await transitionsInto("Inaccessible");
    proxy.resetCounts();
    const start = Date.now();
    await proxy.setFaults({
      rate: 0.3,
      mix: { throttle: 1, error500: 1, error503: 1, timeout: 1, slow: 1, reset: 1 },
      retryAfterSeconds: 2,
      // under the KMS request timeout: answered late; held ones (timeout) are given up by the client
      slowMs: 1_000,
    });
    await sleep(FAULT_WINDOW_MS);
    await proxy.heal();
    const healed = Date.now();
    const injected = proxy.snapshot();

    // the key answers again; keep watching until well past the deadline that a loss starting
    // with the faults would have had
    await waitFor(
      "the KeyProtector accessible again",
      keyProtector,
      (o) => cond(o, "Accessible")?.status === "True",
      30_000,
    );
    await waitFor(
      "every server and database KeyAccessible again",
      async () => {
        const out: string[] = [];
        for (const name of SERVERS) out.push(cond(await server(name), "KeyAccessible")?.status ?? "");
        for (const name of DATABASES) out.push(cond(await database(name), "KeyAccessible")?.status ?? "");
        return out;
      },
      (s) => s.every((v) => v === "True"),
      30_000,
    );
    await sleep(Math.max(0, start + GRACE_MS + 3 * PROBE_MS - Date.now()));
    const end = Date.now();

    // the faults were real and reached the watchdog: every kind injected, held requests given up
    // by the provider (its request timeout), failed probes, and the countdown shown
    for (const kind of ["throttle", "error500", "error503", "timeout", "slow", "reset"] as const)
      expect(injected.faults[kind], kind).toBeGreaterThan(0);
    const gaveUp = proxy.counts.clientGaveUp;
    expect(gaveUp).toBeGreaterThan(0);
    const probes = minus(await probeCounts(), before);
    const failedProbes = Object.entries(probes)
      .filter(([result]) => result !== "ok")
      .reduce((sum, [, n]) => sum + n, 0);
    expect(failedProbes).toBeGreaterThan(0);
    expect(probes.ok ?? 0).toBeGreaterThan(0);
    expect(statusLog.changesTo("KeyProtector", KP, "access", "False", start)).toBeGreaterThan(0);
    expect(statusLog.changesTo("EncryptedServer", AUTO, "access", "False", start)).toBeGreaterThan(0);

    // ...and nothing, at any version the API server held, was ever Inaccessible (R10)
    expect(statusLog.gaps).toBe(0);
    const inaccessible = statusLog.seen.filter((s) => s.state === "Inaccessible");
    expect(inaccessible).toEqual([]);
    for (const { kind, name } of everyObject()) {
      expect(statusLog.of(kind, name, start).length, `${name} was watched`).toBeGreaterThan(0);
      expect(await eventCount(kind, name, "StateInaccessible"), name).toBe(0);
      expect(await eventCount(kind, name, "Inaccessible"), name).toBe(0);
    }
    expect(await transitionsInto("Inaccessible")).toBe(transitionsBefore);
    expect(Object.values(await states()).every((s) => s === "Available")).toBe(true);
    const workload = await readWorkload(w, ns, "StatefulSet", ENGINE);
    expect(workload.replicas).toBe(3);
    const deksChecked = await expectNoDataLost();

    figures.scenarioA = {
      faultWindowS: FAULT_WINDOW_MS / 1000,
      graceS: GRACE_MS / 1000,
      requestsProxied: injected.requests,
      forwarded: injected.forwarded,
      faultsInjected: injected.faults,
      heldRequestsGivenUpByClient: gaveUp,
      probes,
      keyProtectorLossEpisodes: statusLog.changesTo("KeyProtector", KP, "access", "False", start),
      longestContinuousLossS: statusLog.longestLoss(KP, start, end) / 1000,
      serverCountdownsShown: statusLog.changesTo("EncryptedServer", AUTO, "access", "False", start),
      statusVersionsWatched: statusLog.seen.filter((s) => s.at >= start).length,
      inaccessibleTransitions: 0,
      recoveredAfterHealS: (end - healed) / 1000,
      deksChecked,
      dataLost: 0,
    };
    log(`scenario A: ${JSON.stringify(figures.scenarioA)}`);
  }, 180_000);

  it("R10 R11 R12 total KMS loss beyond the grace period: each server and database becomes Inaccessible exactly once; healed, Automatic revalidates at the next probe and Manual waits for its token", async () => {
    const before = await probeCounts();
    const transitionsBefore = await transitionsInto("Inaccessible");
    proxy.resetCounts();
    const start = Date.now();
    // a black hole first: connections accepted, nothing ever answered
    await proxy.loss("hold");
    const lost = await waitFor(
      "the KeyProtector sees the loss while the vault never answers",
      keyProtector,
      (o) => cond(o, "Accessible")?.status === "False",
      GRACE_MS / 3,
    );
    const lostSince = Date.parse(lost.status!.keyAccessLostSince!);
    // then every request reset, then connections refused: one loss, whatever its form
    await sleep(Math.max(0, lostSince + GRACE_MS / 3 - Date.now()));
    await proxy.loss("reset");
    await sleep(Math.max(0, lostSince + (2 * GRACE_MS) / 3 - Date.now()));
    await proxy.loss("refuse");

    const gone = await waitFor(
      `${AUTO} Inaccessible`,
      () => server(AUTO),
      (o) => o.status?.state === "Inaccessible",
      GRACE_MS + 60_000,
    );
    const inaccessibleAt = Date.parse(gone.status!.inaccessibleSince!);
    // not before the grace period has run out (R10)
    expect(inaccessibleAt - lostSince).toBeGreaterThanOrEqual(GRACE_MS);
    expect(cond(gone, "KeyAccessible")?.status).toBe("False");
    await waitFor(
      "every server and database Inaccessible",
      states,
      (s) => Object.values(s).every((v) => v === "Inaccessible"),
      30_000,
    );
    expect((await readWorkload(w, ns, "StatefulSet", ENGINE)).replicas).toBe(0);
    // the loss goes on for a few more probes: nothing flaps, nothing revalidates
    await sleep(5 * PROBE_MS);
    expect(Object.values(await states()).every((s) => s === "Inaccessible")).toBe(true);
    const lossRequests = proxy.snapshot();

    // --- the vault is back (R11)
    await proxy.heal();
    const healed = Date.now();
    const back = await waitFor(
      `${AUTO} Available (Automatic revalidation)`,
      () => server(AUTO),
      (o) => o.status?.state === "Available",
      60_000,
    );
    const autoBackAt = Date.now();
    expect(cond(back, "Revalidated")?.status).toBe("True");
    expect(cond(back, "KeyAccessible")?.status).toBe("True");
    expect(back.status?.inaccessibleSince).toBeUndefined();
    await waitFor(
      `${ENGINE} given back`,
      () => readWorkload(w, ns, "StatefulSet", ENGINE),
      (wl) => wl.replicas === 3,
      10_000,
    );
    for (const name of AUTO_DATABASES)
      await waitFor(
        `${name} Available`,
        () => database(name),
        (o) => o.status?.state === "Available",
        30_000,
      );
    // Manual: the key answers, but the server waits for a new revalidationToken
    const waiting = await waitFor(
      `${MANUAL} key reachable`,
      () => server(MANUAL),
      (o) => cond(o, "KeyAccessible")?.status === "True",
      30_000,
    );
    expect(waiting.status?.state).toBe("Inaccessible");
    await sleep(3 * PROBE_MS);
    expect((await server(MANUAL)).status?.state).toBe("Inaccessible");
    for (const name of MANUAL_DATABASES) expect((await database(name)).status?.state).toBe("Inaccessible");
    await a.patch("EncryptedServer", ns, MANUAL, { spec: { revalidationToken: `healed-${Date.now()}` } });
    await waitFor(
      `${MANUAL} Available after its token`,
      () => server(MANUAL),
      (o) => o.status?.state === "Available",
      30_000,
    );
    for (const name of MANUAL_DATABASES)
      await waitFor(
        `${name} Available`,
        () => database(name),
        (o) => o.status?.state === "Available",
        30_000,
      );
    await sleep(2 * PROBE_MS);

    // exactly one transition into Inaccessible and one back, per object: in the watched
    // versions, in the Events (R12) and in the metric
    expect(statusLog.gaps).toBe(0);
    const objects = everyObject();
    for (const { kind, name } of objects) {
      expect(statusLog.changesTo(kind, name, "state", "Inaccessible", start), name).toBe(1);
      expect(statusLog.changesTo(kind, name, "state", "Available", start), name).toBe(1);
    }
    for (const { kind, name } of objects) {
      await waitFor(
        `${name} state Events`,
        () => eventCount(kind, name, "StateAvailable", "state Inaccessible -> Available"),
        (n) => n >= 1,
        10_000,
      );
      expect(await eventCount(kind, name, "StateInaccessible"), name).toBe(1);
      expect(await eventCount(kind, name, "StateAvailable", "state Inaccessible -> Available"), name).toBe(1);
    }
    expect((await transitionsInto("Inaccessible")) - transitionsBefore).toBe(objects.length);
    expect(Object.values(await states()).every((s) => s === "Available")).toBe(true);
    const deksChecked = await expectNoDataLost();

    figures.scenarioB = {
      requestsProxiedDuringLoss: lossRequests.requests,
      lostRequests: lossRequests.faults.loss,
      heldUntilClientGaveUp: lossRequests.clientGaveUp,
      forwardedDuringLoss: lossRequests.forwarded,
      probes: minus(await probeCounts(), before),
      lossToInaccessibleS: (inaccessibleAt - lostSince) / 1000,
      blackHoleSeenAfterS: (lostSince - start) / 1000,
      totalLossS: (healed - start) / 1000,
      healToAutomaticRevalidationS: (autoBackAt - healed) / 1000,
      inaccessibleTransitions: Object.fromEntries(
        objects.map(({ kind, name }) => [
          name,
          statusLog.changesTo(kind, name, "state", "Inaccessible", start),
        ]),
      ),
      watchRestarts: statusLog.restarts,
      deksChecked,
      dataLost: 0,
    };
    log(`scenario B: ${JSON.stringify(figures.scenarioB)}`);
  }, 240_000);
});
