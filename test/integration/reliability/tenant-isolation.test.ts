/**
 * R31 R30 tenancy: two tenants, A and B, each in its own namespace, one operator watching both,
 * run as the chart's ServiceAccount under the chart's RBAC (`helm template` with
 * operator.watchNamespaces: a Role in each watched namespace, no ClusterRole). A's user holds
 * namespace-admin rights in A only. Whatever A writes (references to B's KeyProtector, server or
 * key Secret, a restore or a replica of B's database that B did not allow, an envelope Secret
 * forged from B's), the operator never uses B's key or B's DEK for A: it is refused by the API
 * server's schema, resolved in A's own namespace, or reported on a condition; a forged envelope is
 * refused by its owner binding (R31). The Local provider is observed, so every DEK that crosses a
 * wrap or an unwrap is seen; at the end none of B's DEKs was wrapped on A's behalf, and unwrapped
 * only once: in memory, to check the owner tag of a forged copy relabelled to A's server (the one
 * check that needs the DEK), no Secret of B changed, and no wrap under a key of A opens to a DEK
 * of B.
 */
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import {
  decodeEnvelopeSecret,
  type Envelope,
  protectorWrap,
  wrappedBytes,
} from "../../../src/crypto/index.js";
import { parseLocalKeyID } from "../../../src/kms/local.js";
import type { KekProvider, KeyReference } from "../../../src/kms/provider.js";
import { ensureHelm, helm } from "../../harness/helm.js";
import { interposed } from "../../harness/kek-interposer.js";
import { kubectl } from "../../harness/kube.js";
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

const id = suffix();
const nsA = `tenant-a-${id}`;
const nsB = `tenant-b-${id}`;
const opNs = `tenant-op-${id}`;
const chart = join(import.meta.dirname, "..", "..", "..", "charts", "tde-operator");
const RBAC_KINDS = new Set(["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"]);

let op: TestOperator;
let admin: Api;
/** tenant A's user: namespace-admin rights in A, nothing in B */
let tenant: Api;
let tenantKc: k8s.KubeConfig;

/** Every DEK-sized plaintext that crossed the Local provider, in order. */
const seen: { op: "wrap" | "unwrap"; ref: KeyReference; plain: Buffer }[] = [];
/** B's DEKs, as the test unwrapped them, by owner */
const bDeks = new Map<string, Buffer>();
/** B's Secrets (name → resourceVersion) once B had converged, and how much the provider had seen then */
let baseline: { secrets: Map<string, string>; seen: number };
const figures = {
  refusedBySchema: 0,
  refusedOnCondition: 0,
  forged: 0,
  bDeks: 0,
  aWrapsChecked: 0,
  tagCheckUnwraps: 0,
};
/** Indices in `seen` of the unwraps the owner tag check of the relabelled forgery needed */
const tagChecks = new Set<number>();

const observe = (local: KekProvider): KekProvider =>
  interposed(local, {
    wrap: (r, d) => {
      if (d.length === 32) seen.push({ op: "wrap", ref: r, plain: Buffer.from(d) });
      return local.wrap(r, d);
    },
    unwrap: async (r, w) => {
      const plain = await local.unwrap(r, w);
      if (plain.length === 32) seen.push({ op: "unwrap", ref: r, plain: Buffer.from(plain) });
      return plain;
    },
  });

/** The chart's RBAC for a release in opNs watching A and B, applied for real; returns its ServiceAccount's user. */
async function installChartRbac(): Promise<string> {
  ensureHelm((line) => process.stderr.write(`[helm] ${line}\n`));
  const { stdout } = await helm([
    "template",
    "tde",
    chart,
    "--namespace",
    opNs,
    "--set",
    `operator.watchNamespaces={${nsA},${nsB}}`,
  ]);
  const docs = parseAllDocuments(stdout)
    .map((d) => d.toJS() as { kind?: string; metadata: { name: string; namespace?: string } })
    .filter((d) => d?.kind && RBAC_KINDS.has(d.kind));
  // least privilege: a Role in each watched namespace and one in its own, nothing cluster-wide
  expect(docs.filter((d) => d.kind?.startsWith("Cluster"))).toEqual([]);
  expect(docs.filter((d) => d.kind === "Role").map((d) => d.metadata.namespace)).toEqual(
    expect.arrayContaining([nsA, nsB, opNs]),
  );
  await kubectl(["apply", "--server-side", "-f", "-"], docs.map((d) => JSON.stringify(d)).join("\n"));
  const sa = docs.find((d) => d.kind === "ServiceAccount")!;
  return `system:serviceaccount:${opNs}:${sa.metadata.name}`;
}

