import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { main } from "../../../src/cli/main.js";
import { createTestNamespace, kubectl, testKubeConfig } from "../../harness/kube.js";
import { installCrds, repoRoot } from "../api/install.js";

const kc = testKubeConfig();
const A = "a1".repeat(32);
const B = "b2".repeat(32);
const C = "c3".repeat(32);
const D = "d4".repeat(32);
const T = "2025-01-01T00:00:00Z";
let ns = "";
let other = "";

const cond = (type: string, status: string, reason: string, message = "") => ({
  type,
  status,
  reason,
  message,
  lastTransitionTime: T,
  observedGeneration: 1,
});

async function create(namespace: string, object: object): Promise<void> {
  await kubectl(["create", "-n", namespace, "-f", "-"], JSON.stringify(object));
}

/** Writes status the way the operator does: through the status subresource. */
async function setStatus(namespace: string, resource: string, name: string, status: object): Promise<void> {
  await kubectl([
    "patch",
    "-n",
    namespace,
    resource,
    name,
    "--subresource=status",
    "--type=merge",
    "-p",
    JSON.stringify({ status }),
  ]);
}

async function getJson(namespace: string, resource: string, name: string) {
  const { stdout } = await kubectl(["get", "-n", namespace, resource, name, "-o", "json"]);
  return JSON.parse(stdout) as { spec: Record<string, unknown>; status?: Record<string, unknown> };
}

/** Runs kubectl-tde in this process against the test API server. */
async function tde(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { out: (t) => out.push(t), err: (t) => err.push(t) }, kc);
  return { code, out: out.join(""), err: err.join("") };
}

const kpObject = (name: string) => ({
  apiVersion: "tde.dev/v1alpha1",
  kind: "KeyProtector",
  metadata: { name },
  spec: { provider: "Local", local: { secretRef: { name: `${name}-kek` } } },
});
const kpStatus = (thumbprint: string, accessible = true) => ({
  keyID: `local://${thumbprint.slice(0, 6)}/1`,
  thumbprint,
  thumbprintShort: thumbprint.slice(0, 12),
  observedGeneration: 1,
  conditions: accessible
    ? [
        cond("Ready", "True", "Ready", "the key is usable"),
        cond("Accessible", "True", "Accessible", "probe ok"),
      ]
    : [
        cond("Ready", "False", "KeyNotAccessible", "enable the key"),
        cond("Accessible", "False", "KeyDisabled", "the key is disabled: enable it"),
      ],
});
const protectorStatus = (kp: string | undefined, thumbprint: string) => ({
  type: kp ? "CustomerManaged" : "ServiceManaged",
  ...(kp ? { keyProtectorName: kp } : {}),
  keyID: `local://${thumbprint.slice(0, 6)}/1`,
  thumbprint,
  thumbprintShort: thumbprint.slice(0, 12),
});

