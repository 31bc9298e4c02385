import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { kubectl } from "../../harness/kube.js";
import { startTestOperator, type TestOperator } from "../../harness/operator.js";
import {
  api,
  cond,
  type EncryptedDatabase,
  type EncryptedServer,
  kc,
  readEnvelope,
  suffix,
  waitFor,
} from "../controllers/helpers.js";
import { kubeConfigForUser } from "../kms/users.js";

const repo = join(import.meta.dirname, "..", "..", "..");
const id = suffix();
const ns = `rbac-${id}`;
const operatorNamespace = "tde-system"; // where the shipped manifests bind the operator's Role
let op: TestOperator;

/** The RBAC objects of `kubectl apply -k deploy/overlays/default`, applied for real. */
async function applyShippedRbac() {
  const { stdout } = await kubectl(["kustomize", join(repo, "deploy/overlays/default")]);
  const wanted = new Set([
    "Namespace",
    "ServiceAccount",
    "ClusterRole",
    "ClusterRoleBinding",
    "Role",
    "RoleBinding",
  ]);
  const docs = parseAllDocuments(stdout)
    .map((d) => d.toJS() as { kind?: string })
    .filter((d) => d?.kind && wanted.has(d.kind));
  expect(docs.map((d) => d.kind)).toEqual(
    expect.arrayContaining(["ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"]),
  );
  await kubectl(
    ["apply", "--server-side", "--force-conflicts", "-f", "-"],
    docs.map((d) => JSON.stringify(d)).join("\n"),
  );
}

beforeAll(async () => {
  await applyShippedRbac();
  op = await startTestOperator({
    watchNamespaces: [ns],
    operatorNamespace,
    // the identity the ServiceAccount token carries: RBAC binds ServiceAccount subjects by this name
    kubeConfig: kubeConfigForUser(`system:serviceaccount:${operatorNamespace}:tde-operator`),
  });
}, 120_000);

afterAll(async () => {
  await op?.stop();
});

describe("the operator under the shipped ServiceAccount's RBAC (R30)", () => {
  it("creates, rotates, enforces, revalidates and shreds with only the granted verbs", async () => {
    const a = api(kc());
    await a.create("KeyProtector", ns, "rbac-key", {
      provider: "Local",
      local: { secretRef: { name: "rbac-kek" } },
    });
    await a.create("EncryptedServer", ns, "srv", {
      protector: { type: "CustomerManaged", keyProtectorRef: { name: "rbac-key" } },
      workloadRef: { kind: "StatefulSet", name: "srv" },
      keyAccessGracePeriod: "5s",
      revalidation: "Automatic",
    });
    await a.create("EncryptedDatabase", ns, "db", { serverRef: { name: "srv" }, deletionPolicy: "Shred" });
    await kubectl(
      ["apply", "-n", ns, "-f", "-"],
      JSON.stringify({
        apiVersion: "apps/v1",
        kind: "StatefulSet",
        metadata: { name: "srv" },
        spec: {
          replicas: 2,
          selector: { matchLabels: { app: "srv" } },
          serviceName: "srv",
          template: {
            metadata: { labels: { app: "srv" } },
            spec: { containers: [{ name: "db", image: "mariadb" }] },
          },
        },
      }),
    );
    const db = await waitFor(
      "db Ready",
      () => a.get<EncryptedDatabase>("EncryptedDatabase", ns, "db"),
      (o) => cond(o, "Ready")?.status === "True",
      60_000,
    );
    // a new key version: re-wrap (secrets update)
    const next = await a.local.rotateKey(ns, "rbac-kek", { size: 3072 });
    await waitFor(
      "db re-wrapped",
      () => a.get<EncryptedDatabase>("EncryptedDatabase", ns, "db"),
      (o) => o.status?.effectiveProtector?.keyID === next.keyID,
      60_000,
    );
    expect((await readEnvelope(a, ns, db.status!.envelopeSecretName!)).dekID).toBe(db.status?.dekID);
    // key loss past the grace period: the StatefulSet is scaled to zero (statefulsets patch)
    const firstVersion = db.status!.effectiveProtector!.keyID.split("/").pop()!;
    await a.local.setEnabled(ns, "rbac-kek", false, firstVersion);
    await a.local.setEnabled(ns, "rbac-kek", false);
    await waitFor(
      "server Inaccessible",
      () => a.get<EncryptedServer>("EncryptedServer", ns, "srv"),
      (o) => o.status?.state === "Inaccessible",
      60_000,
    );
    const scaled = JSON.parse((await kubectl(["get", "statefulset", "srv", "-n", ns, "-o", "json"])).stdout);
    expect(scaled.spec.replicas).toBe(0);
    await a.local.setEnabled(ns, "rbac-kek", true);
    await a.local.setEnabled(ns, "rbac-kek", true, firstVersion);
    await waitFor(
      "server back",
      () => a.get<EncryptedServer>("EncryptedServer", ns, "srv"),
      (o) => o.status?.state === "Available",
      60_000,
    );
    // Shred on deletion (secrets delete, finalizer update)
    await a.delete("EncryptedDatabase", ns, "db");
    await waitFor(
      "envelope shredded",
      async () => {
        try {
          await a.core.readNamespacedSecret({ namespace: ns, name: db.status!.envelopeSecretName! });
          return false;
        } catch (error) {
          return (error as { code?: number }).code === 404;
        }
      },
      (gone) => gone,
      60_000,
    );
    // nothing the operator asked for was refused
    expect(op.counts.writes.filter((w) => w.code === 403)).toEqual([]);
  }, 180_000);
});