/** A user with every right a namespace admin has on our kinds, Secrets and ConfigMaps, in A only. */
async function tenantUser(): Promise<k8s.KubeConfig> {
  const user = `tenant-a-admin-${id}`;
  const role = {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "Role",
    metadata: { name: "tenant-admin", namespace: nsA },
    rules: [
      { apiGroups: ["tde.dev"], resources: ["*"], verbs: ["*"] },
      { apiGroups: [""], resources: ["secrets", "configmaps"], verbs: ["*"] },
      { apiGroups: [""], resources: ["events"], verbs: ["get", "list", "watch"] },
    ],
  };
  const binding = {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "RoleBinding",
    metadata: { name: "tenant-admin", namespace: nsA },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "tenant-admin" },
    subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: user }],
  };
  await kubectl(
    ["apply", "--server-side", "-f", "-"],
    [role, binding].map((d) => JSON.stringify(d)).join("\n"),
  );
  return kubeConfigForUser(user);
}

const codeOf = async (p: Promise<unknown>): Promise<number> =>
  p.then(
    () => 200,
    (error: { code?: number }) => error.code ?? -1,
  );

/** Creates one of our objects as the tenant with strict field validation: unknown fields are refused. */
async function createStrict(kind: string, plural: string, name: string, spec: unknown): Promise<number> {
  return codeOf(
    tenantKc.makeApiClient(k8s.CustomObjectsApi).createNamespacedCustomObject({
      group: "tde.dev",
      version: "v1alpha1",
      namespace: nsA,
      plural,
      body: { apiVersion: "tde.dev/v1alpha1", kind, metadata: { name, namespace: nsA }, spec },
      fieldValidation: "Strict",
    }),
  );
}

async function secretsOf(ns: string): Promise<k8s.V1Secret[]> {
  return (await admin.core.listNamespacedSecret({ namespace: ns })).items;
}

/** Unwraps one wrap as an admin would, with the Local key its id names (any namespace). */
async function adminUnwrap(envelope: Envelope, keyID: string): Promise<Buffer> {
  const wrap = envelope.wraps.find((w) => w.keyID === keyID)!;
  const where = parseLocalKeyID(keyID)!;
  return admin.local.unwrap(
    { provider: "Local", namespace: where.namespace, keyName: where.name, keyID },
    wrappedBytes(wrap),
  );
}

const isBDek = (b: Buffer) => [...bDeks.values()].some((d) => d.equals(b));

async function notReady<T extends { status?: unknown }>(
  kind: "EncryptedServer" | "EncryptedDatabase",
  name: string,
): Promise<{ reason: string; message: string }> {
  const o = await waitFor(
    `${kind} ${nsA}/${name} reported`,
    () => admin.get<T>(kind, nsA, name),
    (o) => cond(o as never, "Ready") !== undefined,
    30_000,
  );
  const ready = cond(o as never, "Ready") as { status: string; reason: string; message?: string };
  expect(ready.status, `${name} must not become Ready`).toBe("False");
  return { reason: ready.reason, message: ready.message ?? "" };
}

async function noEnvelope(name: string) {
  expect(
    await codeOf(admin.core.readNamespacedSecret({ namespace: nsA, name })),
    `no envelope ${nsA}/${name}`,
  ).toBe(404);
}

