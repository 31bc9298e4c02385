/**
 * R27 R28 with the real tools: the operator (in-process, Local provider, the real API server)
 * brings its resources into every state it can produce today; what kstatus (sigs.k8s.io/cli-utils
 * status.Compute, what Flux reads) and Argo CD (our health.lua in gopher-lua) then report; and
 * whether each alert of the PrometheusRule fires on the /metrics the operator exported in that
 * state (promtool test rules) and stays silent on the /metrics of the healthy start.
 */
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments, parseDocument, stringify } from "yaml";
import type { Condition, HealthKind } from "../../../src/api/index.js";
import { type KekProvider, KeyAccessError } from "../../../src/kms/provider.js";
import { argoHealth, fluxHealth, type KstatusResult, kstatus, promtool } from "../../harness/health-tools.js";
import { interposed } from "../../harness/kek-interposer.js";
import { startTestOperator, type TestOperator } from "../../harness/operator.js";
import { type Api, api, cond, kc, suffix, waitFor } from "../controllers/helpers.js";
import { repoRoot } from "../deploy/support.js";
import { KeyFaults } from "../watchdog/support.js";

const id = suffix();
const ns = `health-${id}`;
const region = `health-dr-${id}`; // the secondary's region (R19, R21)
const unwatched = `health-new-${id}`; // no operator watches it: objects there keep no status
const opNs = `health-op-${id}`;
const healthLua = join(repoRoot, "deploy", "gitops", "argocd", "health.lua");
/** the healthCheckExprs of the Flux example's tenant Kustomization */
const fluxExprs = (
  parseAllDocuments(readFileSync(join(repoRoot, "deploy", "gitops", "flux", "kustomization.yaml"), "utf8"))
    .map((d) => d.toJS() as { spec?: { healthCheckExprs?: unknown[] } })
    .find((k) => k.spec?.healthCheckExprs) as { spec: { healthCheckExprs: unknown[] } }
).spec.healthCheckExprs;
const DAY = 86_400;
const k8sMergePatch = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch);

const faults = new KeyFaults();
/** DEK wraps (a wrap pinned to a key id) under these keys fail: a rotation that errors (R16) */
const brokenWraps = new Set<string>();
const failDekWraps = (local: KekProvider): KekProvider =>
  interposed(local, {
    wrap: async (r, d) => {
      if (r.keyID && brokenWraps.has(`${r.namespace}/${r.keyName}`))
        throw new KeyAccessError("PermissionDenied", `injected: wrapKey refused for ${r.keyName}`);
      return local.wrap(r, d);
    },
  });

let a: Api;
let op: TestOperator;
/** /metrics texts and when they were scraped (s): the healthy start, then the unhealthy states */
const scrapes: { text: string; at: number }[] = [];
const scrape = async () => scrapes.push({ text: await op.metrics.registry.metrics(), at: Date.now() / 1000 });

type Obj = {
  apiVersion: string;
  kind: HealthKind;
  metadata: { name: string; namespace: string; generation: number; deletionTimestamp?: string };
  status?: { state?: string; conditions?: Condition[] };
};
const get = (kind: HealthKind, namespace: string, name: string) => a.get<Obj>(kind, namespace, name);

const pem = () =>
  generateKeyPairSync("rsa", { modulusLength: 2048 })
    .privateKey.export({ type: "pkcs8", format: "pem" })
    .toString();

async function keyProtector(
  namespace: string,
  name: string,
  options: { pem?: string; expiresInDays?: number } = {},
) {
  const keyName = `${name}-kek`;
  if (options.pem) await a.local.importKey(namespace, keyName, options.pem);
  else
    await a.local.createKey(namespace, keyName, {
      size: 2048,
      ...(options.expiresInDays
        ? { expiresOn: new Date(Date.now() + options.expiresInDays * DAY * 1000) }
        : {}),
    });
  await a.create("KeyProtector", namespace, name, {
    provider: "Local",
    local: { secretRef: { name: keyName } },
    requirements: { requireRecoverable: false, ...(options.expiresInDays ? { allowExpiry: true } : {}) },
  });
  return keyName;
}

