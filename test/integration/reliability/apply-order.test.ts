/**
 * #22: the same end state in any order. A set of manifests (servers, databases, KeyProtectors,
 * Local KEK Secrets, a geo primary with its secondary in another namespace, a restore into a third,
 * a server copy) is applied in many orders at the real API server: the natural one, five
 * adversarial ones (servers last, KeyProtectors last, Local KEK Secrets last, everything
 * reversed so that copies come before their sources and secondaries before their primary, copies
 * first with their servers last) and TDE_ORDER_RUNS (default 20) random ones from a printed seed (TDE_ORDER_SEED replays
 * it), with seeded pauses between some steps so the operator acts on the partial states. Every
 * order must reach the natural order's end state: the same states and conditions (status and
 * reason), the same protectors, key lists and DEKs shared where they must be (the secondary and
 * the restore hold the primary's DEK id and KCV); and no copy is ever seen Available without a
 * successful revalidation (R23), in any status the API server held.
 *
 * TDE_ORDER_PARALLEL (default 4) orders run at once, each in namespaces and with an operator of
 * its own, on one control plane; TDE_ORDER_DUMP=1 prints the natural order's end state.
 *
 * No precondition on order: the KeyProtectors of imported key material say `create: Never` (R7),
 * so one applied before its Local KEK Secret waits for it (KeySecretNotFound) instead of getting a
 * key of its own that the Secret would collide with; an order with every Secret last proves it.
 * The KeyProtector without a Secret (`plain`) gets its key on first use, in every order.
 */
import { generateKeyPairSync, randomInt } from "node:crypto";
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { decodeEnvelopeSecret, thumbprint } from "../../../src/crypto/index.js";
import { localKeySecret, storedVersion } from "../../../src/kms/local-key-format.js";
import { startTestOperator } from "../../harness/operator.js";
import { type Api, api, kc, suffix } from "../controllers/helpers.js";

const RUNS = Number(process.env.TDE_ORDER_RUNS ?? 20);
const SEED = Number(process.env.TDE_ORDER_SEED ?? randomInt(2 ** 31));
/** orders applied at the same time, each with its own operator and namespaces */
const PARALLEL = Number(process.env.TDE_ORDER_PARALLEL ?? 4);
const CONVERGE_MS = 90_000;
const id = suffix();
let a: Api;
let objects: k8s.CustomObjectsApi;

/** The key material imported into the three regions (the same manifest in each). */
const privateKey = generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey;
const M1 = thumbprint(privateKey);
const material = { versions: [storedVersion(privateKey, {}, new Date("2026-01-01T00:00:00Z"))] };

type Role = "p" | "s" | "r";
type Kind = "Secret" | "KeyProtector" | "EncryptedServer" | "EncryptedDatabase";
interface Manifest {
  kind: Kind;
  role: Role;
  name: string;
  spec?: (ns: Record<Role, string>) => Record<string, unknown>;
}
const label = (m: Pick<Manifest, "kind" | "role" | "name">) => `${m.kind} ${m.role}/${m.name}`;