beforeAll(async () => {
  admin = api(kc());
  for (const ns of [nsA, nsB, opNs]) await admin.core.createNamespace({ body: { metadata: { name: ns } } });
  const operatorUser = await installChartRbac();
  tenantKc = await tenantUser();
  tenant = api(tenantKc);
  op = await startTestOperator({
    watchNamespaces: [nsA, nsB],
    operatorNamespace: opNs,
    kubeConfig: kubeConfigForUser(operatorUser),
    wrapLocal: observe,
  });

  // B, set up by B's own admin: a customer-managed server and database on B's key, a primary,
  // and a server on the service-managed key
  await admin.local.createKey(nsB, "b-kek", { size: 2048 });
  await admin.create("KeyProtector", nsB, "b-kp", {
    provider: "Local",
    local: { secretRef: { name: "b-kek" } },
  });
  await admin.create("EncryptedServer", nsB, "b-srv", {
    protector: { type: "CustomerManaged", keyProtectorRef: { name: "b-kp" } },
  });
  await admin.create("EncryptedServer", nsB, "b-sm", { protector: { type: "ServiceManaged" } });
  await admin.create("EncryptedDatabase", nsB, "b-db", { serverRef: { name: "b-srv" } });
  await admin.create("EncryptedDatabase", nsB, "b-primary", {
    serverRef: { name: "b-srv" },
    replication: { role: "Primary" },
  });
  // A, set up by A's user: its own key (created by the operator on first use) and server
  await tenant.create("KeyProtector", nsA, "a-kp", {
    provider: "Local",
    local: { secretRef: { name: "a-kek" } },
  });
  await tenant.create("EncryptedServer", nsA, "a-srv", {
    protector: { type: "CustomerManaged", keyProtectorRef: { name: "a-kp" } },
  });

  const ready = async (kind: "EncryptedServer" | "EncryptedDatabase", ns: string, name: string) =>
    waitFor(
      `${kind} ${ns}/${name} Ready`,
      () => admin.get<EncryptedServer | EncryptedDatabase>(kind, ns, name),
      (o) => cond(o, "Ready")?.status === "True",
      60_000,
    );
  for (const [kind, ns, name] of [
    ["EncryptedServer", nsB, "b-srv"],
    ["EncryptedServer", nsB, "b-sm"],
    ["EncryptedDatabase", nsB, "b-db"],
    ["EncryptedDatabase", nsB, "b-primary"],
    ["EncryptedServer", nsA, "a-srv"],
  ] as const) {
    await ready(kind, ns, name);
  }

  // B's DEKs, unwrapped by the test (an admin), KCV-checked by the provider's caller below
  for (const s of await secretsOf(nsB)) {
    if (s.type !== "tde.dev/envelope") continue;
    const envelope = decodeEnvelopeSecret(s as { type?: string; data?: Record<string, string> });
    bDeks.set(s.metadata!.name!, await adminUnwrap(envelope, protectorWrap(envelope)!.keyID));
  }
  figures.bDeks = bDeks.size;
  expect(bDeks.size).toBe(4);
  baseline = {
    secrets: new Map((await secretsOf(nsB)).map((s) => [s.metadata!.name!, s.metadata!.resourceVersion!])),
    seen: seen.length,
  };
}, 240_000);

afterAll(async () => {
  await op?.stop();
  process.stderr.write(`[reliability] tenant isolation: ${JSON.stringify(figures)}\n`);
});