const customer = (kp: string) => ({ protector: { type: "CustomerManaged", keyProtectorRef: { name: kp } } });
const own = (kp: string) => ({
  encryptionProtector: { type: "CustomerManaged", keyProtectorRef: { name: kp } },
});
const readyTrue = (o: Obj) => cond(o, "Ready")?.status === "True";

beforeAll(async () => {
  a = api(kc());
  await a.core.createNamespace({ body: { metadata: { name: unwatched } } });
  op = await startTestOperator({
    watchNamespaces: [ns, region],
    operatorNamespace: opNs,
    probeIntervalMs: 1_000,
    wrapLocal: (local) => faults.wrap(failDekWraps(local)),
    defaultMetrics: true,
  });

  // the healthy start: keys, a server and databases Available, a key expiring in 60 days, a primary
  // and its secondary in another region holding the same key material (R19, R20)
  const shared = pem();
  for (const kp of ["key-ok", "key-disabled", "key-unreachable", "key-grace", "key-lost", "key-broken"])
    await keyProtector(ns, kp);
  await keyProtector(ns, "key-far", { expiresInDays: 60 });
  await keyProtector(ns, "p1", { pem: shared });
  await keyProtector(ns, "p2");
  await keyProtector(region, "r1", { pem: shared });
  await a.create("EncryptedServer", ns, "srv-ok", customer("key-ok"));
  await a.create("EncryptedServer", ns, "srv-envelope-lost", customer("key-ok"));
  await a.create("EncryptedServer", ns, "srv-grace", {
    ...customer("key-grace"),
    keyAccessGracePeriod: "1h",
  });
  await a.create("EncryptedServer", ns, "srv-lost", { ...customer("key-lost"), keyAccessGracePeriod: "5s" });
  await a.create("EncryptedDatabase", ns, "db-ok", { serverRef: { name: "srv-ok" } });
  await a.create("EncryptedDatabase", ns, "db-refused", { serverRef: { name: "srv-ok" }, ...own("key-ok") });
  await a.create("EncryptedDatabase", ns, "db-on-lost-server", {
    serverRef: { name: "srv-lost" },
    ...own("key-ok"),
  });
  await a.create("EncryptedDatabase", ns, "db-rotation-fails", {
    serverRef: { name: "srv-ok" },
    ...own("key-ok"),
  });
  await a.create("EncryptedServer", region, "dr", { ...customer("r1"), revalidation: "Automatic" });
  await a.create("EncryptedDatabase", ns, "orders", {
    serverRef: { name: "srv-ok" },
    ...own("p1"),
    replication: { role: "Primary", secondaries: [{ namespace: region, name: "replica" }] },
  });
  await a.create("EncryptedDatabase", region, "replica", {
    serverRef: { name: "dr" },
    ...own("r1"),
    replication: { role: "Secondary", primaryRef: { namespace: ns, name: "orders" } },
  });
  for (const [kind, namespace, name] of [
    ["EncryptedServer", ns, "srv-lost"],
    ["EncryptedServer", ns, "srv-envelope-lost"],
    ["EncryptedServer", ns, "srv-grace"],
    ["EncryptedDatabase", ns, "db-ok"],
    ["EncryptedDatabase", ns, "db-refused"],
    ["EncryptedDatabase", ns, "db-on-lost-server"],
    ["EncryptedDatabase", ns, "db-rotation-fails"],
    ["EncryptedDatabase", ns, "orders"],
    ["EncryptedDatabase", region, "replica"],
  ] as const)
    await waitFor(`${kind} ${namespace}/${name} Ready`, () => get(kind, namespace, name), readyTrue, 60_000);
  await waitFor(
    "key-far's expiry exported",
    () => op.metrics.registry.metrics(),
    (t) => t.includes("key-far"),
  );
  await scrape();

  // then every state the operator produces today
  await keyProtector(ns, "key-soon", { expiresInDays: 7 });
  faults.fail(ns, "key-disabled-kek", "KeyDisabled");
  faults.fail(ns, "key-unreachable-kek", "VaultUnreachable");
  faults.fail(ns, "key-grace-kek", "VaultUnreachable");
  faults.fail(ns, "key-lost-kek", "KeyDisabled");
  await a.create("EncryptedServer", ns, "srv-no-kp", customer("absent-kp"));
  // R7: a DEK wrapped only by the operator's Local service-managed key (a single point of loss)
  await a.create("EncryptedServer", ns, "srv-service-managed", { protector: { type: "ServiceManaged" } });
  await a.create("EncryptedDatabase", ns, "db-no-server", { serverRef: { name: "absent-server" } });
  await a.create("EncryptedServer", unwatched, "brand-new", customer("key-ok"));
  await a.patch("EncryptedDatabase", ns, "db-refused", {
    spec: { encryptionProtector: { type: "ServiceManaged", keyProtectorRef: null } },
  });
  await a.patch("EncryptedDatabase", ns, "orders", { spec: own("p2") }); // r1's region lacks p2's key: R21
  // R31: a restore from another namespace whose source does not name it back
  await a.create("EncryptedDatabase", region, "restore-not-named", {
    serverRef: { name: "dr" },
    restore: { sourceRef: { namespace: ns, name: "db-ok" }, keys: [{ keyProtectorRef: { name: "r1" } }] },
  });
  // R7: imported material not applied yet (create: Never): the KeyProtector waits for its Secret
  await a.create("KeyProtector", ns, "key-awaited", {
    provider: "Local",
    local: { secretRef: { name: "key-awaited-kek" }, create: "Never" },
    requirements: { requireRecoverable: false },
  });
  // R5: a key its requirements will never accept (2048 bits where only 3072 are allowed)
  await a.local.createKey(ns, "key-too-small-kek", { size: 2048 });
  await a.create("KeyProtector", ns, "key-too-small", {
    provider: "Local",
    local: { secretRef: { name: "key-too-small-kek" } },
    requirements: { requireRecoverable: false, allowedKeySizes: [3072] },
  });
  // R2: a live server's envelope deleted for good (the deletion held by the in-use finalizer, R33,
  // which is then taken off by hand)
  const lost = (await get("EncryptedServer", ns, "srv-envelope-lost")) as Obj & {
    status?: { envelopeSecretName?: string };
  };
  const envelopeName = lost.status?.envelopeSecretName ?? "";
  await a.core.deleteNamespacedSecret({ namespace: ns, name: envelopeName });
  await a.core.patchNamespacedSecret(
    { namespace: ns, name: envelopeName, body: { metadata: { finalizers: null } } },
    k8sMergePatch,
  );
  // R19: a secondary whose primary is in a cluster no kubeconfig Secret names (it cannot be read)
  await a.create("EncryptedDatabase", region, "replica-far", {
    serverRef: { name: "dr" },
    ...own("r1"),
    replication: { role: "Secondary", primaryRef: { cluster: "far-away", namespace: ns, name: "orders" } },
  });
  brokenWraps.add(`${ns}/key-broken-kek`);
  await a.patch("EncryptedDatabase", ns, "db-rotation-fails", { spec: own("key-broken") });
}, 300_000);