const imported = { requireRecoverable: false };
/** The manifests, in their natural order (keys, servers, sources, then copies). */
const MANIFESTS: Manifest[] = [
  { kind: "Secret", role: "p", name: "geo-kek" },
  { kind: "Secret", role: "s", name: "geo-kek" },
  { kind: "Secret", role: "r", name: "geo-kek" },
  {
    kind: "KeyProtector",
    role: "p",
    name: "geo",
    spec: () => ({
      provider: "Local",
      local: { secretRef: { name: "geo-kek" }, create: "Never" },
      requirements: imported,
    }),
  },
  {
    kind: "KeyProtector",
    role: "p",
    name: "plain",
    // no Secret: the operator creates the key on first use (R7)
    spec: () => ({
      provider: "Local",
      local: { secretRef: { name: "plain-kek" } },
      requirements: { allowedKeySizes: [2048] },
    }),
  },
  {
    kind: "KeyProtector",
    role: "s",
    name: "geo-dr",
    spec: () => ({
      provider: "Local",
      local: { secretRef: { name: "geo-kek" }, create: "Never" },
      requirements: imported,
    }),
  },
  {
    kind: "KeyProtector",
    role: "r",
    name: "restore-key",
    spec: () => ({
      provider: "Local",
      local: { secretRef: { name: "geo-kek" }, create: "Never" },
      requirements: imported,
    }),
  },
  {
    kind: "EncryptedServer",
    role: "p",
    name: "srv",
    spec: () => ({
      protector: { type: "CustomerManaged", keyProtectorRef: { name: "plain" } },
      revalidation: "Manual",
    }),
  },
  {
    kind: "EncryptedServer",
    role: "p",
    name: "srv-copy",
    spec: () => ({
      protector: { type: "ServiceManaged" },
      revalidation: "Manual",
      source: { kind: "Replica", sourceRef: { name: "srv" } },
    }),
  },
  {
    kind: "EncryptedServer",
    role: "s",
    name: "dr",
    spec: () => ({
      protector: { type: "CustomerManaged", keyProtectorRef: { name: "geo-dr" } },
      revalidation: "Automatic",
    }),
  },
  {
    kind: "EncryptedServer",
    role: "r",
    name: "rsrv",
    spec: () => ({
      protector: { type: "ServiceManaged" },
      revalidation: "Manual",
      revalidationToken: "copied",
    }),
  },
  {
    kind: "EncryptedDatabase",
    role: "p",
    name: "orders",
    spec: (ns) => ({
      serverRef: { name: "srv" },
      encryptionProtector: { type: "CustomerManaged", keyProtectorRef: { name: "geo" } },
      replication: { role: "Primary", secondaries: [{ namespace: ns.s, name: "orders-dr" }] },
      allowedRestoreTargets: [{ namespace: ns.r, name: "orders-restored" }],
    }),
  },
  { kind: "EncryptedDatabase", role: "p", name: "plain-db", spec: () => ({ serverRef: { name: "srv" } }) },
  {
    kind: "EncryptedDatabase",
    role: "s",
    name: "orders-dr",
    spec: (ns) => ({
      serverRef: { name: "dr" },
      encryptionProtector: { type: "CustomerManaged", keyProtectorRef: { name: "geo-dr" } },
      replication: { role: "Secondary", primaryRef: { namespace: ns.p, name: "orders" } },
    }),
  },
  {
    kind: "EncryptedDatabase",
    role: "r",
    name: "orders-restored",
    spec: (ns) => ({
      serverRef: { name: "rsrv" },
      restore: {
        sourceRef: { namespace: ns.p, name: "orders" },
        keys: [{ keyProtectorRef: { name: "restore-key" } }],
      },
    }),
  },
];
/** The copies (R23): never Available without a successful revalidation. */
const COPIES = new Set([
  "EncryptedDatabase s/orders-dr",
  "EncryptedDatabase r/orders-restored",
  "EncryptedServer p/srv-copy",
]);
const PLURAL: Record<Exclude<Kind, "Secret">, string> = {
  KeyProtector: "keyprotectors",
  EncryptedServer: "encryptedservers",
  EncryptedDatabase: "encrypteddatabases",
};

/** mulberry32: a small seeded PRNG, so an order is replayed from its seed. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Order {
  name: string;
  steps: { manifest: Manifest; pauseMs: number }[];
}
const plain = (name: string, list: Manifest[]): Order => ({
  name,
  steps: list.map((manifest) => ({ manifest, pauseMs: 0 })),
});
const byKind = (...kinds: Kind[]) => MANIFESTS.filter((m) => kinds.includes(m.kind));
const others = (...kinds: Kind[]) => MANIFESTS.filter((m) => !kinds.includes(m.kind));

function randomOrder(i: number): Order {
  const rand = prng(SEED + i);
  const list = [...MANIFESTS];
  for (let j = list.length - 1; j > 0; j--) {
    const k = Math.floor(rand() * (j + 1));
    [list[j], list[k]] = [list[k] as Manifest, list[j] as Manifest];
  }
  // a pause at some steps lets the operator act on the partial state (and record what it waits for)
  return {
    name: `random #${i} (seed ${SEED + i})`,
    steps: list.map((manifest) => ({
      manifest,
      pauseMs: rand() < 0.3 ? Math.floor(rand() * 600) : 0,
    })),
  };
}

const ORDERS: Order[] = [
  plain("servers last", [...others("EncryptedServer"), ...byKind("EncryptedServer")]),
  plain("KeyProtectors last", [...others("KeyProtector"), ...byKind("KeyProtector")]),
  plain("Local KEK Secrets last: KeyProtectors wait for their imported key (create: Never)", [
    ...others("Secret"),
    ...byKind("Secret"),
  ]),
  plain("reversed: copies before their sources, the secondary before its primary", [...MANIFESTS].reverse()),
  plain("copies first, their servers last", [
    ...MANIFESTS.filter((m) => COPIES.has(label(m))),
    ...MANIFESTS.filter((m) => !COPIES.has(label(m)) && !(m.kind === "EncryptedServer" && m.name !== "srv")),
    ...MANIFESTS.filter((m) => m.kind === "EncryptedServer" && m.name !== "srv" && !COPIES.has(label(m))),
  ]),
  ...Array.from({ length: RUNS }, (_, i) => randomOrder(i)),
];

async function apply(m: Manifest, ns: Record<Role, string>): Promise<void> {
  const namespace = ns[m.role];
  if (m.kind === "Secret") {
    const body = localKeySecret(namespace, m.name, material);
    await a.core.createNamespacedSecret({ namespace, body: body as k8s.V1Secret });
    return;
  }
  await a.create(m.kind, namespace, m.name, m.spec?.(ns) ?? {});
}

type Obj = {
  metadata: { name: string; namespace: string; generation?: number };
  status?: Record<string, unknown> & {
    state?: string;
    conditions?: { type: string; status: string; reason: string }[];
    thumbprint?: string;
    dekID?: string;
    envelopeSecretName?: string;
  };
};

/**
 * The end state, as comparable data: per object its state, its conditions (type=status/reason),
 * its protector and key list (keys named by what holds them, not by random thumbprints), which
 * database's DEK it holds, and whether every envelope holding one DEK has one KCV.
 */
