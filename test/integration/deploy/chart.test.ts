import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { ensureHelm, helm } from "../../harness/helm.js";
import { createTestNamespace, kubectl, testKubeConfig } from "../../harness/kube.js";
import { installCrds } from "../api/install.js";
import {
  dryRunApply,
  find,
  grants,
  installMonitoringCrds,
  type Manifest,
  NAMESPACED_GRANTS,
  type PolicyRule,
  parseManifests,
  repoRoot,
  SELF_GRANTS,
} from "./support.js";

const chart = join(repoRoot, "charts", "tde-operator");
const kc = testKubeConfig();
const everything = [
  "serviceMonitor.enabled=true",
  "prometheusRule.enabled=true",
  "grafanaDashboard.enabled=true",
  "azureWorkloadIdentity.enabled=true",
  "azureWorkloadIdentity.clientID=11111111-2222-3333-4444-555555555555",
  "azureWorkloadIdentity.tenantID=66666666-7777-8888-9999-000000000000",
  "azure.disableChallengeResourceVerification=true",
  "azure.caBundle.configMapName=corp-ca",
  "azure.authorityHost=https://login.microsoftonline.us",
  "azure.tokenExchangeAudience=api://AzureADTokenExchangeUSGov",
  "azure.httpsProxy=http://proxy.corp:3128",
  "azure.noProxy=.svc\\,.cluster.local",
  "operator.serviceManagedKey=platform-kek",
];

async function render(release: string, namespace: string, set: string[] = []): Promise<Manifest[]> {
  const args = ["template", release, chart, "--namespace", namespace];
  for (const s of set) args.push("--set", s);
  const { stdout } = await helm(args);
  return parseManifests(stdout);
}

beforeAll(async () => {
  ensureHelm((line) => process.stderr.write(`[helm] ${line}\n`));
  await installCrds();
  await installMonitoringCrds();
}, 900_000);