afterAll(async () => {
  await op?.stop();
});

/** A state and what each tool must then say about its object. */
interface Row {
  name: string;
  read: () => Promise<Obj>;
  /** the object as the operator wrote it, before the state is reached */
  until: (o: Obj) => boolean;
  kstatus: KstatusResult["status"];
  argo: "Healthy" | "Progressing" | "Degraded";
  /** what Argo CD's message (and kstatus's, when not Current) must name */
  says: string;
}

const rows: Row[] = [
  {
    name: "R31 a restore from another namespace the source does not name back",
    read: () => get("EncryptedDatabase", region, "restore-not-named"),
    until: (o) => cond(o, "Ready")?.reason === "NotAllowedBySource",
    kstatus: "Failed",
    argo: "Degraded",
    says: "does not list",
  },
  {
    name: "R5 KeyProtector whose key its requirements will never accept",
    read: () => get("KeyProtector", ns, "key-too-small"),
    until: (o) => cond(o, "RequirementsMet")?.status === "False",
    kstatus: "Failed",
    argo: "Degraded",
    says: "is 2048 bits; use a key of 3072 bits",
  },
  {
    name: "R2 server whose envelope was deleted for good (the DEK is never replaced)",
    read: () => get("EncryptedServer", ns, "srv-envelope-lost"),
    until: (o) => cond(o, "Ready")?.reason === "EnvelopeMissing",
    kstatus: "Failed",
    argo: "Degraded",
    says: "tde-esrv-srv-envelope-lost holding DEK",
  },
  {
    name: "KeyProtector Ready",
    read: () => get("KeyProtector", ns, "key-ok"),
    until: readyTrue,
    kstatus: "Current",
    argo: "Healthy",
    says: "the key may protect DEKs",
  },
  {
    name: "R7 the Local service-managed key with a DEK on it alone: SinglePointOfLoss=True, and the KeyProtector still Ready",
    read: () => get("KeyProtector", opNs, "tde-service-managed"),
    until: (o) => cond(o, "SinglePointOfLoss")?.status === "True",
    kstatus: "Current",
    argo: "Healthy",
    says: "the key may protect DEKs",
  },
  {
    name: "server Available",
    read: () => get("EncryptedServer", ns, "srv-ok"),
    until: (o) => o.status?.state === "Available" && readyTrue(o),
    kstatus: "Current",
    argo: "Healthy",
    says: "key is accessible",
  },
  {
    name: "database Available",
    read: () => get("EncryptedDatabase", ns, "db-ok"),
    until: (o) => o.status?.state === "Available" && readyTrue(o),
    kstatus: "Current",
    argo: "Healthy",
    says: "key is accessible",
  },
  {
    name: "R10 KeyProtector KeyDisabled: a person must act",
    read: () => get("KeyProtector", ns, "key-disabled"),
    until: (o) => cond(o, "Accessible")?.reason === "KeyDisabled",
    kstatus: "Failed",
    argo: "Degraded",
    says: "KeyDisabled",
  },
  {
    name: "R10 KeyProtector VaultUnreachable: retried every probe",
    read: () => get("KeyProtector", ns, "key-unreachable"),
    until: (o) => cond(o, "Accessible")?.reason === "VaultUnreachable",
    kstatus: "InProgress",
    argo: "Progressing",
    says: "VaultUnreachable",
  },
  {
    name: "R7 KeyProtector waiting for the Secret of its imported key (create: Never): in progress, not failed",
    read: () => get("KeyProtector", ns, "key-awaited"),
    until: (o) => cond(o, "Ready")?.reason === "KeySecretNotFound",
    kstatus: "InProgress",
    argo: "Progressing",
    says: "key-awaited-kek does not exist",
  },
  {
    name: "R10 server: key lost within the grace period",
    read: () => get("EncryptedServer", ns, "srv-grace"),
    until: (o) => cond(o, "KeyAccessible")?.status === "False" && o.status?.state === "Available",
    kstatus: "InProgress",
    argo: "Progressing",
    says: "VaultUnreachable",
  },
  {
    name: "R10 server Inaccessible",
    read: () => get("EncryptedServer", ns, "srv-lost"),
    until: (o) => o.status?.state === "Inaccessible",
    kstatus: "Failed",
    argo: "Degraded",
    says: "Inaccessible",
  },
  {
    name: "R10 database Inaccessible because its server is: the message names the server",
    read: () => get("EncryptedDatabase", ns, "db-on-lost-server"),
    until: (o) => o.status?.state === "Inaccessible",
    kstatus: "Failed",
    argo: "Degraded",
    says: "server srv-lost is Inaccessible",
  },
  {
    name: "R15 refused change (the database keeps its key and Ready=True)",
    read: () => get("EncryptedDatabase", ns, "db-refused"),
    until: (o) => cond(o, "ProtectorChangeAccepted")?.status === "False",
    kstatus: "Failed",
    argo: "Degraded",
    says: "cannot choose the service-managed key",
  },
  {
    name: "R21 rotation blocked: waits for the secondary it names",
    read: () => get("EncryptedDatabase", ns, "orders"),
    until: (o) => cond(o, "RotationBlocked")?.status === "True",
    kstatus: "InProgress",
    argo: "Progressing",
    says: `${region}/replica`,
  },
  {
    name: "waiting for a missing KeyProtector",
    read: () => get("EncryptedServer", ns, "srv-no-kp"),
    until: (o) => cond(o, "Ready")?.reason === "KeyProtectorNotFound",
    kstatus: "InProgress",
    argo: "Progressing",
    says: "absent-kp",
  },
  {
    name: "waiting for a missing server",
    read: () => get("EncryptedDatabase", ns, "db-no-server"),
    until: (o) => cond(o, "Ready")?.reason === "ServerNotFound",
    kstatus: "InProgress",
    argo: "Progressing",
    says: "absent-server",
  },
  {
    name: "R16 a rotation whose re-wrap fails: retried, the DEK stays under its key",
    read: () => get("EncryptedDatabase", ns, "db-rotation-fails"),
    until: (o) => cond(o, "Ready")?.reason === "PermissionDenied",
    kstatus: "InProgress",
    argo: "Progressing",
    says: "key-broken",
  },
];