async function snapshot(ns: Record<Role, string>, opNs: string) {
  const list = async (kind: Exclude<Kind, "Secret">, role: Role) =>
    (
      (await objects.listNamespacedCustomObject({
        group: "tde.dev",
        version: "v1alpha1",
        namespace: ns[role],
        plural: PLURAL[kind],
      })) as { items: Obj[] }
    ).items.map((o) => ({ kind, role, o }));
  const all = (
    await Promise.all(
      (["KeyProtector", "EncryptedServer", "EncryptedDatabase"] as const).flatMap((kind) =>
        (["p", "s", "r"] as const).map((role) => list(kind, role)),
      ),
    )
  ).flat();
  const smk = (await a.get<Obj>("KeyProtector", opNs, "tde-service-managed").catch(() => undefined))?.status
    ?.thumbprint;
  const keyName = new Map<string, string>([[M1, "M1"]]);
  if (smk) keyName.set(smk, "service-managed");
  for (const { kind, role, o } of all)
    if (kind === "KeyProtector" && o.status?.thumbprint && !keyName.has(o.status.thumbprint))
      keyName.set(o.status.thumbprint, `${role}/${o.metadata.name}`);
  const key = (t: unknown) => (typeof t === "string" ? (keyName.get(t) ?? "unknown key") : undefined);
  // which object's DEK each one holds, by the first (in manifest order) holding the same DEK id
  const envelopes = new Map<string, { dekID: string; kcv: string }>();
  for (const { kind, role, o } of all) {
    if (!o.status?.envelopeSecretName) continue;
    const secret = await a.core.readNamespacedSecret({
      namespace: ns[role],
      name: o.status.envelopeSecretName,
    });
    const e = decodeEnvelopeSecret(secret as { type?: string; data?: Record<string, string> });
    envelopes.set(label({ kind, role, name: o.metadata.name }), { dekID: e.dekID, kcv: e.kcv });
  }
  const holderOf = (dekID: string) =>
    MANIFESTS.map(label).find((l) => envelopes.get(l)?.dekID === dekID) ?? "none";
  const out: Record<string, unknown> = {};
  for (const { kind, role, o } of all) {
    const s = o.status ?? {};
    const l = label({ kind, role, name: o.metadata.name });
    const env = envelopes.get(l);
    const effective = s.effectiveProtector as Record<string, string> | undefined;
    const protector = s.protector as Record<string, string> | undefined;
    out[l] = {
      state: s.state,
      conditions: (s.conditions ?? []).map((c) => `${c.type}=${c.status}/${c.reason}`).sort(),
      ...(kind === "KeyProtector" ? { key: key(s.thumbprint) } : {}),
      ...(protector
        ? {
            protector: {
              type: protector.type,
              keyProtectorName: protector.keyProtectorName,
              key: key(protector.thumbprint),
            },
          }
        : {}),
      ...(effective
        ? {
            effectiveProtector: {
              source: effective.source,
              type: effective.type,
              keyProtectorName: effective.keyProtectorName,
              key: key(effective.thumbprint),
            },
          }
        : {}),
      ...(s.keyList
        ? {
            keyList: (s.keyList as { role: string; thumbprint: string; until?: string }[])
              .map((e) => `${e.role}:${key(e.thumbprint)}:${e.until ? "ended" : "current"}`)
              .sort(),
          }
        : {}),
      ...(s.missingThumbprints ? { missing: (s.missingThumbprints as string[]).map(key) } : {}),
      ...(env
        ? {
            dekOf: holderOf(env.dekID),
            kcvAgrees: env.kcv === envelopes.get(holderOf(env.dekID))?.kcv,
          }
        : {}),
    };
  }
  return out;
}

