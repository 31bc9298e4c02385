/**
 * R29 bad input: random specs for the three kinds (fast-check), applied to the real API server.
 * Each is either refused by the API server or accepted and then reported by the operator (a
 * separate process) on a condition within a few seconds. The operator stays alive throughout and
 * does not loop hot: over a quiet window afterwards its tde_reconcile_total grows by a bounded
 * amount.
 */
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { API_VERSION } from "../../../src/api/index.js";
import { type Api, api, kc, suffix } from "../controllers/helpers.js";
import { OperatorProcess, scratchDir, sleep } from "./support.js";

const RUNS = Number(process.env.TDE_BAD_INPUT_RUNS ?? 40);
const id = suffix();
const ns = `rel-bad-${id}`;
const opNs = `rel-bad-op-${id}`;
const logFile = join(scratchDir("bad-input"), "operator.log");
const plural = {
  KeyProtector: "keyprotectors",
  EncryptedServer: "encryptedservers",
  EncryptedDatabase: "encrypteddatabases",
};
type Kind = keyof typeof plural;

let a: Api;
let objects: k8s.CustomObjectsApi;
let op: OperatorProcess;
const figures = { applied: 0, refused: 0, accepted: 0, reported: 0, reconcilesInQuietWindow: -1 };
const unreported: string[] = [];
/** the API server's refusals, kept for the report */
const refusals: string[] = [];

// values that are valid, near-valid and plain wrong, so both the API server and the operator get work
const junk = fc.oneof(fc.string({ maxLength: 12 }), fc.integer(), fc.boolean(), fc.constant(null));
const name = fc.oneof(
  { arbitrary: fc.constantFrom("kp-good", "srv-good", "missing", "db-good", "kek-good"), weight: 5 },
  { arbitrary: fc.stringMatching(/^[a-z][a-z0-9-]{0,20}[a-z0-9]$/), weight: 4 },
  { arbitrary: fc.string({ maxLength: 8 }), weight: 1 },
);
/** mostly well-formed, sometimes wrong: enough get past the API server to give the operator work */
const mostly = <T>(valid: fc.Arbitrary<T>, wrong: fc.Arbitrary<unknown> = junk) =>
  fc.oneof({ arbitrary: valid as fc.Arbitrary<unknown>, weight: 9 }, { arbitrary: wrong, weight: 1 });
const opt = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined, freq: 2 });
const ref = mostly(fc.record({ name }), fc.record({ name }, { requiredKeys: [] }));
const duration = mostly(fc.constantFrom("10m", "0s", "30s", "1h30m", "-1m", "10", "forever", ""));
const identity = fc.record(
  {
    type: mostly(fc.constantFrom("Default", "WorkloadIdentity", "ManagedIdentity", "ClientSecret")),
    clientID: opt(mostly(fc.uuid())),
    tenantID: opt(mostly(fc.uuid())),
    federatedClientID: opt(fc.uuid()),
    clientSecretRef: opt(fc.record({ name, key: fc.string({ maxLength: 6 }) })),
  },
  { requiredKeys: [] },
);
const protector = fc.record(
  {
    type: mostly(fc.constantFrom("ServiceManaged", "CustomerManaged")),
    keyProtectorRef: opt(ref),
  },
  { requiredKeys: [] },
);

const keyProtectorSpec = fc.record(
  {
    provider: mostly(fc.constantFrom("Local", "AzureKeyVault")),
    local: opt(fc.record({ secretRef: opt(ref) }, { requiredKeys: [] })),
    // unreachable vaults only: connection refused at once, never the Internet
    azureKeyVault: opt(
      fc.record(
        {
          vaultURL: fc.oneof(
            fc.constantFrom("https://127.0.0.1:1/", "http://localhost:9/", "not a url"),
            junk,
          ),
          keyName: opt(mostly(name)),
          keyVersion: opt(mostly(fc.stringMatching(/^[0-9a-f]{32}$/))),
        },
        { requiredKeys: [] },
      ),
    ),
    identity: opt(identity),
    autoRotationWindow: opt(duration),
    requirements: opt(
      fc.record(
        {
          allowedKeySizes: mostly(
            fc.array(fc.constantFrom(2048, 3072, 4096, 1024), { minLength: 1, maxLength: 3 }),
          ),
          allowExpiry: mostly(fc.boolean()),
          requireRecoverable: mostly(fc.boolean()),
          minimumRecoverableDays: mostly(fc.integer({ min: -5, max: 120 })),
        },
        { requiredKeys: [] },
      ),
    ),
    extra: opt(junk),
  },
  { requiredKeys: [] },
);
/** shaped by provider most of the time, so the CEL rules let a fair share through */
const keyProtectorShaped = fc.oneof(
  fc.record({ provider: fc.constant("Local"), local: fc.record({ secretRef: ref }) }),
  fc.record({
    provider: fc.constant("AzureKeyVault"),
    azureKeyVault: fc.record({
      vaultURL: fc.constantFrom("https://127.0.0.1:1/", "http://localhost:9/"),
      keyName: name,
    }),
    identity: opt(identity),
  }),
);

