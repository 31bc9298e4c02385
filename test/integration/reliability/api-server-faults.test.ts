/**
 * API server faults (issue 11). Each test starts its OWN control plane (etcd and kube-apiserver),
 * since it takes it down, with the operator as a separate process on a Local KEK:
 *
 * 1. R4 R2: kube-apiserver and etcd SIGKILLed while the operator creates the DEKs of a fleet
 *    (1 server, 40 databases), restarted on the same data: the operator relists and converges, and
 *    no resource gets a second DEK.
 * 2. R4 R6 R16: the API server runs without its watch cache and with a 1 s etcd compaction
 *    interval; the operator is cut from it (a TCP proxy drops every connection) while databases
 *    are created and the key rotated, until a watch from the last revision before the cut is
 *    answered 410 Gone. Healed, the operator's watches are expired: it relists, acts on what
 *    changed while it was cut, converges without a duplicate DEK, stays the same process and
 *    goes quiet (no API write, no relist over an idle window).
 *
 * The operator authenticates with its own token (user `tde-operator`), and the API server's audit
 * log records each of its requests: relists and writes are counted from there.
 */
import { execFile } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server, type Socket, connect as tcpConnect } from "node:net";
import { join } from "node:path";
import { promisify } from "node:util";
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EncryptedDatabase, EncryptedServer } from "../../../src/api/index.js";
import {
  decodeEnvelopeSecret,
  type Envelope,
  verifyUnwrapped,
  wrappedBytes,
} from "../../../src/crypto/index.js";
import { parseLocalKeyID } from "../../../src/kms/local.js";
import { ControlPlane } from "../../harness/control-plane.js";
import { installCrds } from "../../harness/crds.js";
import { freePort } from "../../harness/ports.js";
import { type Api, api, suffix } from "../controllers/helpers.js";
import { OperatorProcess, scratchDir, sleep } from "./support.js";

const DATABASES = 40;
/** databases created while the operator's watches are cut (test 2) */
const EXTRA = 10;
const KEY = "faults-kek";
const OPERATOR_USER = "tde-operator";
const log = (line: string) => process.stderr.write(`[api-server-faults] ${line}\n`);
const _execFileAsync = promisify(execFile);
const dbName = (i: number) => `db-${String(i).padStart(4, "0")}`;

// ---------------------------------------------------------------------------------------------
// A control plane of our own, with a token user for the operator and an audit log of its calls.

interface AuditEvent {
  stage: string;
  verb: string;
  requestURI: string;
  user?: { username?: string };
  objectRef?: { resource?: string; namespace?: string; name?: string; subresource?: string };
  responseStatus?: { code?: number };
  requestReceivedTimestamp: string;
}

class Plane {
  readonly cp: ControlPlane;
  kcfg!: k8s.KubeConfig;
  a!: Api;
  objects!: k8s.CustomObjectsApi;
  private readonly token = `op-${suffix()}${suffix()}`;