describe("R27 every state the operator produces, as kstatus (Flux) and Argo CD report it", () => {
  it.each(rows)("$name", async (row) => {
    // the operator's own output: it writes Reconciling and Stalled beside Ready (health-status.ts)
    const real = await waitFor(
      row.name,
      row.read,
      (o) => row.until(o) && cond(o, "Reconciling") !== undefined && cond(o, "Stalled") !== undefined,
      60_000,
    );
    for (const type of ["Reconciling", "Stalled"])
      expect(real.status?.conditions?.find((c) => c.type === type)?.observedGeneration, type).toBe(
        real.metadata.generation,
      );
    // never both True (kstatus reads the first True one)
    expect([cond(real, "Reconciling")?.status, cond(real, "Stalled")?.status]).not.toEqual(["True", "True"]);
    const [k] = await kstatus([real]);
    const [argo] = await argoHealth(healthLua, [real]);
    const flux = await fluxHealth(fluxExprs, [real]);
    expect(k?.status, JSON.stringify(k)).toBe(row.kstatus);
    // kstatus reads the operator's own Reconciling/Stalled: it agrees with what the operator wrote
    for (const kc of k?.conditions ?? [])
      expect(cond(real, kc.type)?.status === "True", kc.type).toBe(kc.status === "True");
    // Flux's wait: true with our healthCheckExprs
    expect(flux.map((f) => f.status)).toEqual([row.kstatus]);
    if (row.kstatus !== "Current") expect(k?.message).toContain(row.says);
    expect(argo).toEqual({ status: row.argo, message: expect.stringContaining(row.says) });
  });

  it("a brand-new object without status: kstatus says Current (the race Flux's healthCheckExprs close), Argo CD Progressing", async () => {
    const fresh = await get("EncryptedServer", unwatched, "brand-new");
    expect(fresh.status).toBeUndefined();
    expect((await kstatus([fresh]))[0]?.status).toBe("Current");
    expect((await argoHealth(healthLua, [fresh]))[0]?.status).toBe("Progressing");
    // Flux cannot evaluate the expressions before a status exists: Unknown, and it keeps waiting
    const [flux] = await fluxHealth(fluxExprs, [fresh]);
    expect(flux).toEqual({ status: "Unknown", message: expect.stringContaining("status.conditions") });
  });

  it("a generation the operator has not observed yet: InProgress and Progressing", async () => {
    const available = await get("EncryptedServer", ns, "srv-ok");
    expect(cond(available, "Reconciling")?.status).toBe("False");
    const ahead = {
      ...available,
      metadata: { ...available.metadata, generation: available.metadata.generation + 1 },
    };
    const behind = {
      ...ahead,
      status: { ...ahead.status, observedGeneration: available.metadata.generation },
    };
    expect((await kstatus([behind]))[0]?.status).toBe("InProgress");
    expect((await fluxHealth(fluxExprs, [ahead, behind])).map((f) => f.status)).toEqual([
      "InProgress",
      "InProgress",
    ]);
    expect((await argoHealth(healthLua, [ahead]))[0]).toEqual({
      status: "Progressing",
      message: `Waiting for the tde-operator to observe generation ${ahead.metadata.generation}`,
    });
  });

  it("deleting: a KeyProtector deleted while a server uses it waits (R33), Terminating for kstatus, Progressing for Argo CD", async () => {
    await keyProtector(ns, "key-deleted");
    await a.create("EncryptedServer", ns, "srv-on-deleted-key", customer("key-deleted"));
    await waitFor(
      "srv-on-deleted-key Available",
      () => get("EncryptedServer", ns, "srv-on-deleted-key"),
      readyTrue,
    );
    await a.delete("KeyProtector", ns, "key-deleted");
    // the operator's own output: held by its in-use finalizer, the dependant named
    const deleting = await waitFor(
      "the KeyProtector held while in use",
      () => get("KeyProtector", ns, "key-deleted"),
      (o) => Boolean(o.metadata.deletionTimestamp) && cond(o, "DeletionBlocked")?.status === "True",
    );
    expect((await kstatus([deleting]))[0]?.status).toBe("Terminating");
    expect((await argoHealth(healthLua, [deleting]))[0]?.status).toBe("Progressing");
    expect((await fluxHealth(fluxExprs, [deleting])).map((f) => f.status)).not.toEqual(["Current"]);
  });
});