beforeAll(async () => {
  await installCrds();
  ns = await createTestNamespace(kc, "cli");
  other = await createTestNamespace(kc, "cli-other");

  for (const name of ["shop-key", "invoices-key", "escrow-key", "next-key"]) await create(ns, kpObject(name));
  await setStatus(ns, "keyprotectors", "shop-key", kpStatus(A));
  await setStatus(ns, "keyprotectors", "invoices-key", kpStatus(B, false));
  await setStatus(ns, "keyprotectors", "escrow-key", kpStatus(C));

  // A customer-managed server and a service-managed one.
  await create(ns, {
    apiVersion: "tde.dev/v1alpha1",
    kind: "EncryptedServer",
    metadata: { name: "shop-db" },
    spec: { protector: { type: "CustomerManaged", keyProtectorRef: { name: "shop-key" } } },
  });
  await setStatus(ns, "encryptedservers", "shop-db", {
    state: "Available",
    observedGeneration: 1,
    protector: protectorStatus("shop-key", A),
    conditions: [
      cond("Ready", "True", "Available", "ok"),
      cond("KeyAccessible", "True", "KeyAccessible", "ok"),
    ],
  });
  await create(ns, {
    apiVersion: "tde.dev/v1alpha1",
    kind: "EncryptedServer",
    metadata: { name: "lab-db" },
    spec: {},
  });
  await setStatus(ns, "encryptedservers", "lab-db", {
    state: "Inaccessible",
    observedGeneration: 1,
    protector: protectorStatus(undefined, D),
    conditions: [
      cond(
        "Ready",
        "False",
        "Inaccessible",
        "key access lost: restore it, then kubectl tde revalidate lab-db",
      ),
      cond("KeyAccessible", "False", "VaultUnreachable", "the vault did not answer"),
    ],
  });

  // orders inherits shop-db's key; invoices has its own plus an escrow key and a history.
  await create(ns, {
    apiVersion: "tde.dev/v1alpha1",
    kind: "EncryptedDatabase",
    metadata: { name: "orders" },
    spec: { serverRef: { name: "shop-db" } },
  });
  await setStatus(ns, "encrypteddatabases", "orders", {
    state: "Available",
    observedGeneration: 1,
    effectiveProtector: { source: "Server", ...protectorStatus("shop-key", A) },
    keyList: [
      { keyID: "local://a/1", thumbprint: A, role: "protector", keyProtectorName: "shop-key", since: T },
    ],
    conditions: [
      cond("Ready", "True", "Available", "ok"),
      cond("KeyAccessible", "True", "KeyAccessible", "ok"),
    ],
  });
  await create(ns, {
    apiVersion: "tde.dev/v1alpha1",
    kind: "EncryptedDatabase",
    metadata: { name: "invoices" },
    spec: {
      serverRef: { name: "shop-db" },
      encryptionProtector: { type: "CustomerManaged", keyProtectorRef: { name: "invoices-key" } },
      keys: [{ keyProtectorRef: { name: "escrow-key" } }],
    },
  });
  await setStatus(ns, "encrypteddatabases", "invoices", {
    state: "Available",
    observedGeneration: 1,
    effectiveProtector: { source: "Database", ...protectorStatus("invoices-key", B) },
    keyList: [
      {
        keyID: "local://a/1",
        thumbprint: A,
        role: "protector",
        keyProtectorName: "shop-key",
        since: T,
        until: "2025-02-01T00:00:00Z",
      },
      {
        keyID: "local://b/1",
        thumbprint: B,
        role: "protector",
        keyProtectorName: "invoices-key",
        since: "2025-02-01T00:00:00Z",
      },
      {
        keyID: "local://c/1",
        thumbprint: C,
        role: "additional",
        keyProtectorName: "escrow-key",
        since: "2025-01-15T00:00:00Z",
      },
    ],
    conditions: [
      cond("Ready", "True", "Available", "ok"),
      cond("KeyAccessible", "True", "KeyAccessible", "ok"),
    ],
  });
  // A database on the service-managed server, with its own key: it may be reverted (R15).
  await create(ns, kpObject("lab-key"));
  await create(ns, {
    apiVersion: "tde.dev/v1alpha1",
    kind: "EncryptedDatabase",
    metadata: { name: "lab" },
    spec: {
      serverRef: { name: "lab-db" },
      encryptionProtector: { type: "CustomerManaged", keyProtectorRef: { name: "lab-key" } },
    },
  });

  // The same key material as shop-key, imported under another name in another namespace (R3).
  await create(other, kpObject("eu-copy"));
  await setStatus(other, "keyprotectors", "eu-copy", kpStatus(A));
  await create(other, {
    apiVersion: "tde.dev/v1alpha1",
    kind: "EncryptedServer",
    metadata: { name: "eu-db" },
    spec: { protector: { type: "CustomerManaged", keyProtectorRef: { name: "eu-copy" } } },
  });
  await setStatus(other, "encryptedservers", "eu-db", {
    state: "Available",
    protector: protectorStatus("eu-copy", A),
    conditions: [cond("Ready", "True", "Available", "ok")],
  });
});

