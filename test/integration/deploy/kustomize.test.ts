import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { parseDocument } from "yaml";
import { helm } from "../../harness/helm.js";
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
  scratchDir,
  writeFile,
} from "./support.js";

const deploy = join(repoRoot, "deploy");
const kc = testKubeConfig();

async function kustomize(dir: string): Promise<Manifest[]> {
  const { stdout } = await kubectl(["kustomize", dir]);
  return parseManifests(stdout);
}

/** The overlay moved into a fresh namespace, so the dry run does not need tde-system to exist. */
async function inNamespace(overlay: string, namespace: string): Promise<Manifest[]> {
  const { dir, rel } = scratchDir("kustomize");
  writeFile(
    join(dir, "kustomization.yaml"),
    `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: ${namespace}\nresources:\n  - ${rel(overlay)}\n`,
  );
  return (await kustomize(dir)).filter((m) => m.kind !== "Namespace");
}

beforeAll(async () => {
  await installCrds();
  await installMonitoringCrds();
});

describe("R30 plain manifests under deploy/ for kubectl apply -k", () => {
  it("deploy/overlays/default renders the namespace, CRDs, RBAC, Deployment and Service in tde-system", async () => {
    const manifests = await kustomize(join(deploy, "overlays", "default"));
    expect(manifests.map((m) => m.kind).sort()).toEqual(
      [
        "ClusterRole",
        "ClusterRoleBinding",
        "CustomResourceDefinition",
        "CustomResourceDefinition",
        "CustomResourceDefinition",
        "Deployment",
        "Namespace",
        "PodDisruptionBudget",
        "Role",
        "RoleBinding",
        "Service",
        "ServiceAccount",
      ].sort(),
    );
    for (const m of manifests) {
      if (["Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"].includes(m.kind))
        continue;
      expect(m.metadata.namespace, `${m.kind} ${m.metadata.name}`).toBe("tde-system");
    }
    const deployment = find(manifests, "Deployment") as Manifest & {
      spec: { template: { spec: { containers: { image: string }[] } } };
    };
    expect(deployment.spec.template.spec.containers[0]?.image).toBe("ghcr.io/tde-dev/tde-operator:0.1.0");
  });

  it("deploy/overlays/default is accepted by the real API server (server-side dry run)", async () => {
    const ns = await createTestNamespace(kc, "kustomize");
    const out = await dryRunApply(await inNamespace(join(deploy, "overlays", "default"), ns));
    expect(out).toContain("deployment.apps/tde-operator serverside-applied (server dry run)");
    expect(out).toContain("customresourcedefinition.apiextensions.k8s.io/encrypteddatabases.tde.dev");
  });

  it("deploy/overlays/monitoring adds a ServiceMonitor, the alerts and the dashboard, and is accepted", async () => {
    const ns = await createTestNamespace(kc, "monitoring");
    const manifests = await inNamespace(join(deploy, "overlays", "monitoring"), ns);
    expect(manifests.map((m) => m.kind)).toEqual(
      expect.arrayContaining(["ServiceMonitor", "PrometheusRule", "ConfigMap", "Deployment"]),
    );
    const out = await dryRunApply(manifests);
    expect(out).toContain("servicemonitor.monitoring.coreos.com/tde-operator serverside-applied");
    expect(out).toContain("configmap/tde-operator-dashboard serverside-applied");
  });

  it("deploy/overlays/monitoring puts every namespaced object in tde-system, beside the metrics Service it scrapes", async () => {
    const manifests = await kustomize(join(deploy, "overlays", "monitoring"));
    const namespaced = manifests.filter(
      (m) => !["Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding"].includes(m.kind),
    );
    const where = (kind: string) =>
      namespaced.filter((m) => m.kind === kind).map((m) => m.metadata.namespace);
    expect(where("ServiceMonitor")).toEqual(["tde-system"]);
    expect(where("PrometheusRule")).toEqual(["tde-system"]);
    expect(where("ConfigMap")).toEqual(["tde-system"]);
    expect(where("Service")).toEqual(["tde-system"]);
    expect(new Set(namespaced.map((m) => `${m.metadata.namespace}`))).toEqual(new Set(["tde-system"]));
    // the ServiceMonitor selects the Service by its labels and its named port
    const service = find(namespaced, "Service") as unknown as {
      metadata: { labels: Record<string, string> };
      spec: { ports: { name: string }[] };
    };
    const monitor = find(namespaced, "ServiceMonitor") as unknown as {
      spec: { selector: { matchLabels: Record<string, string> }; endpoints: { port: string }[] };
    };
    for (const [k, v] of Object.entries(monitor.spec.selector.matchLabels))
      expect(service.metadata.labels[k]).toBe(v);
    expect(service.spec.ports.map((p) => p.name)).toContain(monitor.spec.endpoints[0]?.port);
  });

  it("grants exactly what the Helm chart grants", async () => {
    const manifests = await kustomize(join(deploy, "overlays", "default"));
    expect(grants(find(manifests, "ClusterRole").rules as PolicyRule[])).toEqual(NAMESPACED_GRANTS);
    expect(grants(find(manifests, "Role").rules as PolicyRule[])).toEqual(SELF_GRANTS);
    expect(find(manifests, "ClusterRoleBinding").subjects).toEqual([
      { kind: "ServiceAccount", name: "tde-operator", namespace: "tde-system" },
    ]);
  });

  it("keeps its copies identical to their sources (CRDs, dashboard, alerts)", async () => {
    for (const file of readdirSync(join(repoRoot, "crds"))) {
      expect(
        readFileSync(join(deploy, "base", "crds", file), "utf8") ===
          readFileSync(join(repoRoot, "crds", file), "utf8"),
        `deploy/base/crds/${file} differs from crds/${file}: npm run generate`,
      ).toBe(true);
    }
    const dashboard = "tde-operator.json";
    expect(readFileSync(join(deploy, "overlays", "monitoring", dashboard), "utf8")).toBe(
      readFileSync(join(repoRoot, "charts", "tde-operator", "dashboards", dashboard), "utf8"),
    );
    const chartRule = find(
      parseManifests(
        (
          await helm([
            "template",
            "tde-operator",
            join(repoRoot, "charts", "tde-operator"),
            "--set",
            "prometheusRule.enabled=true",
          ])
        ).stdout,
      ),
      "PrometheusRule",
    );
    const overlayRule = parseDocument(
      readFileSync(join(deploy, "overlays", "monitoring", "prometheusrule.yaml"), "utf8"),
    ).toJS() as Manifest;
    expect(overlayRule.spec).toEqual(chartRule.spec);
  });
});