describe("R30 the Helm chart", () => {
  it("passes helm lint --strict with the defaults and with every option on", async () => {
    const plain = await helm(["lint", "--strict", chart]);
    expect(plain.stdout).toContain("0 chart(s) failed");
    const args = ["lint", "--strict", chart];
    for (const s of everything) args.push("--set", s);
    const full = await helm(args);
    expect(full.stdout).toContain("0 chart(s) failed");
  });

  it("refuses values its schema does not allow", async () => {
    const bad = await helm(["template", "x", chart, "--set", "operator.logLevel=loud"]).then(
      () => "",
      (err: { stderr?: string }) => err.stderr ?? String(err),
    );
    expect(bad).toMatch(/logLevel/);
    const typo = await helm(["template", "x", chart, "--set", "replicas=3"]).then(
      () => "",
      (err: { stderr?: string }) => err.stderr ?? String(err),
    );
    expect(typo).toMatch(/replicas/);
  });

  it("renders objects the real API server accepts (server-side dry run), CRDs included", async () => {
    const ns = await createTestNamespace(kc, "chart");
    const args = ["template", "tde", chart, "--namespace", ns, "--include-crds"];
    for (const s of everything) args.push("--set", s);
    const manifests = parseManifests((await helm(args)).stdout);
    const kinds = manifests.map((m) => m.kind).sort();
    expect(kinds).toEqual(
      [
        "ClusterRole",
        "ClusterRoleBinding",
        "ConfigMap",
        "CustomResourceDefinition",
        "CustomResourceDefinition",
        "CustomResourceDefinition",
        "Deployment",
        "PodDisruptionBudget",
        "PrometheusRule",
        "Role",
        "RoleBinding",
        "Service",
        "ServiceAccount",
        "ServiceMonitor",
      ].sort(),
    );
    const out = await dryRunApply(manifests);
    expect(out).toContain("deployment.apps/tde-tde-operator serverside-applied (server dry run)");
    expect(out).toContain("prometheusrule.monitoring.coreos.com/tde-tde-operator serverside-applied");
  });

  it("grants the operator nothing beyond the verbs it uses (ClusterRole and its own-namespace Role)", async () => {
    const manifests = await render("tde", "tde-system");
    const clusterRole = find(manifests, "ClusterRole");
    expect(grants(clusterRole.rules as PolicyRule[])).toEqual(NAMESPACED_GRANTS);
    for (const rule of clusterRole.rules as PolicyRule[]) {
      expect(rule.resourceNames).toBeUndefined();
      expect(rule.nonResourceURLs).toBeUndefined();
      expect([...(rule.apiGroups ?? []), ...(rule.resources ?? []), ...rule.verbs]).not.toContain("*");
    }
    const self = find(manifests, "Role", "tde-tde-operator-self");
    expect(self.metadata.namespace).toBe("tde-system");
    expect(grants(self.rules as PolicyRule[])).toEqual(SELF_GRANTS);
    const binding = find(manifests, "ClusterRoleBinding");
    expect(binding.subjects).toEqual([
      { kind: "ServiceAccount", name: "tde-tde-operator", namespace: "tde-system" },
    ]);
  });

  it("enforcement.scaleTargets adds get and patch on each listed kind and its /scale, and nothing else (R10)", async () => {
    const manifests = await render("tde", "tde-system", [
      "enforcement.scaleTargets[0].apiGroup=postgresql.cnpg.io",
      "enforcement.scaleTargets[0].resources={clusters}",
      "enforcement.scaleTargets[1].apiGroup=k8s.mariadb.com",
      "enforcement.scaleTargets[1].resources={mariadbs}",
    ]);
    expect(grants(find(manifests, "ClusterRole").rules as PolicyRule[])).toEqual(
      [
        ...NAMESPACED_GRANTS,
        ...["clusters", "clusters/scale"].flatMap((r) => [
          `postgresql.cnpg.io/${r}:get`,
          `postgresql.cnpg.io/${r}:patch`,
        ]),
        ...["mariadbs", "mariadbs/scale"].flatMap((r) => [
          `k8s.mariadb.com/${r}:get`,
          `k8s.mariadb.com/${r}:patch`,
        ]),
      ].sort(),
    );
    const bad = await helm(["template", "x", chart, "--set", "enforcement.scaleTargets[0].apiGroup=x"]).then(
      () => "",
      (err: { stderr?: string }) => err.stderr ?? String(err),
    );
    expect(bad).toMatch(/resources/);
  });

  it("with watchNamespaces grants the same rules through a Role per namespace and no ClusterRole", async () => {
    const manifests = await render("tde", "tde-system", ["operator.watchNamespaces={shop,billing}"]);
    expect(manifests.filter((m) => m.kind === "ClusterRole")).toEqual([]);
    const roles = manifests.filter((m) => m.kind === "Role" && m.metadata.name === "tde-tde-operator");
    expect(roles.map((r) => r.metadata.namespace).sort()).toEqual(["billing", "shop"]);
    for (const role of roles) expect(grants(role.rules as PolicyRule[])).toEqual(NAMESPACED_GRANTS);
    // The service-managed key lives in the operator's namespace (R7): its KeyProtector and Secret;
    // the operator's informers cover that namespace too, so they list and watch servers and databases.
    const self = find(manifests, "Role", "tde-tde-operator-self");
    expect(grants(self.rules as PolicyRule[])).toEqual(
      [
        ...new Set([
          ...SELF_GRANTS,
          ...NAMESPACED_GRANTS.filter((g) => /^tde\.dev\/keyprotectors(\/status)?:/.test(g)),
          ...NAMESPACED_GRANTS.filter((g) => /^tde\.dev\/encrypted(servers|databases):(list|watch)$/.test(g)),
          ...NAMESPACED_GRANTS.filter((g) => /^core\/(secrets|events):/.test(g)),
        ]),
      ].sort(),
    );
    const deployment = find(manifests, "Deployment");
    expect(JSON.stringify(deployment)).toContain("--watch-namespaces=shop,billing");
  });

  it("the RBAC it grants is what the API server authorizes for the ServiceAccount, and no more", async () => {
    const ns = await createTestNamespace(kc, "rbac");
    const release = `r${ns.slice(-6)}`;
    const manifests = (await render(release, ns)).filter((m) =>
      ["ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"].includes(m.kind),
    );
    await kubectl(["apply", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "List", items: manifests }));
    const as = `system:serviceaccount:${ns}:${release}-tde-operator`;
    const can = async (...args: string[]) => {
      const { stdout } = await kubectl(["auth", "can-i", "--as", as, ...args]).catch(
        (err: { stdout?: string }) => ({ stdout: err.stdout ?? "no" }),
      );
      return stdout.trim();
    };
    expect(await can("watch", "encrypteddatabases.tde.dev", "-A")).toBe("yes");
    expect(await can("patch", "encryptedservers.tde.dev", "--subresource=status", "-n", "other")).toBe("yes");
    expect(await can("delete", "secrets", "-n", "other")).toBe("yes");
    expect(await can("patch", "statefulsets.apps", "-n", "other")).toBe("yes");
    expect(await can("create", "networkpolicies.networking.k8s.io", "-n", "other")).toBe("yes");
    expect(await can("update", "leases.coordination.k8s.io", "-n", ns)).toBe("yes");
    // Never: deleting our kinds, touching leases elsewhere, pods, RBAC or scaling through delete.
    expect(await can("delete", "encryptedservers.tde.dev", "-n", "other")).toBe("no");
    expect(await can("create", "keyprotectors.tde.dev", "-n", "other")).toBe("no");
    expect(await can("create", "keyprotectors.tde.dev", "-n", ns)).toBe("yes");
    expect(await can("update", "leases.coordination.k8s.io", "-n", "other")).toBe("no");
    expect(await can("delete", "statefulsets.apps", "-n", "other")).toBe("no");
    expect(await can("list", "pods", "-n", "other")).toBe("no");
    expect(await can("create", "clusterroles.rbac.authorization.k8s.io")).toBe("no");
    expect(await can("update", "networkpolicies.networking.k8s.io", "-n", "other")).toBe("no");
    await kubectl([
      "delete",
      "clusterrole,clusterrolebinding",
      `${release}-tde-operator`,
      "--ignore-not-found",
    ]);
  });

  it("runs the operator non-root, read-only, with no capabilities, under the restricted Pod Security Standard", async () => {
    const manifests = await render("tde", "tde-system");
    const deployment = find(manifests, "Deployment") as Manifest & {
      spec: { replicas: number; template: { metadata: Record<string, unknown>; spec: PodSpec } };
    };
    expect(deployment.spec.replicas).toBe(2);
    const pod = deployment.spec.template.spec;
    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      seccompProfile: { type: "RuntimeDefault" },
    });
    const [container] = pod.containers;
    expect(container?.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ["ALL"] },
    });
    expect(container?.livenessProbe?.httpGet?.path).toBe("/healthz");
    expect(container?.readinessProbe?.httpGet?.path).toBe("/readyz");
    expect(container?.args).toEqual(
      expect.arrayContaining(["--operator-namespace=tde-system", "--leader-election", "--metrics-port=8080"]),
    );

    // The pod itself is admitted by a namespace enforcing the restricted profile.
    const ns = await createTestNamespace(kc, "psa");
    await kubectl(["label", "namespace", ns, "pod-security.kubernetes.io/enforce=restricted"]);
    const podObject = {
      apiVersion: "v1",
      kind: "Pod",
      metadata: { name: "operator-pod", namespace: ns },
      spec: { ...pod, serviceAccountName: "default" },
    };
    const { stdout, stderr } = await kubectl(
      ["apply", "--dry-run=server", "-f", "-"],
      JSON.stringify(podObject),
    );
    expect(stdout).toContain("pod/operator-pod created (server dry run)");
    expect(stderr).not.toMatch(/violate/);
  });

  it("with workload identity annotates the ServiceAccount and labels the pod", async () => {
    const manifests = await render("tde", "tde-system", everything);
    const sa = find(manifests, "ServiceAccount");
    expect(sa.metadata.annotations).toEqual({
      "azure.workload.identity/client-id": "11111111-2222-3333-4444-555555555555",
      "azure.workload.identity/tenant-id": "66666666-7777-8888-9999-000000000000",
    });
    const deployment = find(manifests, "Deployment") as Manifest & {
      spec: { template: { metadata: { labels: Record<string, string> } } };
    };
    expect(deployment.spec.template.metadata.labels["azure.workload.identity/use"]).toBe("true");
    const plain = find(await render("tde", "tde-system"), "Deployment") as typeof deployment;
    expect(plain.spec.template.metadata.labels["azure.workload.identity/use"]).toBeUndefined();
  });

  it("R19 the Azure settings reach the operator: flags, a mounted CA bundle, the proxy, and nothing by default", async () => {
    type Container = {
      args: string[];
      env: { name: string; value?: string }[];
      volumeMounts: { name: string; mountPath: string; readOnly?: boolean }[];
    };
    type Deployment = Manifest & {
      spec: { template: { spec: { containers: Container[]; volumes: Record<string, unknown>[] } } };
    };
    const deployment = find(await render("tde", "tde-system", everything), "Deployment") as Deployment;
    const pod = deployment.spec.template.spec;
    const operator = pod.containers[0]!;
    expect(operator.args).toEqual(
      expect.arrayContaining([
        "--retained-wrap-retention=2h",
        "--azure-disable-challenge-resource-verification",
        "--azure-ca-file=/etc/tde/ca/ca.crt",
        "--azure-authority-host=https://login.microsoftonline.us",
        "--azure-token-exchange-audience=api://AzureADTokenExchangeUSGov",
      ]),
    );
    const env = Object.fromEntries(operator.env.map((e) => [e.name, e.value]));
    expect(env).toMatchObject({
      NODE_EXTRA_CA_CERTS: "/etc/tde/ca/ca.crt",
      HTTPS_PROXY: "http://proxy.corp:3128",
      NO_PROXY: ".svc,.cluster.local",
    });
    expect(operator.volumeMounts).toContainEqual({
      name: "azure-ca",
      mountPath: "/etc/tde/ca",
      readOnly: true,
    });
    expect(pod.volumes).toContainEqual({
      name: "azure-ca",
      configMap: { name: "corp-ca", items: [{ key: "ca.crt", path: "ca.crt" }] },
    });
    const plain = (find(await render("tde", "tde-system"), "Deployment") as Deployment).spec.template.spec;
    expect(plain.containers[0]!.args.filter((a) => a.startsWith("--azure"))).toEqual([]);
    expect(plain.volumes.map((v) => v.name)).toEqual(["tmp"]);
  });

  it("R7 operator.serviceManagedKey reaches the operator as --service-managed-key, absent by default; a value that is not a KeyProtector reference is refused", async () => {
    type Deployment = Manifest & { spec: { template: { spec: { containers: { args: string[] }[] } } } };
    const args = async (set: string[]) =>
      (find(await render("tde", "tde-system", set), "Deployment") as Deployment).spec.template.spec
        .containers[0]!.args;
    expect(await args(["operator.serviceManagedKey=platform-kek"])).toContain(
      "--service-managed-key=platform-kek",
    );
    expect(await args(["operator.serviceManagedKey=keys/vault-kek"])).toContain(
      "--service-managed-key=keys/vault-kek",
    );
    expect((await args([])).filter((a) => a.startsWith("--service-managed-key"))).toEqual([]);
    for (const bad of ["Platform-KEK", "a/b/c", "keys/"]) {
      const refused = await helm(["template", "x", chart, "--set", `operator.serviceManagedKey=${bad}`]).then(
        () => "",
        (err: { stderr?: string }) => err.stderr ?? String(err),
      );
      expect(refused, bad).toMatch(/serviceManagedKey/);
    }
  });

  it("R19 geoReplication: --cluster-name and --remote-read-ttl reach the operator, absent by default", async () => {
    type Deployment = Manifest & { spec: { template: { spec: { containers: { args: string[] }[] } } } };
    const args = async (set: string[]) =>
      (find(await render("tde", "tde-system", set), "Deployment") as Deployment).spec.template.spec
        .containers[0]!.args;
    expect(await args(["geoReplication.clusterName=west", "geoReplication.remoteReadTTL=5s"])).toEqual(
      expect.arrayContaining(["--cluster-name=west", "--remote-read-ttl=5s"]),
    );
    expect(
      (await args([])).filter((a) => a.startsWith("--cluster-name") || a.startsWith("--remote")),
    ).toEqual([]);
    const refused = await helm(["template", "x", chart, "--set", "geoReplication.clusterName=West_1"]).then(
      () => "",
      (err: { stderr?: string }) => err.stderr ?? String(err),
    );
    expect(refused).toMatch(/clusterName/);
  });

  it("R19 the optional remote-reader role lets other clusters get databases and envelopes where they replicate, and nothing more", async () => {
    const ns = await createTestNamespace(kc, "remote");
    const other = await createTestNamespace(kc, "remote-other");
    const release = `r${ns.slice(-6)}`;
    expect((await render(release, ns)).filter((m) => m.metadata.name.endsWith("remote-reader"))).toEqual([]);
    const manifests = await render(release, ns, [
      "geoReplication.remoteReader.enabled=true",
      `geoReplication.remoteReader.namespaces={${ns}}`,
      "geoReplication.remoteReader.createToken=true",
    ]);
    const reader = manifests.filter((m) =>
      m.metadata.name.startsWith(`${release}-tde-operator-remote-reader`),
    );
    expect(reader.map((m) => m.kind).sort()).toEqual(["Role", "RoleBinding", "Secret", "ServiceAccount"]);
    expect(grants(find(reader, "Role").rules as PolicyRule[])).toEqual([
      "core/secrets:get",
      "tde.dev/encrypteddatabases:get",
    ]);
    await kubectl(["apply", "-f", "-"], JSON.stringify({ apiVersion: "v1", kind: "List", items: reader }));
    const as = `system:serviceaccount:${ns}:${release}-tde-operator-remote-reader`;
    const can = async (...args: string[]) => {
      const { stdout } = await kubectl(["auth", "can-i", "--as", as, ...args]).catch(
        (err: { stdout?: string }) => ({ stdout: err.stdout ?? "no" }),
      );
      return stdout.trim();
    };
    expect(await can("get", "encrypteddatabases.tde.dev", "-n", ns)).toBe("yes");
    expect(await can("get", "secrets", "-n", ns)).toBe("yes");
    // each operator writes only its own cluster: no write, no list or watch, no other namespace
    for (const verb of ["list", "watch", "update", "patch", "create", "delete"])
      expect(await can(verb, "encrypteddatabases.tde.dev", "-n", ns), verb).toBe("no");
    expect(await can("patch", "encrypteddatabases.tde.dev", "--subresource=status", "-n", ns)).toBe("no");
    expect(await can("list", "secrets", "-n", ns)).toBe("no");
    expect(await can("get", "secrets", "-n", other)).toBe("no");
    expect(await can("get", "encrypteddatabases.tde.dev", "-n", other)).toBe("no");
    expect(await can("get", "keyprotectors.tde.dev", "-n", ns)).toBe("no");
    const narrowed = await render(release, ns, [
      "geoReplication.remoteReader.enabled=true",
      `geoReplication.remoteReader.namespaces={${ns}}`,
      "geoReplication.remoteReader.envelopeSecretNames={tde-edb-orders}",
    ]);
    const rules = find(narrowed, "Role", `${release}-tde-operator-remote-reader`).rules as PolicyRule[];
    expect(rules.find((r) => r.resources?.includes("secrets"))?.resourceNames).toEqual(["tde-edb-orders"]);
  });

  it("R28 alerts on key access lost, inaccessible resources, blocked rotations, keys expiring in 30 days and R7 DEKs on the Local service-managed key alone", async () => {
    const manifests = await render("tde", "tde-system", ["prometheusRule.enabled=true"]);
    const rule = find(manifests, "PrometheusRule") as Manifest & {
      spec: { groups: { rules: { alert: string; expr: string }[] }[] };
    };
    const alerts = Object.fromEntries(rule.spec.groups.flatMap((g) => g.rules).map((r) => [r.alert, r.expr]));
    expect(alerts.TDEKeyAccessLost).toBe("tde_key_accessible == 0");
    expect(alerts.TDEResourceInaccessible).toContain('tde_resources{state="Inaccessible"}');
    expect(alerts.TDERotationBlocked).toContain("tde_rotations_blocked");
    expect(alerts.TDERotationFailed).toContain('tde_rotations_total{result="error"}');
    expect(alerts.TDEKeyExpiringSoon).toBe("(tde_key_expiry_timestamp_seconds - time()) < 2592000");
    expect(alerts.TDERemoteClusterUnreachable).toBe("tde_remote_cluster_up == 0");
    expect(alerts.TDEServiceManagedKeySinglePointOfLoss).toBe(
      "sum by (kind) (tde_service_managed_single_point_of_loss) > 0",
    );
    const dashboard = find(
      await render("tde", "tde-system", ["grafanaDashboard.enabled=true"]),
      "ConfigMap",
    ) as Manifest & { data: Record<string, string> };
    const json = JSON.parse(dashboard.data["tde-operator.json"] ?? "{}") as { panels: unknown[] };
    expect(json.panels.length).toBeGreaterThan(5);
  });
});

interface Probe {
  httpGet?: { path: string };
}
interface PodSpec {
  securityContext?: Record<string, unknown>;
  containers: {
    args?: string[];
    securityContext?: Record<string, unknown>;
    livenessProbe?: Probe;
    readinessProbe?: Probe;
  }[];
  [field: string]: unknown;
}