describe("R31 one tenant cannot make the operator use another tenant's key or DEK", () => {
  it("A's user has rights in A and none in B", async () => {
    expect(await codeOf(tenant.core.listNamespacedSecret({ namespace: nsA }))).toBe(200);
    expect(await codeOf(tenant.core.readNamespacedSecret({ namespace: nsB, name: "b-kek" }))).toBe(403);
    expect(await codeOf(tenant.core.listNamespacedSecret({ namespace: nsB }))).toBe(403);
    expect(await codeOf(tenant.get("KeyProtector", nsB, "b-kp"))).toBe(403);
    expect(await codeOf(tenant.create("KeyProtector", nsB, "x", { provider: "Local" }))).toBe(403);
  });

  it("a KeyProtector or server reference into B is refused by the schema, or resolves in A and is reported", async () => {
    const intoB = { name: "b-kp", namespace: nsB };
    const strict = [
      await createStrict("EncryptedServer", "encryptedservers", "x-srv-strict", {
        protector: { type: "CustomerManaged", keyProtectorRef: intoB },
      }),
      await createStrict("EncryptedDatabase", "encrypteddatabases", "x-db-strict", {
        serverRef: { name: "a-srv" },
        encryptionProtector: { type: "CustomerManaged", keyProtectorRef: intoB },
      }),
      await createStrict("EncryptedDatabase", "encrypteddatabases", "x-db-srv-strict", {
        serverRef: { name: "b-srv", namespace: nsB },
      }),
      await createStrict("EncryptedDatabase", "encrypteddatabases", "x-db-keys-strict", {
        serverRef: { name: "a-srv" },
        keys: [{ keyProtectorRef: intoB }],
      }),
      // a name cannot carry a namespace either
      await createStrict("EncryptedServer", "encryptedservers", "x-srv-slash", {
        protector: { type: "CustomerManaged", keyProtectorRef: { name: `${nsB}/b-kp` } },
      }),
    ];
    for (const code of strict) expect(code).toBeGreaterThanOrEqual(400);
    for (const code of strict) expect(code).toBeLessThan(500);
    figures.refusedBySchema += strict.length;

    // without strict validation the namespace field is dropped: the names resolve in A, where
    // no such KeyProtector or server exists, and the operator says so
    await tenant.create("EncryptedServer", nsA, "x-srv", {
      protector: { type: "CustomerManaged", keyProtectorRef: intoB },
    });
    await tenant.create("EncryptedDatabase", nsA, "x-db", {
      serverRef: { name: "a-srv" },
      encryptionProtector: { type: "CustomerManaged", keyProtectorRef: intoB },
    });
    await tenant.create("EncryptedDatabase", nsA, "x-db-srv", {
      serverRef: { name: "b-srv", namespace: nsB },
    });
    const srv = await notReady<EncryptedServer>("EncryptedServer", "x-srv");
    expect(srv.reason).toBe("KeyProtectorNotFound");
    expect(srv.message).toContain("b-kp");
    const db = await notReady<EncryptedDatabase>("EncryptedDatabase", "x-db");
    expect(db.reason).toBe("KeyProtectorNotFound");
    const dbSrv = await notReady<EncryptedDatabase>("EncryptedDatabase", "x-db-srv");
    expect(dbSrv.message).toContain("b-srv");
    expect((await admin.get<EncryptedDatabase>("EncryptedDatabase", nsA, "x-db-srv")).spec.serverRef).toEqual(
      {
        name: "b-srv",
      },
    );
    figures.refusedOnCondition += 3;
    await noEnvelope("tde-esrv-x-srv");
    await noEnvelope("tde-edb-x-db");
    await noEnvelope("tde-edb-x-db-srv");
  });

  it("a KeyProtector in A cannot point at B's Local key Secret", async () => {
    const strict = await createStrict("KeyProtector", "keyprotectors", "x-kp-strict", {
      provider: "Local",
      local: { secretRef: { name: "b-kek", namespace: nsB } },
    });
    expect(strict).toBeGreaterThanOrEqual(400);
    expect(strict).toBeLessThan(500);
    const slash = await createStrict("KeyProtector", "keyprotectors", "x-kp-slash", {
      provider: "Local",
      local: { secretRef: { name: `${nsB}/b-kek` } },
    });
    expect(slash).toBeGreaterThanOrEqual(400);
    expect(slash).toBeLessThan(500);
    figures.refusedBySchema += 2;

    // the same name in A is another key altogether (created in A on first use)
    await tenant.create("KeyProtector", nsA, "x-kp", {
      provider: "Local",
      local: { secretRef: { name: "b-kek", namespace: nsB } },
    });
    await tenant.create("EncryptedServer", nsA, "x-kek", {
      protector: { type: "CustomerManaged", keyProtectorRef: { name: "x-kp" } },
    });
    const kp = await waitFor(
      "x-kp Ready",
      () => admin.get<KeyProtector>("KeyProtector", nsA, "x-kp"),
      (o) => cond(o, "Ready")?.status === "True",
      60_000,
    );
    const bKp = await admin.get<KeyProtector>("KeyProtector", nsB, "b-kp");
    expect(kp.status?.keyID).toMatch(new RegExp(`^local://${nsA}/b-kek/`));
    expect(kp.status?.thumbprint).toBeDefined();
    expect(kp.status?.thumbprint).not.toBe(bKp.status?.thumbprint);
    const srv = await waitFor(
      "x-kek Ready",
      () => admin.get<EncryptedServer>("EncryptedServer", nsA, "x-kek"),
      (o) => cond(o, "Ready")?.status === "True",
      60_000,
    );
    const secret = await admin.core.readNamespacedSecret({
      namespace: nsA,
      name: srv.status!.envelopeSecretName!,
    });
    const envelope = decodeEnvelopeSecret(secret as { type?: string; data?: Record<string, string> });
    for (const w of envelope.wraps) expect(w.keyID).toMatch(new RegExp(`^local://${nsA}/b-kek/`));
  });

  it("a restore or a replica of B's database that B does not name is refused", async () => {
    await tenant.create("EncryptedDatabase", nsA, "x-restore", {
      serverRef: { name: "a-srv" },
      restore: { sourceRef: { namespace: nsB, name: "b-db" }, keys: [{ keyProtectorRef: { name: "a-kp" } }] },
    });
    await tenant.create("EncryptedDatabase", nsA, "x-secondary", {
      serverRef: { name: "a-srv" },
      replication: { role: "Secondary", primaryRef: { namespace: nsB, name: "b-primary" } },
    });
    expect((await notReady<EncryptedDatabase>("EncryptedDatabase", "x-restore")).reason).toBe(
      "NotAllowedBySource",
    );
    const secondary = await waitFor(
      "x-secondary refused",
      () => admin.get<EncryptedDatabase>("EncryptedDatabase", nsA, "x-secondary"),
      (o) => cond(o, "ReplicationLinked")?.status === "False",
      30_000,
    );
    expect(cond(secondary, "ReplicationLinked")?.reason).toBe("NotListedByPrimary");
    expect(cond(secondary, "Ready")?.status).not.toBe("True");
    figures.refusedOnCondition += 2;
    await noEnvelope("tde-edb-x-restore");
    await noEnvelope("tde-edb-x-secondary");
  });

  it("an envelope Secret forged in A from B's customer-managed envelope does not get B's DEK unwrapped", async () => {
    await forge("b-srv", "tde-esrv-b-srv", "x-forged");
    const srv = await notReady<EncryptedServer>("EncryptedServer", "x-forged");
    // refused by its owner binding (bound to B's server) before any unwrap
    expect(srv.reason).toBe("ForeignEnvelope");
    expect(srv.message).toContain(`${nsA}/tde-esrv-x-forged`);
    expect(srv.message).toContain(`EncryptedServer ${nsB}/b-srv`);
    await forgedUntouched("tde-esrv-x-forged", "tde-esrv-b-srv");
    await warned("x-forged");
  });

  // The service-managed key is an unwrap candidate in every namespace (unwrapCandidates): before
  // owner binding, a copy of B's service-managed envelope planted in A was unwrapped with it and
  // re-wrapped under A's own key, whose private half A can read in its Local key Secret. Now the
  // envelope names its owner, authenticated by a tag only the DEK can make (R31).
  it("an envelope Secret forged in A from B's service-managed envelope does not get B's DEK unwrapped", async () => {
    await forge("b-sm", "tde-esrv-b-sm", "x-forged-sm");
    const srv = await notReady<EncryptedServer>("EncryptedServer", "x-forged-sm");
    expect(srv.reason).toBe("ForeignEnvelope");
    expect(srv.message).toContain(`${nsA}/tde-esrv-x-forged-sm`);
    await forgedUntouched("tde-esrv-x-forged-sm", "tde-esrv-b-sm");
    await warned("x-forged-sm");
  });

  it("nor when the forged copy names A's server as its owner, or carries no owner binding at all", async () => {
    // relabelled in clear: the operator unwraps it to check the tag, which was made for B's server
    const before = seen.length;
    await forge("b-sm", "tde-esrv-b-sm", "x-relabelled", (doc) => {
      Object.assign(doc.ownerBinding as object, { namespace: nsA, name: "x-relabelled" });
    });
    expect((await notReady<EncryptedServer>("EncryptedServer", "x-relabelled")).reason).toBe(
      "ForeignEnvelope",
    );
    await forgedUntouched("tde-esrv-x-relabelled", "tde-esrv-b-sm");
    // that check took exactly one unwrap of B's DEK (under the service-managed key), and no wrap;
    // the refusal is remembered for this Secret version, so reconciles do not repeat it
    await new Promise((r) => setTimeout(r, 3_000));
    const ofB = seen
      .map((c, i) => ({ c, i }))
      .slice(before)
      .filter(({ c }) => isBDek(c.plain));
    expect(ofB.map(({ c }) => `${c.op} under ${c.ref.namespace}/${c.ref.keyName}`)).toEqual([
      `unwrap under ${opNs}/tde-service-managed-key`,
    ]);
    for (const { i } of ofB) tagChecks.add(i);
    figures.tagCheckUnwraps = tagChecks.size;
    // stripped of its binding (as an envelope written before owner binding would be): A's server
    // never recorded that DEK, so it is refused before any unwrap
    await forge("b-sm", "tde-esrv-b-sm", "x-stripped", (doc) => {
      delete doc.ownerBinding;
    });
    expect((await notReady<EncryptedServer>("EncryptedServer", "x-stripped")).reason).toBe("ForeignEnvelope");
    await forgedUntouched("tde-esrv-x-stripped", "tde-esrv-b-sm");
  });

  it("nothing of B was used on A's behalf", async () => {
    // let any late work happen before the final checks
    await new Promise((r) => setTimeout(r, 3_000));
    const sinceBaseline = seen.slice(baseline.seen);
    expect(sinceBaseline.length, "the provider was observed doing A's work").toBeGreaterThan(0);
    expect(
      sinceBaseline
        .map((c, i) => ({ c, i: baseline.seen + i }))
        .filter(({ c, i }) => isBDek(c.plain) && !tagChecks.has(i))
        .map(({ c }) => `${c.op} under ${c.ref.namespace}/${c.ref.keyName}`),
      "a DEK of B was wrapped or unwrapped after B had converged (beyond the one owner tag check)",
    ).toEqual([]);
    // no Secret of B was created, changed or deleted
    const now = new Map((await secretsOf(nsB)).map((s) => [s.metadata!.name!, s.metadata!.resourceVersion!]));
    expect(now).toEqual(baseline.secrets);
    // no wrap under a key of A opens to a DEK of B
    for (const s of await secretsOf(nsA)) {
      if (s.type !== "tde.dev/envelope") continue;
      const envelope = decodeEnvelopeSecret(s as { type?: string; data?: Record<string, string> });
      for (const w of envelope.wraps) {
        if (!w.keyID.startsWith(`local://${nsA}/`)) continue;
        const dek = await adminUnwrap(envelope, w.keyID);
        expect(isBDek(dek), `${s.metadata?.name} under ${w.keyID}`).toBe(false);
        figures.aWrapsChecked++;
      }
    }
    expect(figures.aWrapsChecked).toBeGreaterThan(0);
    // the chart's RBAC was enough for everything the operator did
    expect(op.refused).toEqual([]);
  });
});