/** The sample lines of a /metrics text, by series (name and labels as written). */
function samples(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split("\n")) {
    if (!line || line.startsWith("#")) continue;
    const at = line.lastIndexOf(" ");
    const value = line.slice(at + 1);
    // an event-loop statistic not measured yet is NaN, which promtool's series notation cannot repeat
    if (Number.isFinite(Number(value))) out.set(line.slice(0, at), value);
  }
  return out;
}

/** Minutes of promtool time each scrape stands for, one sample a minute: healthy 0-9, unhealthy 10-59. */
const SPANS = [
  { from: 0, samples: 10 },
  { from: 10, samples: 50 },
];

/**
 * promtool input series: each scrape's samples repeated over its span (a series absent from a
 * scrape is absent there too). promtool's clock starts at 0, so timestamps (the key expiry) are
 * moved with it: the same distance from "now" as when they were scraped.
 */
function inputSeries(): { series: string; values: string }[] {
  const parsed = scrapes.map((s) => samples(s.text));
  const series = new Set(parsed.flatMap((p) => [...p.keys()]));
  return [...series].map((name) => ({
    series: name,
    values: SPANS.map(({ from, samples: n }, i) => {
      let v = parsed[i]?.get(name);
      if (v !== undefined && name.startsWith("tde_key_expiry_timestamp_seconds"))
        v = String(Number(v) - Math.round(scrapes[i]?.at ?? 0) + from * 60);
      // "vxN" is N+1 samples of v, "_xN" N missing ones
      return v === undefined ? `_x${n}` : `${v}x${n - 1}`;
    }).join(" "),
  }));
}

