/**
 * R16 R1 crash consistency: the operator, a separate process, converges a fleet of databases on a
 * Local key, then follows key rotations while it is SIGKILLed at random moments and restarted. At
 * the end every DEK unwraps under its protector and under every retained key with its KCV intact,
 * each resource has exactly one envelope Secret and one dekID that never changed, and everything
 * is on the newest key version. Then (R1) no DEK appears anywhere it could leak: Secrets other
 * than envelopes, custom objects, Events, the operator's log and its /metrics.
 *
 * Size: TDE_CRASH_DATABASES (default 50) and TDE_CRASH_KILLS (default 5); `npm run test:soak`
 * runs 1,000 DEKs and 50 kills.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
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
import { type Api, api, kc, suffix } from "../controllers/helpers.js";
import { findLeaks, OperatorProcess, scratchDir, sleep } from "./support.js";

const DATABASES = Number(process.env.TDE_CRASH_DATABASES ?? 50);
const KILLS = Number(process.env.TDE_CRASH_KILLS ?? 5);
const SOAK = DATABASES > 200;
const TIMEOUT = SOAK ? 3_600_000 : 150_000;

const id = suffix();
const ns = `rel-crash-${id}`;
const opNs = `rel-crash-op-${id}`;
const KEY = "crash-kek";
const dir = scratchDir("crash");
const logFile = join(dir, "operator.log");
const opts = { operatorNamespace: opNs, watchNamespaces: [ns], logFile, probeInterval: "1s", latencyMs: 40 };

let a: Api;
let objects: k8s.CustomObjectsApi;
let op: OperatorProcess | undefined;
const figures = { kills: 0, killsMidWork: 0, rotations: 0, deks: 0, retainedChecked: 0, leaks: -1 };
/** dekID of each resource as first seen: it must never change */
const firstDekID = new Map<string, string>();
/** the DEKs, as the test itself unwrapped them (for the leak scan) */
const deks = new Map<string, Buffer>();

const dbName = (i: number) => `db-${String(i).padStart(4, "0")}`;
const list = async <T>(plural: string) =>
  (
    (await objects.listNamespacedCustomObject({
      group: "tde.dev",
      version: "v1alpha1",
      namespace: ns,
      plural,
    })) as {
      items: T[];
    }
  ).items;

async function snapshot() {
  const server = (await list<EncryptedServer>("encryptedservers"))[0];
  const dbs = await list<EncryptedDatabase>("encrypteddatabases");
  return { server, dbs };
}

/** All resources whose status is on `keyID` (all when undefined: merely have a DEK and are Ready). */
async function converged(keyID?: string): Promise<{ ok: boolean; behind: number }> {
  const { server, dbs } = await snapshot();
  const all = [server, ...dbs] as (EncryptedServer | EncryptedDatabase)[];
  let behind = 0;
  for (const o of all) {
    const s = o?.status as
      | { dekID?: string; effectiveProtector?: { keyID?: string }; protector?: { keyID?: string } }
      | undefined;
    const ready = (o?.status?.conditions ?? []).find((c) => c.type === "Ready")?.status === "True";
    const current = s?.effectiveProtector?.keyID ?? s?.protector?.keyID;
    if (!s?.dekID || !ready || (keyID && current !== keyID)) behind++;
  }
  return { ok: all.length === DATABASES + 1 && behind === 0, behind };
}

async function waitConverged(what: string, keyID: string | undefined, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  let last = { ok: false, behind: -1 };
  while (Date.now() < deadline) {
    if (op && !op.alive) throw new Error(`the operator died; see ${logFile}`);
    last = await converged(keyID);
    if (last.ok) return;
    await sleep(250);
  }
  throw new Error(`timed out waiting for ${what}: ${last.behind} resources behind; log ${logFile}`);
}

function recordDekIDs(dekIDs: Map<string, string>) {
  for (const [name, dekID] of dekIDs) {
    const first = firstDekID.get(name);
    if (first === undefined) firstDekID.set(name, dekID);
    else expect(dekID, `dekID of ${name}`).toBe(first);
  }
}