describe("R30 kubectl-tde against the real API server", () => {
  it("status: a table across the three kinds", async () => {
    const { code, out } = await tde("status", "-n", ns);
    expect(code).toBe(0);
    const lines = out.trim().split("\n");
    expect(lines[0]).toMatch(
      /^KIND\s+NAMESPACE\s+NAME\s+STATE\s+PROTECTOR\s+THUMBPRINT\s+KEY-ACCESS\s+READY$/,
    );
    expect(lines).toHaveLength(1 + 5 + 2 + 3);
    expect(out).toMatch(
      new RegExp(
        `kp\\s+${ns}\\s+invoices-key\\s+NotAccessible\\s+Local invoices-key-kek\\s+b2b2b2b2b2b2\\s+False \\(KeyDisabled\\)\\s+False`,
      ),
    );
    expect(out).toMatch(
      /esrv\s+\S+\s+lab-db\s+Inaccessible\s+Server\/ServiceManaged\s+d4d4d4d4d4d4\s+False \(VaultUnreachable\)\s+False/,
    );
    expect(out).toMatch(
      /edb\s+\S+\s+orders\s+Available\s+Server\/CustomerManaged shop-key\s+a1a1a1a1a1a1\s+True\s+True/,
    );
    expect(out).toMatch(
      /edb\s+\S+\s+lab\s+Pending\s+Database\/CustomerManaged lab-key\s+-\s+Unknown\s+Unknown/,
    );
    expect(out).not.toContain("eu-db");
  });

  it("status -A -o json: every namespace, as data", async () => {
    const { code, out } = await tde("status", "-A", "-o", "json");
    expect(code).toBe(0);
    const rows = (JSON.parse(out) as { namespace: string; name: string; kind: string }[]).filter((r) =>
      [ns, other].includes(r.namespace),
    );
    expect(rows.filter((r) => r.namespace === other).map((r) => r.name)).toEqual(["eu-copy", "eu-db"]);
    expect(rows).toHaveLength(12);
  });

  it("R18 keys: all, --filter current, --at TIME, -o yaml", async () => {
    const all = await tde("keys", "invoices", "-n", ns);
    expect(all.out.trim().split("\n")).toHaveLength(4);
    expect(all.out).toMatch(
      /protector\s+shop-key\s+a1a1a1a1a1a1\s+2025-01-01T00:00:00Z\s+2025-02-01T00:00:00Z\s+local:\/\/a\/1/,
    );
    const current = await tde("keys", "invoices", "-n", ns, "--filter", "current");
    expect(current.out).not.toContain("shop-key");
    expect(current.out).toMatch(/protector\s+invoices-key/);
    expect(current.out).toMatch(/additional\s+escrow-key/);
    const then = await tde("keys", "edb/invoices", "-n", ns, "--at", "2025-01-10T00:00:00Z", "-o", "yaml");
    expect(then.out).toContain("keyProtectorName: shop-key");
    expect(then.out).not.toContain("escrow-key");
    const before = await tde("keys", "invoices", "-n", ns, "--at", "2024-06-01T00:00:00Z");
    expect(before.out).toBe("encrypteddatabase invoices has no keys in use at 2024-06-01T00:00:00.000Z.\n");
    const missing = await tde("keys", "nope", "-n", ns);
    expect(missing).toMatchObject({
      code: 1,
      err: `error: encrypteddatabase "nope" not found in namespace ${ns}\n`,
    });
  });

  it("impact: every server and database that uses a KeyProtector, and how", async () => {
    const { code, out } = await tde("impact", "shop-key", "-n", ns);
    expect(code).toBe(0);
    expect(out).toMatch(/esrv\s+\S+\s+shop-db\s+Available\s+protector$/m);
    expect(out).toMatch(/edb\s+\S+\s+orders\s+Available\s+protector \(inherited from server shop-db\)$/m);
    expect(out).toMatch(/edb\s+\S+\s+invoices\s+Available\s+key history until 2025-02-01T00:00:00Z/m);
    expect(out).not.toMatch(/\blab\b/);
    const escrow = await tde("impact", "escrow-key", "-n", ns, "-o", "json");
    const data = JSON.parse(escrow.out) as { dependants: { name: string; uses: string[] }[] };
    expect(data.dependants).toEqual([
      expect.objectContaining({ name: "invoices", uses: ["additional key"] }),
    ]);
  });

  it("impact -A: the same key material in another namespace, found by thumbprint (R3)", async () => {
    const { out } = await tde("impact", "shop-key", "-A");
    expect(out).toMatch(
      new RegExp(`esrv\\s+${other}\\s+eu-db\\s+Available\\s+protector \\(same key material\\)`),
    );
    const nowhere = await tde("impact", "no-such-key", "-A");
    expect(nowhere).toMatchObject({
      code: 1,
      err: 'error: keyprotector "no-such-key" not found in any namespace\n',
    });
  });

  it("rotate: patches the database's or the server's protector reference", async () => {
    const db = await tde("rotate", "orders", "--to", "next-key", "-n", ns);
    expect(db.code).toBe(0);
    expect(db.out).toContain("encrypteddatabase/orders protector set to keyprotector next-key");
    expect((await getJson(ns, "edb", "orders")).spec.encryptionProtector).toEqual({
      type: "CustomerManaged",
      keyProtectorRef: { name: "next-key" },
    });
    const srv = await tde("rotate", "esrv/shop-db", "--to", "next-key", "-n", ns, "-o", "json");
    expect(JSON.parse(srv.out).spec.protector).toEqual({
      type: "CustomerManaged",
      keyProtectorRef: { name: "next-key" },
    });
    const missing = await tde("rotate", "orders", "--to", "ghost-key", "-n", ns);
    expect(missing).toMatchObject({
      code: 1,
      err: `error: keyprotector "ghost-key" not found in namespace ${ns}\n`,
    });
    const extra = await tde("rotate", "invoices", "--to", "escrow-key", "-n", ns);
    expect(extra.code).toBe(1);
    expect(extra.err).toContain("remove it from spec.keys first");
  });

  it("R11 revalidate: a new revalidationToken", async () => {
    const before = Date.now();
    const { code, out } = await tde("revalidate", "lab-db", "-n", ns);
    expect(code).toBe(0);
    expect(out).toContain("encryptedserver/lab-db revalidation requested");
    const token = String((await getJson(ns, "esrv", "lab-db")).spec.revalidationToken);
    expect(Date.parse(token)).toBeGreaterThanOrEqual(before - 1000);
    const db = await tde("revalidate", "edb/orders", "-n", ns);
    expect(db).toMatchObject({ code: 1 });
    expect(db.err).toContain("this command takes a encryptedserver");
  });

  it("R15 revert: refused on a customer-managed server, done on the service-managed one", async () => {
    const refused = await tde("revert", "invoices", "-n", ns);
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/not reverted: RevertToServerKeyNotAllowed: R15/);
    expect((await getJson(ns, "edb", "invoices")).spec.encryptionProtector).toBeDefined();
    const done = await tde("revert", "lab", "-n", ns);
    expect(done.code).toBe(0);
    expect(done.out).toContain(
      "encrypteddatabase/lab reverted to the server's protector (encryptedserver lab-db)",
    );
    expect((await getJson(ns, "edb", "lab")).spec.encryptionProtector).toBeUndefined();
  });

  it("runs as a program: npx tsx src/cli/main.ts --kubeconfig ... status", async () => {
    const run = promisify(execFile);
    const { stdout } = await run(
      join(repoRoot, "node_modules", ".bin", "tsx"),
      [
        join(repoRoot, "src", "cli", "main.ts"),
        "--kubeconfig",
        inject("kubeconfigPath"),
        "status",
        "-n",
        other,
      ],
      { cwd: repoRoot },
    );
    expect(stdout).toMatch(/esrv\s+\S+\s+eu-db\s+Available/);
    const bad = await run(
      join(repoRoot, "node_modules", ".bin", "tsx"),
      [join(repoRoot, "src", "cli", "main.ts"), "nope"],
      {
        cwd: repoRoot,
      },
    ).catch((err: { code: number; stderr: string }) => err);
    expect(bad).toMatchObject({ code: 2 });
    expect((bad as { stderr: string }).stderr).toContain('unknown command "nope"');
  });
});