  constructor(
    readonly dir: string,
    extraApiserverArgs: string[],
  ) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, "tokens.csv"),
      `${this.token},${OPERATOR_USER},tde-operator-uid,"system:masters"\n`,
    );
    // only the operator's requests, at Metadata level, once each (when the response is complete)
    writeFileSync(
      join(dir, "audit-policy.yaml"),
      [
        "apiVersion: audit.k8s.io/v1",
        "kind: Policy",
        'omitStages: ["RequestReceived", "ResponseStarted"]',
        "rules:",
        "- level: Metadata",
        `  users: ["${OPERATOR_USER}"]`,
        "- level: None",
        "",
      ].join("\n"),
    );
    this.cp = new ControlPlane({
      log,
      extraApiserverArgs: [
        `--token-auth-file=${join(dir, "tokens.csv")}`,
        `--audit-policy-file=${join(dir, "audit-policy.yaml")}`,
        `--audit-log-path=${this.auditLog}`,
        ...extraApiserverArgs,
      ],
    });
  }

  get auditLog(): string {
    return join(this.dir, "audit.log");
  }

  get apiserverLog(): string {
    return join(this.cp.started.dir, "kube-apiserver.log");
  }

  async start(): Promise<void> {
    const info = await this.cp.start();
    this.kcfg = new k8s.KubeConfig();
    this.kcfg.loadFromFile(info.kubeconfigPath);
    this.a = api(this.kcfg);
    this.objects = this.kcfg.makeApiClient(k8s.CustomObjectsApi);
    installCrds(info.binaries.kubectl, info.kubeconfigPath);
  }

  /** A kubeconfig for the operator's token user, to `server` (default: the API server itself). */
  operatorKubeconfig(server = this.cp.started.server): string {
    const path = join(this.dir, `operator-${suffix()}.kubeconfig`);
    const ca = readFileSync(this.cp.started.pki.caCert).toString("base64");
    writeFileSync(
      path,
      [
        "apiVersion: v1",
        "kind: Config",
        "clusters:",
        "- name: own",
        "  cluster:",
        `    server: ${server}`,
        `    certificate-authority-data: ${ca}`,
        "users:",
        `- name: ${OPERATOR_USER}`,
        "  user:",
        `    token: ${this.token}`,
        "contexts:",
        "- name: own",
        "  context:",
        "    cluster: own",
        `    user: ${OPERATOR_USER}`,
        "current-context: own",
        "",
      ].join("\n"),
    );
    return path;
  }

  /** The operator's requests the API server answered in [since, until). */
  operatorCalls(since = 0, until = Number.POSITIVE_INFINITY): AuditEvent[] {
    let text = "";
    try {
      text = readFileSync(this.auditLog, "utf8");
    } catch {
      return [];
    }
    const out: AuditEvent[] = [];
    for (const line of text.split("\n")) {
      if (!line.trim()) continue;
      let e: AuditEvent;
      try {
        e = JSON.parse(line) as AuditEvent;
      } catch {
        continue; // a line being written
      }
      const at = Date.parse(e.requestReceivedTimestamp);
      if (e.stage === "ResponseComplete" && e.user?.username === OPERATOR_USER && at >= since && at < until)
        out.push(e);
    }
    return out;
  }

  /**
   * Polls the audit log until `pick` finds one of the operator's requests received since `since`
   * or `deadline` passes (or the operator dies); returns what it picked then, maybe nothing. An
   * audit event is written once the response is complete, and the request itself comes when the
   * operator's own retry schedule says, not when the test looks.
   */
  async waitForCalls(
    pick: (calls: AuditEvent[]) => AuditEvent[],
    since: number,
    deadline: number,
    op: OperatorProcess,
  ): Promise<AuditEvent[]> {
    for (;;) {
      const found = pick(this.operatorCalls(since));
      if (found.length > 0 || Date.now() > deadline || !op.alive) return found;
      await sleep(250);
    }
  }

  async stop(): Promise<void> {
    await this.cp.stop();
  }
}

/** Relists: the informer's paged LISTs (`limit=`) of a watched collection. */
const relists = (calls: AuditEvent[]) =>
  calls.filter((e) => e.verb === "list" && e.requestURI.includes("limit=") && e.responseStatus?.code === 200);
const WRITE_VERBS = new Set(["create", "update", "patch", "delete", "deletecollection"]);
const writes = (calls: AuditEvent[]) => calls.filter((e) => WRITE_VERBS.has(e.verb));
/**
 * How long after the API server is back a relist may take: an informer retries on its own
 * schedule, after a backoff the outage's errors have grown (500 ms doubling, at most 30 s with
 * the jitter), and its first attempts may still be refused (429 "storage is (re)initializing",
 * 503); then a LIST on a loaded machine. The fleet may well converge before (reconciles retry
 * from the cache, with GETs and writes of their own), so a relist is waited for, not assumed.
 */
const RELIST_DEADLINE_MS = 60_000;

// ---------------------------------------------------------------------------------------------
// A fleet on one Local KeyProtector, and the checks of crash-consistency.test.ts.

