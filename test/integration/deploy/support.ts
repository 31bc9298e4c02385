import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { parseAllDocuments } from "yaml";
import { kubectl } from "../../harness/kube.js";
import { repoRoot } from "../api/install.js";

export { repoRoot };

/** A Kubernetes object as rendered by Helm or kustomize. */
export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; [k: string]: unknown };
  [field: string]: unknown;
}

export interface PolicyRule {
  apiGroups?: string[];
  resources?: string[];
  verbs: string[];
  resourceNames?: string[];
  nonResourceURLs?: string[];
}

export function parseManifests(text: string): Manifest[] {
  return parseAllDocuments(text)
    .map((d) => d.toJS() as Manifest | null)
    .filter((m): m is Manifest => m !== null && typeof m === "object" && "kind" in m);
}

export function find(manifests: Manifest[], kind: string, name?: string): Manifest {
  const found = manifests.find((m) => m.kind === kind && (name === undefined || m.metadata.name === name));
  if (!found) throw new Error(`no ${kind}${name ? ` ${name}` : ""} among ${manifests.length} manifests`);
  return found;
}

/**
 * Every (apiGroup, resource, verb) a set of rules grants, as "group/resource:verb" strings, so two
 * rule sets can be compared whatever their grouping.
 */
export function grants(rules: PolicyRule[]): string[] {
  const out = new Set<string>();
  for (const rule of rules) {
    for (const group of rule.apiGroups ?? [""])
      for (const resource of rule.resources ?? [])
        for (const verb of rule.verbs) out.add(`${group || "core"}/${resource}:${verb}`);
  }
  return [...out].sort();
}

function expand(groups: string[], resources: string[], verbs: string[]): string[] {
  return groups.flatMap((g) => resources.flatMap((r) => verbs.map((v) => `${g || "core"}/${r}:${v}`)));
}

const KINDS = ["keyprotectors", "encryptedservers", "encrypteddatabases"];

/** What the operator is allowed to do in the namespaces it watches (docs/operating.md, "RBAC"). */
export const NAMESPACED_GRANTS = [
  ...expand(["tde.dev"], KINDS, ["get", "list", "watch", "update", "patch"]),
  ...expand(
    ["tde.dev"],
    KINDS.map((k) => `${k}/status`),
    ["get", "update", "patch"],
  ),
  ...expand(
    ["tde.dev"],
    KINDS.map((k) => `${k}/finalizers`),
    ["update"],
  ),
  ...expand([""], ["secrets"], ["get", "list", "watch", "create", "update", "patch", "delete"]),
  ...expand([""], ["events"], ["create", "patch"]),
  ...expand(["apps"], ["statefulsets", "deployments"], ["get", "list", "watch", "patch"]),
  ...expand(["apps"], ["statefulsets/scale", "deployments/scale"], ["get", "patch"]),
  ...expand(["networking.k8s.io"], ["networkpolicies"], ["get", "create", "delete"]),
].sort();

/**
 * What the operator may do in its own namespace beyond that: the leader-election Lease, and
 * create the service-managed key's KeyProtector (R7).
 */
export const SELF_GRANTS = [
  ...expand(["coordination.k8s.io"], ["leases"], ["get", "create", "update"]),
  "tde.dev/keyprotectors:create",
].sort();

/** Stand-ins for the Prometheus Operator's CRDs, which this cluster lacks: any object is accepted. */
export async function installMonitoringCrds(): Promise<void> {
  const crd = (plural: string, kind: string) => ({
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${plural}.monitoring.coreos.com` },
    spec: {
      group: "monitoring.coreos.com",
      scope: "Namespaced",
      names: { plural, singular: kind.toLowerCase(), kind, listKind: `${kind}List` },
      versions: [
        {
          name: "v1",
          served: true,
          storage: true,
          schema: {
            openAPIV3Schema: {
              type: "object",
              properties: { spec: { type: "object", "x-kubernetes-preserve-unknown-fields": true } },
            },
          },
        },
      ],
    },
  });
  const list = {
    apiVersion: "v1",
    kind: "List",
    items: [crd("servicemonitors", "ServiceMonitor"), crd("prometheusrules", "PrometheusRule")],
  };
  await kubectl(["apply", "--server-side", "--force-conflicts", "-f", "-"], JSON.stringify(list));
  await kubectl([
    "wait",
    "--for=condition=Established",
    "--timeout=30s",
    "customresourcedefinition/servicemonitors.monitoring.coreos.com",
    "customresourcedefinition/prometheusrules.monitoring.coreos.com",
  ]);
}

/** Applies manifests with a server-side dry run: the real API server validates and admits them. */
export async function dryRunApply(manifests: Manifest[]): Promise<string> {
  const list = { apiVersion: "v1", kind: "List", items: manifests };
  const { stdout } = await kubectl(
    ["apply", "--dry-run=server", "--server-side", "--field-manager=tde-test", "-f", "-"],
    JSON.stringify(list),
  );
  return stdout;
}

/** A scratch folder under the repository's .tmp (ignored by git), for generated kustomizations. */
export function scratchDir(prefix: string): { dir: string; rel: (path: string) => string } {
  const base = join(repoRoot, ".tmp");
  mkdirSync(base, { recursive: true });
  const dir = mkdtempSync(join(base, `${prefix}-`));
  return { dir, rel: (path: string) => relative(dir, path) };
}

export function writeFile(path: string, text: string): void {
  writeFileSync(path, text);
}