const serverSpec = fc.record(
  {
    protector: mostly(protector),
    keyAccessGracePeriod: opt(duration),
    revalidation: opt(mostly(fc.constantFrom("Automatic", "Manual"))),
    revalidationToken: opt(mostly(fc.string({ maxLength: 10 }))),
    workloadRef: opt(
      fc.record({ kind: mostly(fc.constantFrom("StatefulSet", "Deployment")), name }, { requiredKeys: [] }),
    ),
    enforcement: opt(mostly(fc.constantFrom("ScaleToZero", "NetworkIsolation", "None"))),
    deletionPolicy: opt(mostly(fc.constantFrom("Retain", "Shred"))),
  },
  { requiredKeys: [] },
);

const nsName = mostly(
  fc.record({ namespace: fc.constantFrom(ns, "elsewhere"), name }),
  fc.record({ namespace: fc.constantFrom(ns, "elsewhere", ""), name }, { requiredKeys: [] }),
);
const databaseSpec = fc.record(
  {
    serverRef: ref,
    encryptionProtector: opt(protector),
    keys: opt(fc.array(fc.record({ keyProtectorRef: ref }), { maxLength: 6 })),
    identity: opt(mostly(identity, fc.array(identity, { maxLength: 2 }))),
    autoRotation: opt(mostly(fc.boolean())),
    replication: opt(
      fc.record(
        {
          role: mostly(fc.constantFrom("Primary", "Secondary")),
          primaryRef: opt(nsName),
          secondaries: opt(fc.array(nsName, { maxLength: 6 })),
        },
        { requiredKeys: [] },
      ),
    ),
    restore: opt(
      fc.record(
        {
          sourceRef: nsName,
          pointInTime: opt(
            fc.oneof(
              fc.date().map((d) => (Number.isNaN(d.getTime()) ? "x" : d.toISOString())),
              junk,
            ),
          ),
          keys: opt(fc.array(fc.record({ keyProtectorRef: ref }), { maxLength: 3 })),
        },
        { requiredKeys: [] },
      ),
    ),
    deletionPolicy: opt(mostly(fc.constantFrom("Retain", "Shred"))),
  },
  { requiredKeys: [] },
);

let counter = 0;
/** Applies one spec; returns once the API server refused it or the operator reported a condition. */
async function applyAndObserve(kind: Kind, spec: unknown): Promise<void> {
  const objName = `${kind.toLowerCase().slice(0, 3)}-${counter++}`;
  const body = JSON.parse(
    JSON.stringify({ apiVersion: API_VERSION, kind, metadata: { name: objName, namespace: ns }, spec }),
  );
  figures.applied++;
  try {
    await objects.createNamespacedCustomObject({
      group: "tde.dev",
      version: "v1alpha1",
      namespace: ns,
      plural: plural[kind],
      body,
    });
  } catch (error) {
    const code = (error as { code?: number }).code;
    // refused by the API server (schema, CEL): a 4xx, never a 5xx
    expect(code, `API server answer to ${JSON.stringify(spec)}`).toBeGreaterThanOrEqual(400);
    expect(code).toBeLessThan(500);
    figures.refused++;
    const body = (error as { body?: string }).body ?? "";
    let cause = String(body).slice(0, 300);
    try {
      cause = String((JSON.parse(body) as { message?: string }).message).slice(0, 300);
    } catch {}
    if (refusals.length < 400) refusals.push(`${kind}: ${cause}`);
    return;
  }
  figures.accepted++;
  const deadline = Date.now() + 10_000;
  for (;;) {
    expect(op.alive, `the operator is alive after ${kind} ${JSON.stringify(spec)}`).toBe(true);
    const o = (await objects.getNamespacedCustomObject({
      group: "tde.dev",
      version: "v1alpha1",
      namespace: ns,
      plural: plural[kind],
      name: objName,
    })) as {
      metadata: { generation?: number };
      status?: { conditions?: { type: string; observedGeneration?: number }[] };
    };
    const ready = o.status?.conditions?.find((c) => c.type === "Ready");
    if (ready && (ready.observedGeneration ?? o.metadata.generation) === o.metadata.generation) {
      figures.reported++;
      return;
    }
    if (Date.now() > deadline) {
      unreported.push(`${kind}/${objName} ${JSON.stringify(spec)} status=${JSON.stringify(o.status)}`);
      return;
    }
    await sleep(100);
  }
}

