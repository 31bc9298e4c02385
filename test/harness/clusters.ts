import { execFileSync } from "node:child_process";
import { join } from "node:path";
import * as k8s from "@kubernetes/client-node";
import { ControlPlane } from "./control-plane.js";
import { installCrds } from "./crds.js";
import { FaultProxy, upstreamFromKubeConfig } from "./fault-proxy.js";
import { helm } from "./helm.js";

/**
 * R19 across clusters: another real control plane (its own kube-apiserver and etcd, on free
 * ports) with our CRDs, beside the harness's shared one. A test file may start several.
 */
export async function startCluster(log?: (line: string) => void): Promise<{
  plane: ControlPlane;
  kc: k8s.KubeConfig;
}> {
  const plane = new ControlPlane(log ? { log } : {});
  const info = await plane.start();
  installCrds(info.binaries.kubectl, info.kubeconfigPath);
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(info.kubeconfigPath);
  return { plane, kc };
}

/** A cuttable link to a cluster: the fault proxy in front of its API server, authenticating as the kubeconfig's user. */
export async function linkTo(kc: k8s.KubeConfig): Promise<FaultProxy> {
  return FaultProxy.start({ upstream: await upstreamFromKubeConfig(kc) });
}

/** A kubeconfig (text) that reaches a cluster through its link: no credentials, the proxy adds them. */
export function kubeconfigThrough(proxy: { url: string }, cluster: string): string {
  return [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    `- name: ${cluster}`,
    "  cluster:",
    `    server: ${proxy.url}`,
    "contexts:",
    `- name: ${cluster}`,
    "  context:",
    `    cluster: ${cluster}`,
    `current-context: ${cluster}`,
    "",
  ].join("\n");
}

/**
 * The cluster Secret an operator finds another cluster by (Cluster API's convention, as
 * docs/geo-replication.md shows it): `<cluster>-kubeconfig` in the operator's namespace, the
 * kubeconfig under the key `value`.
 */
export async function createClusterSecret(
  kc: k8s.KubeConfig,
  operatorNamespace: string,
  cluster: string,
  kubeconfig: string,
): Promise<void> {
  await kc.makeApiClient(k8s.CoreV1Api).createNamespacedSecret({
    namespace: operatorNamespace,
    body: {
      metadata: {
        name: `${cluster}-kubeconfig`,
        namespace: operatorNamespace,
        labels: { "cluster.x-k8s.io/cluster-name": cluster },
      },
      type: "cluster.x-k8s.io/secret",
      stringData: { value: kubeconfig },
    },
  });
}

/**
 * R19 with the chart's remote-reader role, as docs/geo-replication.md sets it up: renders the
 * chart's remote-reader objects for `namespaces` (release namespace `releaseNamespace`), applies
 * them to the cluster, asks the API server for a token of its ServiceAccount (TokenRequest), and
 * returns a kubeconfig that reads the cluster as that identity, and only as it.
 */
export async function remoteReaderKubeConfig(o: {
  admin: k8s.KubeConfig;
  kubeconfigPath: string;
  kubectl: string;
  releaseNamespace: string;
  namespaces: string[];
}): Promise<k8s.KubeConfig> {
  const release = "geo";
  const { stdout } = await helm([
    "template",
    release,
    join(import.meta.dirname, "..", "..", "charts", "tde-operator"),
    "--namespace",
    o.releaseNamespace,
    "--set",
    "geoReplication.remoteReader.enabled=true",
    "--set",
    `geoReplication.remoteReader.namespaces={${o.namespaces.join(",")}}`,
    "--show-only",
    "templates/remote-reader.yaml",
  ]);
  const run = (args: string[], input?: string) =>
    execFileSync(o.kubectl, ["--kubeconfig", o.kubeconfigPath, ...args], {
      encoding: "utf8",
      ...(input === undefined ? {} : { input }),
    });
  run(["apply", "-f", "-"], stdout);
  const token = run([
    "create",
    "token",
    `${release}-tde-operator-remote-reader`,
    "-n",
    o.releaseNamespace,
    "--duration=2h",
  ]).trim();
  const cluster = o.admin.getCurrentCluster();
  if (!cluster) throw new Error("the admin kubeconfig has no current cluster");
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "c", server: cluster.server, caData: cluster.caData, skipTLSVerify: false }],
    users: [{ name: "remote-reader", token }],
    contexts: [{ name: "c", cluster: "c", user: "remote-reader" }],
    currentContext: "c",
  });
  return kc;
}