async function statusDekIDs(): Promise<Map<string, string>> {
  const { server, dbs } = await snapshot();
  const m = new Map<string, string>();
  if (server?.status?.dekID) m.set(`EncryptedServer/${server.metadata?.name}`, server.status.dekID);
  for (const d of dbs) if (d.status?.dekID) m.set(`EncryptedDatabase/${d.metadata?.name}`, d.status.dekID);
  return m;
}

/** Start, let it work for a random moment, SIGKILL; counts whether the fleet had not yet converged. */
async function killAtRandom(maxMs: number, keyID?: string): Promise<void> {
  op = await OperatorProcess.start(opts);
  await sleep(Math.floor(Math.random() * maxMs));
  const wasDone = (await converged(keyID)).ok;
  await op.kill();
  figures.kills++;
  if (!wasDone) figures.killsMidWork++;
  // whatever the operator managed to record must never be contradicted later
  recordDekIDs(await statusDekIDs());
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
  const names = Array.from({ length: DATABASES }, (_, i) => dbName(i));
  for (let i = 0; i < names.length; i += 25) {
    await Promise.all(
      names.slice(i, i + 25).map((n) => a.create("EncryptedDatabase", ns, n, { serverRef: { name: "srv" } })),
    );
  }
}, 600_000);

afterAll(async () => {
  await op?.stop();
  process.stderr.write(`[reliability] crash consistency: ${JSON.stringify(figures)}; log ${logFile}\n`);
});