class Fleet {
  /** dekID of each resource as first seen: it must never change (R4) */
  readonly firstDekID = new Map<string, string>();
  readonly ns = `faults-${suffix()}`;
  readonly opNs = `faults-op-${suffix()}`;
  size = DATABASES + 1;

  constructor(readonly plane: Plane) {}

  async create(): Promise<void> {
    const { a } = this.plane;
    for (const n of [this.ns, this.opNs]) await a.core.createNamespace({ body: { metadata: { name: n } } });
    await a.local.createKey(this.ns, KEY, { size: 2048 });
    await a.create("KeyProtector", this.ns, "kp", { provider: "Local", local: { secretRef: { name: KEY } } });
    await a.create("EncryptedServer", this.ns, "srv", {
      protector: { type: "CustomerManaged", keyProtectorRef: { name: "kp" } },
    });
    await this.addDatabases(0, DATABASES);
  }

  async addDatabases(from: number, count: number): Promise<void> {
    const names = Array.from({ length: count }, (_, i) => dbName(from + i));
    for (let i = 0; i < names.length; i += 20) {
      await Promise.all(
        names
          .slice(i, i + 20)
          .map((n) => this.plane.a.create("EncryptedDatabase", this.ns, n, { serverRef: { name: "srv" } })),
      );
    }
  }

  private async list<T>(plural: string): Promise<T[]> {
    const res = (await this.plane.objects.listNamespacedCustomObject({
      group: "tde.dev",
      version: "v1alpha1",
      namespace: this.ns,
      plural,
    })) as { items: T[] };
    return res.items;
  }

  async resources(): Promise<(EncryptedServer | EncryptedDatabase)[]> {
    const servers = await this.list<EncryptedServer>("encryptedservers");
    const dbs = await this.list<EncryptedDatabase>("encrypteddatabases");
    return [...servers, ...dbs];
  }

  /**
   * Records every dekID in status (of `all`, default: the resources listed now), failing on one
   * that differs from the first seen.
   */
  async recordDekIDs(all?: (EncryptedServer | EncryptedDatabase)[]): Promise<void> {
    for (const o of all ?? (await this.resources())) {
      const dekID = o.status?.dekID;
      if (!dekID) continue;
      const owner = `${o.kind}/${o.metadata?.name}`;
      const first = this.firstDekID.get(owner);
      if (first === undefined) this.firstDekID.set(owner, dekID);
      else expect(dekID, `dekID of ${owner}`).toBe(first);
    }
  }

  /** How many of `all` are Ready with a DEK (and on `keyID` when given). */
  progress(all: (EncryptedServer | EncryptedDatabase)[], keyID?: string): { ok: boolean; behind: number } {
    let behind = 0;
    for (const o of all) {
      const s = o.status as
        | { dekID?: string; effectiveProtector?: { keyID?: string }; protector?: { keyID?: string } }
        | undefined;
      const ready = (o.status?.conditions ?? []).find((c) => c.type === "Ready")?.status === "True";
      const current = s?.effectiveProtector?.keyID ?? s?.protector?.keyID;
      if (!s?.dekID || !ready || (keyID && current !== keyID)) behind++;
    }
    return { ok: all.length === this.size && behind === 0, behind };
  }

  /** Waits until every resource is Ready (on `keyID`), recording dekIDs on the way; returns ms. */
  async waitConverged(what: string, op: OperatorProcess, logFile: string, keyID?: string): Promise<number> {
    const started = Date.now();
    const deadline = started + 75_000;
    let last = { ok: false, behind: -1 };
    while (Date.now() < deadline) {
      if (!op.alive) throw new Error(`the operator died; see ${logFile}`);
      try {
        // one snapshot for both: every resource counted as converged has its dekID recorded
        const all = await this.resources();
        await this.recordDekIDs(all);
        last = this.progress(all, keyID);
        if (last.ok) return Date.now() - started;
      } catch (error) {
        // the API server may still be coming back; a dekID mismatch is not retried
        if ((error as Error).name === "AssertionError") throw error;
      }
      await sleep(250);
    }
    throw new Error(`timed out waiting for ${what}: ${last.behind} resources behind; log ${logFile}`);
  }