/** Watches the order's namespaces and records every status of a copy that is Available without Revalidated=True (R23). */
async function watchCopies(ns: Record<Role, string>) {
  const violations: string[] = [];
  const seen = new Map<string, string[]>();
  const watch = new k8s.Watch(kc());
  const requests = await Promise.all(
    (["p", "s", "r"] as const).flatMap((role) =>
      (["EncryptedServer", "EncryptedDatabase"] as const).map((kind) =>
        watch.watch(
          `/apis/tde.dev/v1alpha1/namespaces/${ns[role]}/${PLURAL[kind]}`,
          {},
          (_type: string, o: Obj) => {
            const l = label({ kind, role, name: o.metadata.name });
            if (!COPIES.has(l)) return;
            const state = o.status?.state ?? "(none)";
            const states = seen.get(l) ?? [];
            if (states.at(-1) !== state) states.push(state);
            seen.set(l, states);
            const revalidated = o.status?.conditions?.find((c) => c.type === "Revalidated");
            if (state === "Available" && revalidated?.status !== "True")
              violations.push(`${l} Available with Revalidated ${JSON.stringify(revalidated)}`);
          },
          () => {},
        ),
      ),
    ),
  );
  return {
    violations,
    seen,
    stop: () => {
      for (const r of requests) r.abort();
    },
  };
}

/** Applies one order in namespaces of its own, with an operator of its own, and waits for `until`. */
async function run(
  index: string,
  order: Order,
  until: (snap: Record<string, unknown>) => boolean,
): Promise<{ snap: Record<string, unknown>; violations: string[]; seen: Map<string, string[]> }> {
  const ns: Record<Role, string> = {
    p: `ord-${id}-${index}-p`,
    s: `ord-${id}-${index}-s`,
    r: `ord-${id}-${index}-r`,
  };
  const opNs = `ord-${id}-${index}-op`;
  const op = await startTestOperator({
    watchNamespaces: [ns.p, ns.s, ns.r],
    operatorNamespace: opNs,
    // a loaded machine may probe late; a late probe says Unknown (R33), which is rechecked after an interval
    probeIntervalMs: 2_000,
  });
  const copies = await watchCopies(ns);
  try {
    for (const { manifest, pauseMs } of order.steps) {
      await apply(manifest, ns);
      if (pauseMs > 0) await new Promise((r) => setTimeout(r, pauseMs));
    }
    const deadline = Date.now() + CONVERGE_MS;
    let snap = await snapshot(ns, opNs);
    while (!until(snap) && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 300));
      snap = await snapshot(ns, opNs);
    }
    return { snap, violations: copies.violations, seen: copies.seen };
  } finally {
    copies.stop();
    await op.stop();
  }
}

/** What differs between two end states, object by object. */
function differences(want: Record<string, unknown>, got: Record<string, unknown>): string[] {
  return [...new Set([...Object.keys(want), ...Object.keys(got)])]
    .filter((k) => JSON.stringify(want[k]) !== JSON.stringify(got[k]))
    .map((k) => `${k}:\n    want ${JSON.stringify(want[k])}\n    got  ${JSON.stringify(got[k])}`);
}

const state = (snap: Record<string, unknown>, l: string) =>
  snap[l] as { state?: string; conditions: string[]; dekOf?: string; kcvAgrees?: boolean } | undefined;