describe("R16 crash consistency under SIGKILL", () => {
  it(
    `converges ${DATABASES} databases, rotates through ${KILLS} SIGKILLs, and loses nothing`,
    async () => {
      // a kill during the very first convergence: DEK creation must not fork a second DEK
      await killAtRandom(SOAK ? 4_000 : 2_500);
      op = await OperatorProcess.start(opts);
      await waitConverged("first convergence", undefined, TIMEOUT / 2);
      recordDekIDs(await statusDekIDs());
      await op.kill();
      figures.kills++;

      let newest = "";
      for (let k = 0; k < KILLS; k++) {
        newest = (await a.local.rotateKey(ns, KEY, { size: 2048 })).keyID;
        figures.rotations++;
        // the last round kills early if no kill has yet landed mid-rotation, so one always does
        const early = k === KILLS - 1 && figures.killsMidWork === 0;
        await killAtRandom(early ? 300 : SOAK ? 8_000 : 2_500, newest);
      }
      op = await OperatorProcess.start(opts);
      await waitConverged("every resource on the newest version", newest, TIMEOUT / 2);
      recordDekIDs(await statusDekIDs());

      // every envelope: exactly one per resource, its dekID the first one seen, every wrap unwraps with the KCV
      const secrets = await a.core.listNamespacedSecret({
        namespace: ns,
        labelSelector: "tde.dev/envelope=true",
      });
      const perOwner = new Map<string, number>();
      const { server, dbs } = await snapshot();
      const owners = new Map<string, string>(); // secret name -> owner
      for (const o of [server, ...dbs] as (EncryptedServer | EncryptedDatabase)[]) {
        owners.set(o.status!.envelopeSecretName!, `${o.kind}/${o.metadata?.name}`);
      }
      expect(firstDekID.size).toBe(DATABASES + 1);
      for (const secret of secrets.items) {
        const owner = `${secret.metadata?.labels?.["tde.dev/owner-kind"]}/${secret.metadata?.labels?.["tde.dev/owner-name"]}`;
        perOwner.set(owner, (perOwner.get(owner) ?? 0) + 1);
        expect(owners.get(secret.metadata!.name!), `owner of ${secret.metadata?.name}`).toBe(owner);
        const envelope: Envelope = decodeEnvelopeSecret(
          secret as { type?: string; data?: Record<string, string> },
        );
        expect(envelope.dekID, `dekID of ${owner}`).toBe(firstDekID.get(owner));
        const protectors = envelope.wraps.filter((w) => w.role === "protector");
        expect(protectors, `protector wraps of ${owner}`).toHaveLength(1);
        expect(protectors[0]!.keyID).toBe(newest);
        let first: Buffer | undefined;
        for (const wrap of envelope.wraps) {
          const ref = parseLocalKeyID(wrap.keyID);
          expect(ref, wrap.keyID).toBeDefined();
          const dek = await a.local.unwrap(
            { provider: "Local", namespace: ref!.namespace, keyName: ref!.name, keyID: wrap.keyID },
            wrappedBytes(wrap),
          );
          verifyUnwrapped(envelope, dek, wrap.thumbprint);
          if (first) expect(dek.equals(first), `same DEK under every wrap of ${owner}`).toBe(true);
          else first = dek;
          if (wrap.role === "retained") figures.retainedChecked++;
        }
        deks.set(owner, first!);
      }
      expect(perOwner.size).toBe(DATABASES + 1);
      for (const [owner, n] of perOwner) expect(n, `envelope Secrets of ${owner}`).toBe(1);
      figures.deks = deks.size;
      expect(figures.kills).toBe(KILLS + 2);
      // the kills did land while work was under way (not only on an idle operator)
      expect(figures.killsMidWork).toBeGreaterThan(0);
      expect(op.alive).toBe(true);
      // every process ran as the shipped ServiceAccount and was refused nothing
      expect(op.refusals()).toEqual([]);
    },
    TIMEOUT,
  );

  it("R1 no DEK appears in any Secret, custom object, Event, log line or metric", async () => {
    expect(deks.size).toBe(DATABASES + 1);
    const hay = new Map<string, string | Buffer>();
    for (const n of [ns, opNs]) {
      const secrets = await a.core.listNamespacedSecret({ namespace: n });
      for (const s of secrets.items) {
        // the wrapped bytes are ciphertext; the Secret's decoded data and its raw form are both searched
        const decoded = Object.entries(s.data ?? {}).map(([k, v]) =>
          Buffer.concat([Buffer.from(`${k}=`), Buffer.from(v, "base64")]),
        );
        hay.set(
          `Secret ${n}/${s.metadata?.name}`,
          Buffer.concat([Buffer.from(JSON.stringify(s)), ...decoded]),
        );
      }
      for (const plural of ["keyprotectors", "encryptedservers", "encrypteddatabases"]) {
        const items = await objects.listNamespacedCustomObject({
          group: "tde.dev",
          version: "v1alpha1",
          namespace: n,
          plural,
        });
        hay.set(`${plural} in ${n}`, JSON.stringify(items));
      }
      const events = await a.core.listNamespacedEvent({ namespace: n });
      hay.set(`Events in ${n}`, JSON.stringify(events));
      const cms = await a.core.listNamespacedConfigMap({ namespace: n });
      hay.set(`ConfigMaps in ${n}`, JSON.stringify(cms));
    }
    hay.set("operator log", readFileSync(logFile));
    hay.set("operator /metrics", await op!.metricsText());
    const leaks = findLeaks(deks, hay);
    figures.leaks = leaks.length;
    expect(leaks).toEqual([]);
    // the scan itself works: a DEK planted in a text is found in each form
    const [owner, dek] = [...deks][0]!;
    const planted: (string | Buffer)[] = [
      `"k":"${dek.toString("hex")}"`,
      dek.toString("hex").toUpperCase(),
      `x${dek.toString("base64")}`,
      dek.toString("base64url"),
      `ab${Buffer.concat([Buffer.from("z"), dek]).toString("base64")}`,
      `ab${Buffer.concat([Buffer.from("zz"), dek]).toString("base64")}`,
      Buffer.concat([Buffer.from("log line: "), dek, Buffer.from("\n")]),
    ];
    for (const hay of planted) {
      expect(findLeaks(new Map([[owner, dek]]), new Map([["planted", hay]])), String(hay)).not.toEqual([]);
    }
    // and it does not cry wolf on another DEK
    expect(
      findLeaks(new Map([[owner, dek]]), new Map([["other", [...deks][1]![1].toString("hex")]])),
    ).toEqual([]);
  }, 60_000);
});