  async envelopeSecrets(): Promise<k8s.V1Secret[]> {
    return (
      await this.plane.a.core.listNamespacedSecret({
        namespace: this.ns,
        labelSelector: "tde.dev/envelope=true",
      })
    ).items;
  }

  /**
   * Exactly one envelope Secret per resource, the one its status names, with the first dekID seen;
   * one protector wrap (on `newest` when given); every wrap unwrapped by the test with its KCV
   * checked (R2), all to the same DEK; the owners in `rotatedFrom` keep a retained wrap on its key
   * (R16). Returns how many wraps were unwrapped.
   */
  async checkEnvelopes(
    newest?: string,
    rotatedFrom?: { keyID: string; owners: ReadonlySet<string> },
  ): Promise<{ envelopes: number; wraps: number; retained: number }> {
    const { a } = this.plane;
    const owners = new Map<string, string>(); // secret name -> owner
    for (const o of await this.resources()) {
      owners.set(o.status!.envelopeSecretName!, `${o.kind}/${o.metadata?.name}`);
    }
    expect(owners.size).toBe(this.size);
    expect(this.firstDekID.size).toBe(this.size);
    const perOwner = new Map<string, number>();
    let wraps = 0;
    let retained = 0;
    for (const secret of await this.envelopeSecrets()) {
      const labels = secret.metadata?.labels ?? {};
      const owner = `${labels["tde.dev/owner-kind"]}/${labels["tde.dev/owner-name"]}`;
      perOwner.set(owner, (perOwner.get(owner) ?? 0) + 1);
      expect(owners.get(secret.metadata!.name!), `owner of ${secret.metadata?.name}`).toBe(owner);
      const envelope: Envelope = decodeEnvelopeSecret(
        secret as { type?: string; data?: Record<string, string> },
      );
      expect(envelope.dekID, `dekID of ${owner}`).toBe(this.firstDekID.get(owner));
      const protectors = envelope.wraps.filter((w) => w.role === "protector");
      expect(protectors, `protector wraps of ${owner}`).toHaveLength(1);
      if (newest) expect(protectors[0]!.keyID, `protector of ${owner}`).toBe(newest);
      if (rotatedFrom?.owners.has(owner)) {
        const kept = envelope.wraps.filter((w) => w.role === "retained" && w.keyID === rotatedFrom.keyID);
        expect(kept, `retained wrap of ${owner} on the key before the rotation`).toHaveLength(1);
      }
      let first: Buffer | undefined;
      for (const wrap of envelope.wraps) {
        const ref = parseLocalKeyID(wrap.keyID);
        expect(ref, wrap.keyID).toBeDefined();
        const dek = await a.local.unwrap(
          { provider: "Local", namespace: ref!.namespace, keyName: ref!.name, keyID: wrap.keyID },
          wrappedBytes(wrap),
        );
        verifyUnwrapped(envelope, dek, wrap.thumbprint);
        if (first) {
          expect(dek.equals(first), `same DEK under every wrap of ${owner}`).toBe(true);
          dek.fill(0);
        } else first = dek;
        wraps++;
        if (wrap.role === "retained") retained++;
      }
      first?.fill(0);
    }
    expect(perOwner.size, "resources with an envelope").toBe(this.size);
    for (const [owner, n] of perOwner) expect(n, `envelope Secrets of ${owner}`).toBe(1);
    return { envelopes: perOwner.size, wraps, retained };
  }
}

const dekIDOf = (secret: k8s.V1Secret) =>
  decodeEnvelopeSecret(secret as { type?: string; data?: Record<string, string> }).dekID;

/** Sum of tde_reconcile_total for the server and database controllers (not the key prober). */
async function dekReconciles(op: OperatorProcess): Promise<number> {
  let total = 0;
  for (const line of (await op.metricsText()).split("\n")) {
    if (/^tde_reconcile_total\{[^}]*controller="encrypted(server|database)"/.test(line)) {
      total += Number(line.slice(line.lastIndexOf(" ") + 1));
    }
  }
  return total;
}