/**
 * A's user plants, in A, a copy of one of B's envelope Secrets (as if its wrapped bytes had leaked:
 * they are ciphertext), named and labelled as the envelope of A's new server `name`, then creates
 * that server on A's own key: a re-wrap would hand B's DEK to A's key.
 */
async function forge(
  bOwner: string,
  bSecret: string,
  name: string,
  edit?: (document: Record<string, unknown>) => void,
): Promise<void> {
  const source = await admin.core.readNamespacedSecret({ namespace: nsB, name: bSecret });
  expect(source.metadata?.labels?.["tde.dev/owner-name"]).toBe(bOwner);
  let data = source.data;
  if (edit) {
    const document = JSON.parse(Buffer.from(data!["envelope.json"]!, "base64").toString("utf8"));
    edit(document);
    data = { "envelope.json": Buffer.from(JSON.stringify(document)).toString("base64") };
  }
  await tenant.core.createNamespacedSecret({
    namespace: nsA,
    body: {
      metadata: {
        name: `tde-esrv-${name}`,
        labels: {
          "tde.dev/envelope": "true",
          "tde.dev/owner-kind": "EncryptedServer",
          "tde.dev/owner-name": name,
        },
      },
      type: source.type,
      data,
    },
  });
  await tenant.create("EncryptedServer", nsA, name, {
    protector: { type: "CustomerManaged", keyProtectorRef: { name: "a-kp" } },
  });
  figures.forged++;
}

/** A Warning event on A's server says why its envelope was refused. */
async function warned(name: string): Promise<void> {
  await waitFor(
    `a ForeignEnvelope Warning on ${name}`,
    async () =>
      (await admin.core.listNamespacedEvent({ namespace: nsA })).items.filter(
        (e) => e.involvedObject.name === name && e.type === "Warning" && e.reason === "ForeignEnvelope",
      ),
    (events) => events.length > 0,
    30_000,
  );
}

/** The forged Secret still holds only the wraps copied from B: nothing was added under A's key. */
async function forgedUntouched(forged: string, bSecret: string): Promise<void> {
  const read = async (ns: string, name: string) =>
    decodeEnvelopeSecret(
      (await admin.core.readNamespacedSecret({ namespace: ns, name })) as {
        type?: string;
        data?: Record<string, string>;
      },
    );
  const copy = await read(nsA, forged);
  const original = await read(nsB, bSecret);
  expect(copy.wraps.map((w) => w.keyID)).toEqual(original.wraps.map((w) => w.keyID));
}