beforeAll(async () => {
  const kcfg = kc();
  a = api(kcfg);
  objects = kcfg.makeApiClient(k8s.CustomObjectsApi);
  for (const n of [ns, opNs]) await a.core.createNamespace({ body: { metadata: { name: n } } });
  // a few well-formed objects for the random ones to point at
  await a.local.createKey(ns, "kek-good", { size: 2048 });
  await a.create("KeyProtector", ns, "kp-good", {
    provider: "Local",
    local: { secretRef: { name: "kek-good" } },
  });
  await a.create("EncryptedServer", ns, "srv-good", {
    protector: { type: "CustomerManaged", keyProtectorRef: { name: "kp-good" } },
  });
  await a.create("EncryptedDatabase", ns, "db-good", { serverRef: { name: "srv-good" } });
  op = await OperatorProcess.start({
    operatorNamespace: opNs,
    watchNamespaces: [ns],
    logFile,
    probeInterval: "30s",
    logLevel: "info",
  });
}, 120_000);

afterAll(async () => {
  await op?.stop();
  process.stderr.write(`[reliability] bad input: ${JSON.stringify(figures)}; log ${logFile}\n`);
  if (process.env.TDE_BAD_INPUT_VERBOSE) process.stderr.write(`${refusals.join("\n")}\n`);
});

describe("R29 random specs against the real API server and the operator", () => {
  it("each is refused by the API server or reported on a condition, the operator never crashes", async () => {
    const seed = Number(process.env.TDE_BAD_INPUT_SEED ?? Date.now() % 2 ** 31);
    process.stderr.write(`[reliability] bad input seed ${seed}\n`);
    const cases = fc.oneof(
      mostly(keyProtectorShaped, keyProtectorSpec).map((spec) => ["KeyProtector", spec] as const),
      serverSpec.map((spec) => ["EncryptedServer", spec] as const),
      databaseSpec.map((spec) => ["EncryptedDatabase", spec] as const),
    );
    await fc.assert(
      fc.asyncProperty(cases, async ([kind, spec]) => applyAndObserve(kind, spec)),
      { numRuns: RUNS * 3, seed, endOnFailure: true },
    );
    expect(unreported, "accepted but never reported on a Ready condition").toEqual([]);
    expect(figures.accepted).toBeGreaterThan(0);
    expect(figures.refused).toBeGreaterThan(0);
    expect(op.alive).toBe(true);
    // it ran as the shipped ServiceAccount and was refused nothing
    expect(op.refusals()).toEqual([]);
  }, 240_000);

  it("R29 does not loop hot: a quiet window adds a bounded number of reconciles", async () => {
    // let the last objects settle, then count reconciles over a quiet window with no changes
    await sleep(3_000);
    const before = await op.counter("tde_reconcile_total");
    expect(before, "tde_reconcile_total is exported and counted the work so far").toBeGreaterThan(0);
    await sleep(6_000);
    const after = await op.counter("tde_reconcile_total");
    figures.reconcilesInQuietWindow = after - before;
    // every accepted object may be requeued for a retry or two in 6 s (backoff), never continuously
    expect(after - before).toBeLessThanOrEqual(2 * (figures.accepted + 4));
    expect(op.alive).toBe(true);
  }, 30_000);
});