// ---------------------------------------------------------------------------------------------
// A TCP proxy between the operator and the API server that can drop every connection and refuse
// new ones (a network partition), then heal.

class CuttableProxy {
  private readonly sockets = new Set<Socket>();
  private cut = false;
  connectionsDropped = 0;
  connectionsRefused = 0;

  private constructor(
    private readonly server: Server,
    readonly port: number,
  ) {}

  static async start(targetPort: number): Promise<CuttableProxy> {
    const port = await freePort();
    const server = createServer();
    const proxy = new CuttableProxy(server, port);
    server.on("connection", (client) => proxy.accept(client, targetPort));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => resolve());
    });
    return proxy;
  }

  private accept(client: Socket, targetPort: number): void {
    if (this.cut) {
      this.connectionsRefused++;
      client.resetAndDestroy();
      return;
    }
    const upstream = tcpConnect(targetPort, "127.0.0.1");
    for (const s of [client, upstream]) {
      this.sockets.add(s);
      s.on("error", () => {
        client.destroy();
        upstream.destroy();
      });
      s.on("close", () => {
        this.sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    upstream.pipe(client);
  }

  /** Drops every open connection (with a reset) and refuses new ones until `heal`. */
  partition(): void {
    this.cut = true;
    for (const s of this.sockets) {
      this.connectionsDropped++;
      s.resetAndDestroy();
    }
  }

  heal(): void {
    this.cut = false;
  }

  async stop(): Promise<void> {
    this.partition();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/**
 * Whether a watch from `resourceVersion` is answered 410 Gone (expired), rather than with the
 * events since then.
 */
function watchExpired(kcfg: k8s.KubeConfig, path: string, resourceVersion: string): Promise<boolean> {
  return new Promise((resolve) => {
    let settled = false;
    let abort: AbortController | undefined;
    const settle = (expired: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      abort?.abort();
      resolve(expired);
    };
    const timer = setTimeout(() => settle(false), 3_000);
    new k8s.Watch(kcfg)
      .watch(
        path,
        { resourceVersion },
        (type, obj) => settle(type === "ERROR" && (obj as { code?: number }).code === 410),
        () => settle(false),
      )
      .then(
        (c) => {
          abort = c;
          if (settled) c.abort();
        },
        () => settle(false),
      );
  });
}

// ---------------------------------------------------------------------------------------------

describe("R4 R2 kube-apiserver and etcd killed and restarted mid-convergence", () => {
  const dir = scratchDir("api-restart");
  const plane = new Plane(dir, []);
  const fleet = new Fleet(plane);
  const logFile = join(dir, "operator.log");
  let op: OperatorProcess | undefined;
  const figures = {
    envelopesAtKill: -1,
    readyAtKill: -1,
    downtimeMs: -1,
    convergedAfterRestartMs: -1,
    relistsAfterRestart: -1,
    firstRelistAfterRestartMs: -1,
    watchOrListErrorsLogged: -1,
    reconcileFailuresLogged: -1,
    deks: -1,
    wrapsUnwrapped: -1,
    duplicates: -1,
  };

  beforeAll(async () => {
    await plane.start();
    await fleet.create();
  }, 180_000);

  afterAll(async () => {
    await op?.stop();
    await plane.stop();
    log(`restart: ${JSON.stringify(figures)}; operator log ${logFile}`);
  });

  it("relists, converges every resource, one envelope and one unchanged dekID each, every wrap unwraps", async () => {
    op = await OperatorProcess.start({
      operatorNamespace: fleet.opNs,
      watchNamespaces: [fleet.ns],
      logFile,
      probeInterval: "1s",
      latencyMs: 40,
      logLevel: "info",
      kubeconfigPath: plane.operatorKubeconfig(),
    });
    const pid = op.pid;

    // the first DEKs are being written: kill the whole control plane now
    const deadline = Date.now() + 60_000;
    let envelopesAtKill = 0;
    let readyAtKill = 0;
    /** dekID of each envelope written before the crash: the same envelope must survive it */
    const envelopeDekIDs = new Map<string, string>();
    for (;;) {
      const secrets = await fleet.envelopeSecrets();
      envelopesAtKill = secrets.length;
      if (envelopesAtKill > 0 || Date.now() > deadline) {
        for (const secret of secrets) envelopeDekIDs.set(secret.metadata!.name!, dekIDOf(secret));
        readyAtKill = (await fleet.resources()).filter(
          (o) => o.status?.conditions?.find((c) => c.type === "Ready")?.status === "True",
        ).length;
        // whatever the operator recorded before the crash must never be contradicted later
        await fleet.recordDekIDs();
        break;
      }
      await sleep(20);
    }
    const killedAt = Date.now();
    await plane.cp.stopApiserver("SIGKILL");
    await plane.cp.stopEtcd("SIGKILL");
    figures.envelopesAtKill = envelopesAtKill;
    figures.readyAtKill = readyAtKill;
    await sleep(2_000); // down for a while: the operator's calls and watches fail meanwhile
    await plane.cp.startEtcd();
    await plane.cp.startApiserver();
    const restartedAt = Date.now();
    figures.downtimeMs = restartedAt - killedAt;

    figures.convergedAfterRestartMs = await fleet.waitConverged("convergence after the restart", op, logFile);
    await fleet.recordDekIDs();
    const checked = await fleet.checkEnvelopes();
    figures.deks = checked.envelopes;
    figures.wrapsUnwrapped = checked.wraps;
    const after = await fleet.envelopeSecrets();
    figures.duplicates = after.length - fleet.size;
    for (const [name, dekID] of envelopeDekIDs) {
      expect(dekIDOf(after.find((x) => x.metadata?.name === name)!), `dekID in ${name}`).toBe(dekID);
    }
    // received after the kill, so answered by the restarted API server
    const relisted = await plane.waitForCalls(relists, killedAt, restartedAt + RELIST_DEADLINE_MS, op);
    figures.relistsAfterRestart = relisted.length;
    if (relisted.length > 0) {
      figures.firstRelistAfterRestartMs =
        Math.min(...relisted.map((e) => Date.parse(e.requestReceivedTimestamp))) - restartedAt;
    }
    figures.watchOrListErrorsLogged = countLines(logFile, '"msg":"informer trouble"');
    figures.reconcileFailuresLogged = countLines(logFile, '"msg":"reconcile failed"');

    // the fault landed mid-convergence: some DEKs existed, not all resources were Ready
    expect(envelopesAtKill, "envelopes when the control plane was killed").toBeGreaterThan(0);
    expect(figures.readyAtKill, "Ready resources when the control plane was killed").toBeLessThan(fleet.size);
    expect(figures.duplicates).toBe(0);
    // its cached resourceVersions predate the restarted API server's watch cache: it relisted,
    // within its backoff cap of the API server's return
    expect(
      figures.relistsAfterRestart,
      `operator LISTs within ${RELIST_DEADLINE_MS / 1000} s of the restart (operator alive: ${op.alive})`,
    ).toBeGreaterThan(0);
    expect(op.alive).toBe(true);
    expect(op.pid).toBe(pid);
  }, 240_000);
});

describe("R4 R6 R16 watches expired by etcd compaction while the operator is cut off", () => {
  const dir = scratchDir("api-compaction");
  // no watch cache: a watch reads etcd, so compaction (every second) expires an old resourceVersion
  const plane = new Plane(dir, ["--watch-cache=false", "--etcd-compaction-interval=1s"]);
  const fleet = new Fleet(plane);
  const logFile = join(dir, "operator.log");
  let op: OperatorProcess | undefined;
  let proxy: CuttableProxy | undefined;
  const figures = {
    firstConvergenceMs: -1,
    connectionsDropped: -1,
    connectionsRefused: -1,
    cutMs: -1,
    expiredAfterMs: -1,
    compactedWatchErrors: -1,
    relistsAfterHeal: -1,
    watchOrListErrorsLogged: -1,
    reconcileFailuresLogged: -1,
    convergedAfterHealMs: -1,
    deks: -1,
    wrapsUnwrapped: -1,
    retainedWraps: -1,
    duplicates: -1,
    idleWindowMs: -1,
    idleWrites: -1,
    idleRelists: -1,
    idleDekReconciles: -1,
  };

  beforeAll(async () => {
    await plane.start();
    await fleet.create();
    proxy = await CuttableProxy.start(Number(new URL(plane.cp.started.server).port));
  }, 180_000);

  afterAll(async () => {
    await op?.stop();
    await proxy?.stop();
    await plane.stop();
    log(`compaction: ${JSON.stringify(figures)}; operator log ${logFile}`);
  });

  it("relists after 410 Gone, acts on the databases and the key version added meanwhile, no duplicate DEK, no hot loop", async () => {
    op = await OperatorProcess.start({
      operatorNamespace: fleet.opNs,
      watchNamespaces: [fleet.ns],
      logFile,
      probeInterval: "1s",
      latencyMs: 40,
      logLevel: "info",
      kubeconfigPath: plane.operatorKubeconfig(`https://127.0.0.1:${proxy!.port}`),
    });
    const pid = op.pid;
    figures.firstConvergenceMs = await fleet.waitConverged("first convergence", op, logFile);
    const server = (await fleet.resources())[0]?.status as { protector?: { keyID?: string } } | undefined;
    const oldKey = server?.protector?.keyID;
    expect(oldKey).toBeDefined();
    const converged = new Set(fleet.firstDekID.keys());

    // the partition: every connection of the operator dropped, new ones refused
    proxy!.partition();
    const cutAt = Date.now();
    const dbPath = `/apis/tde.dev/v1alpha1/namespaces/${fleet.ns}/encrypteddatabases`;
    const { resourceVersion: rvAtCut } = (
      (await plane.objects.listNamespacedCustomObject({
        group: "tde.dev",
        version: "v1alpha1",
        namespace: fleet.ns,
        plural: "encrypteddatabases",
      })) as { metadata: { resourceVersion: string } }
    ).metadata;
    // while it is cut off: more databases, and a new key version (a rotation, R6)
    await fleet.addDatabases(DATABASES, EXTRA);
    fleet.size += EXTRA;
    const newest = (await plane.a.local.rotateKey(fleet.ns, KEY, { size: 2048 })).keyID;
    // until etcd has compacted past every resourceVersion the operator can hold
    const expiryDeadline = Date.now() + 45_000;
    while (!(await watchExpired(plane.kcfg, dbPath, rvAtCut))) {
      if (Date.now() > expiryDeadline) throw new Error(`a watch from ${rvAtCut} never expired`);
      await sleep(250);
    }
    figures.expiredAfterMs = Date.now() - cutAt;
    const compactedBefore = countCompacted(plane.apiserverLog);
    proxy!.heal();
    const healedAt = Date.now();
    figures.cutMs = healedAt - cutAt;

    figures.convergedAfterHealMs = await fleet.waitConverged(
      "every resource on the new key",
      op,
      logFile,
      newest,
    );
    await fleet.recordDekIDs();
    const checked = await fleet.checkEnvelopes(newest, { keyID: oldKey!, owners: converged });
    figures.deks = checked.envelopes;
    figures.wrapsUnwrapped = checked.wraps;
    figures.retainedWraps = checked.retained;
    figures.duplicates = (await fleet.envelopeSecrets()).length - fleet.size;
    figures.connectionsDropped = proxy!.connectionsDropped;
    figures.connectionsRefused = proxy!.connectionsRefused;
    // the databases it missed can only have come from a relist, but its audit event may lag
    const dbRelisted = (calls: AuditEvent[]) =>
      relists(calls).filter(
        (e) => e.objectRef?.resource === "encrypteddatabases" && e.objectRef.namespace === fleet.ns,
      );
    const dbRelists = await plane.waitForCalls(dbRelisted, healedAt, healedAt + RELIST_DEADLINE_MS, op);
    const afterHeal = plane.operatorCalls(healedAt);
    figures.relistsAfterHeal = relists(afterHeal).length;
    figures.compactedWatchErrors = countCompacted(plane.apiserverLog) - compactedBefore;
    figures.watchOrListErrorsLogged = countLines(logFile, '"msg":"informer trouble"');
    figures.reconcileFailuresLogged = countLines(logFile, '"msg":"reconcile failed"');

    expect(figures.duplicates).toBe(0);
    // the resumed watches were answered 410 (etcd: "required revision has been compacted") ...
    expect(figures.compactedWatchErrors, "watches refused as compacted after the heal").toBeGreaterThan(0);
    // ... and the operator relisted the databases, where the changes it had missed were
    expect(dbRelists.length, "LISTs of the databases after the heal").toBeGreaterThan(0);
    // the fleet converged before the cut was rotated: one retained wrap each, on the old version
    expect(converged.size).toBe(DATABASES + 1);

    // quiet once converged: no API write and no relist over an idle window, the same process.
    // The window starts once the operator has written nothing and relisted nothing for 3 s (a hot
    // loop never does). An informer scope still in its backoff from the cut (up to 30 s) relists
    // late, once: that is catching up, not a loop, so the deadline leaves room for it.
    // first let every list+watch scope the operator has make its relist after the heal (each on its
    // own backoff schedule), so a late catch-up relist does not land in the idle window
    const scopeOf = (e: AuditEvent) => e.requestURI.split("?")[0];
    const scopes = new Set(relists(plane.operatorCalls(0)).map(scopeOf));
    const scopesDeadline = Date.now() + RELIST_DEADLINE_MS;
    while (
      new Set(relists(plane.operatorCalls(healedAt)).map(scopeOf)).size < scopes.size &&
      Date.now() < scopesDeadline
    ) {
      await sleep(500);
    }
    const quietDeadline = Date.now() + 60_000;
    for (;;) {
      await sleep(500);
      const recentCalls = plane.operatorCalls(Date.now() - 3_000);
      const recent = [...writes(recentCalls), ...relists(recentCalls)];
      if (recent.length === 0) break;
      if (Date.now() > quietDeadline) {
        throw new Error(
          `the operator keeps writing or relisting: ${recent.map((e) => `${e.verb} ${e.requestURI}`).join(", ")}`,
        );
      }
    }
    const idleFrom = Date.now();
    const reconcilesBefore = await dekReconciles(op);
    await sleep(5_000);
    const reconcilesAfter = await dekReconciles(op);
    const idleTo = Date.now();
    await sleep(500); // let the audit log catch up with the window
    const idle = plane.operatorCalls(idleFrom, idleTo);
    figures.idleWindowMs = idleTo - idleFrom;
    figures.idleWrites = writes(idle).length;
    figures.idleRelists = relists(idle).length;
    figures.idleDekReconciles = reconcilesAfter - reconcilesBefore;
    expect(writes(idle).map((e) => `${e.verb} ${e.requestURI}`)).toEqual([]);
    expect(figures.idleRelists).toBe(0);
    expect(reconcilesBefore, "tde_reconcile_total counted the work so far").toBeGreaterThan(0);
    expect(figures.idleDekReconciles, "server and database reconciles while idle").toBeLessThanOrEqual(
      fleet.size,
    );
    expect(op.alive).toBe(true);
    expect(op.pid).toBe(pid);
  }, 240_000);
});

/** Lines of the API server's log for a watch refused because etcd compacted its revision. */
const countCompacted = (apiserverLog: string) =>
  countLines(apiserverLog, "required revision has been compacted");

function countLines(file: string, needle: string): number {
  try {
    return readFileSync(file, "utf8")
      .split("\n")
      .filter((l) => l.includes(needle)).length;
  } catch {
    return 0;
  }
}