/** The natural order's end state, stated: the baseline is itself checked, not only taken. */
function naturalEndState(snap: Record<string, unknown>): boolean {
  const is = (l: string, s: string, ...conditions: string[]) =>
    state(snap, l)?.state === s && conditions.every((c) => state(snap, l)?.conditions.includes(c));
  return (
    MANIFESTS.filter((m) => m.kind === "KeyProtector").every((m) =>
      state(snap, label(m))?.conditions.includes("Ready=True/Reconciled"),
    ) &&
    is("EncryptedServer p/srv", "Available", "Ready=True/Available") &&
    is("EncryptedServer s/dr", "Available", "Ready=True/Available") &&
    is("EncryptedServer r/rsrv", "Available", "Ready=True/Available") &&
    is("EncryptedServer p/srv-copy", "Inaccessible", "Revalidated=False/WaitingForRevalidation") &&
    is(
      "EncryptedDatabase p/orders",
      "Available",
      "Ready=True/Available",
      "ReplicationLinked=True/ReplicationLinked",
    ) &&
    is("EncryptedDatabase p/plain-db", "Available", "Ready=True/Available") &&
    is(
      "EncryptedDatabase s/orders-dr",
      "Available",
      "Ready=True/Available",
      "Revalidated=True/Revalidated",
      "KeyListSynced=True/KeyListSynced",
      "ReplicationLinked=True/ReplicationLinked",
    ) &&
    is(
      "EncryptedDatabase r/orders-restored",
      "Inaccessible",
      "Restored=True/Restored",
      "Revalidated=False/WaitingForRevalidation",
    ) &&
    state(snap, "EncryptedDatabase s/orders-dr")?.dekOf === "EncryptedDatabase p/orders" &&
    state(snap, "EncryptedDatabase r/orders-restored")?.dekOf === "EncryptedDatabase p/orders" &&
    Object.values(snap).every((o) => (o as { kcvAgrees?: boolean }).kcvAgrees !== false)
  );
}

beforeAll(() => {
  a = api(kc());
  objects = kc().makeApiClient(k8s.CustomObjectsApi);
  process.stderr.write(
    `[apply-order] seed ${SEED}, ${RUNS} random orders (replay: TDE_ORDER_SEED=${SEED} TDE_ORDER_RUNS=${RUNS})\n`,
  );
});

afterAll(() => {
  process.stderr.write(`[apply-order] seed was ${SEED}\n`);
});

describe("#22 the same end state in any order", () => {
  it(`R23 R19 R24 R31 R7 ${ORDERS.length + 1} orders of the same manifests (natural, ${ORDERS.length - RUNS} adversarial, ${RUNS} random from seed ${SEED}) reach the natural order's end state; no copy is Available without a revalidation`, async () => {
    // the natural order first: its end state is stated, then taken once it no longer moves
    const natural = await run("n", plain("natural", MANIFESTS), naturalEndState);
    expect(natural.violations).toEqual([]);
    expect(naturalEndState(natural.snap), JSON.stringify(natural.snap, null, 1)).toBe(true);
    let want = natural.snap;
    if (process.env.TDE_ORDER_DUMP) process.stderr.write(`${JSON.stringify(want, null, 1)}\n`);
    for (let i = 0; i < 3; i++) {
      // a settled end state reads the same twice (a wait, not an assertion: the orders are compared to it)
      await new Promise((r) => setTimeout(r, 500));
      const again = await snapshot(
        { p: `ord-${id}-n-p`, s: `ord-${id}-n-s`, r: `ord-${id}-n-r` },
        `ord-${id}-n-op`,
      );
      if (JSON.stringify(again) === JSON.stringify(want)) break;
      want = again;
    }

    const failures: string[] = [];
    let next = 0;
    const worker = async () => {
      while (next < ORDERS.length) {
        const i = next++;
        const order = ORDERS[i] as Order;
        const same = (snap: Record<string, unknown>) => differences(want, snap).length === 0;
        try {
          const got = await run(String(i), order, same);
          const diff = differences(want, got.snap);
          const wrongCopies = [...got.seen].filter(
            ([, states]) =>
              states.includes("Available") &&
              !states.slice(0, states.indexOf("Available")).includes("Inaccessible"),
          );
          if (diff.length > 0 || got.violations.length > 0 || wrongCopies.length > 0)
            failures.push(
              [
                `order "${order.name}": ${order.steps.map((s) => `${label(s.manifest)}${s.pauseMs ? ` +${s.pauseMs}ms` : ""}`).join(", ")}`,
                ...diff,
                ...got.violations.map((v) => `R23 violated: ${v}`),
                ...wrongCopies.map(([l, states]) => `R23 ${l} states ${states.join(" -> ")}`),
              ].join("\n  "),
            );
        } catch (error) {
          failures.push(`order "${order.name}" failed: ${(error as Error).stack}`);
        }
      }
    };
    await Promise.all(Array.from({ length: PARALLEL }, worker));
    expect(failures, `seed ${SEED} (replay: TDE_ORDER_SEED=${SEED})\n${failures.join("\n\n")}`).toEqual([]);
  }, 900_000);
});