/** The PrometheusRule's groups as a promtool rule file, annotations left out (text for people, checked by `promtool check rules`). */
function ruleFile(dir: string): string {
  const rule = parseDocument(
    readFileSync(join(repoRoot, "deploy", "overlays", "monitoring", "prometheusrule.yaml"), "utf8"),
  ).toJS() as { spec: { groups: { rules: Record<string, unknown>[] }[] } };
  const full = join(dir, "full.yaml");
  writeFileSync(full, stringify({ groups: rule.spec.groups }));
  const bare = join(dir, "rules.yaml");
  writeFileSync(
    bare,
    stringify({
      groups: rule.spec.groups.map((g) => ({ ...g, rules: g.rules.map(({ annotations: _, ...r }) => r) })),
    }),
  );
  return bare;
}

describe("R28 alerts fire on what the operator exports, and stay silent while healthy", () => {
  beforeAll(async () => {
    for (const row of rows) await waitFor(row.name, row.read, row.until, 60_000);
    await waitFor(
      "the unhealthy series",
      () => op.metrics.registry.metrics(),
      (t) =>
        /tde_rotations_blocked\{[^}]*\} 1/.test(t) &&
        /tde_resources\{kind="EncryptedDatabase",state="Inaccessible"\} 1/.test(t) &&
        /tde_rotations_total\{kind="EncryptedDatabase",result="error"\}/.test(t) &&
        t.includes('keyprotector="key-soon"') &&
        t.includes('tde_service_managed_single_point_of_loss{kind="EncryptedServer"} 1') &&
        t.includes('tde_remote_cluster_up{cluster="far-away"} 0'),
      60_000,
    );
    await scrape();
  });

  it("promtool check rules accepts the PrometheusRule, annotations and all", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tde-rules-"));
    ruleFile(dir);
    const out = await promtool(["check", "rules", join(dir, "full.yaml")]);
    expect(out.code, out.stdout + out.stderr).toBe(0);
  });

  it("promtool check metrics accepts the operator's /metrics text (default Node.js metrics included)", async () => {
    for (const { text } of scrapes) {
      expect(text).toContain("tde_process_resident_memory_bytes");
      const out = await promtool(["check", "metrics"], text);
      expect(out.code, out.stdout + out.stderr).toBe(0);
    }
  });

  it("promtool test rules: each alert silent on the healthy series, firing on the unhealthy ones", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tde-rules-"));
    const rules = ruleFile(dir);
    const alerts = (
      parseDocument(
        readFileSync(join(repoRoot, "deploy", "overlays", "monitoring", "prometheusrule.yaml"), "utf8"),
      ).toJS() as { spec: { groups: { rules: { alert: string }[] }[] } }
    ).spec.groups.flatMap((g) => g.rules.map((r) => r.alert));
    const critical = { severity: "critical" };
    const warning = { severity: "warning" };
    const firing: Record<
      string,
      { eval_time: string; exp_alerts: { exp_labels: Record<string, string> }[] }
    > = {
      TDEKeyAccessLost: {
        eval_time: "15m",
        exp_alerts: ["key-disabled", "key-grace", "key-lost", "key-unreachable"].map((kp) => ({
          exp_labels: { ...critical, namespace: ns, keyprotector: kp },
        })),
      },
      TDEResourceInaccessible: {
        eval_time: "15m",
        exp_alerts: ["EncryptedDatabase", "EncryptedServer"].map((kind) => ({
          exp_labels: { ...critical, kind },
        })),
      },
      TDERotationBlocked: {
        eval_time: "30m",
        exp_alerts: [{ exp_labels: { ...warning, kind: "EncryptedDatabase", namespace: ns } }],
      },
      TDERotationFailed: {
        eval_time: "15m",
        exp_alerts: [{ exp_labels: { ...warning, kind: "EncryptedDatabase" } }],
      },
      TDEKeyExpiringSoon: {
        eval_time: "15m",
        exp_alerts: [{ exp_labels: { ...warning, namespace: ns, keyprotector: "key-soon" } }],
      },
      // for 10m: unhealthy from 10m
      TDERemoteClusterUnreachable: {
        eval_time: "30m",
        exp_alerts: [{ exp_labels: { ...warning, cluster: "far-away" } }],
      },
      // for 30m: unhealthy from 10m
      TDEServiceManagedKeySinglePointOfLoss: {
        eval_time: "45m",
        exp_alerts: [{ exp_labels: { ...warning, kind: "EncryptedServer" } }],
      },
    };
    expect(Object.keys(firing).sort()).toEqual([...alerts].sort());
    const test = {
      rule_files: [rules],
      evaluation_interval: "1m",
      tests: [
        {
          interval: "1m",
          input_series: inputSeries(),
          alert_rule_test: alerts.flatMap((alertname) => [
            // healthy: 9 minutes of the healthy start, every `for` long past
            { eval_time: "9m", alertname, exp_alerts: [] },
            { alertname, ...firing[alertname] },
          ]),
        },
      ],
    };
    const file = join(dir, "test.yaml");
    writeFileSync(file, stringify(test));
    const out = await promtool(["test", "rules", file]);
    expect(out.code, out.stdout + out.stderr).toBe(0);
    expect(out.stdout).toContain("SUCCESS");
  });
});
