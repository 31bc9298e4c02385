/**
 * What the cross-cluster journeys share: the two clusters' links (each operator reads the other
 * only as the chart's remote reader, through a cuttable link of its own, named by a cluster
 * Secret) and the geo pair they replicate (a primary in east listing its secondary in west).
 */
import type * as k8s from "@kubernetes/client-node";
import { inject } from "vitest";
import {
  createClusterSecret,
  kubeconfigThrough,
  linkTo,
  remoteReaderKubeConfig,
} from "../../harness/clusters.js";
import type { ControlPlane } from "../../harness/control-plane.js";
import type { FaultProxy } from "../../harness/fault-proxy.js";
import { type Api, kc } from "../controllers/helpers.js";

/** A cluster as the links need it: its admin, its kubeconfig file and kubectl, and the operator's namespace there. */
export interface LinkEnd {
  name: string;
  admin: k8s.KubeConfig;
  kubeconfigPath: string;
  kubectl: string;
  operatorNamespace: string;
}

/** The harness's control plane as cluster "east". */
export const harnessEnd = (operatorNamespace: string): LinkEnd => ({
  name: "east",
  admin: kc(),
  kubeconfigPath: inject("kubeconfigPath"),
  kubectl: inject("kubectlPath"),
  operatorNamespace,
});

/** A control plane the test started (test/harness/clusters.ts) as cluster `name`. */
export const planeEnd = (
  name: string,
  plane: ControlPlane,
  admin: k8s.KubeConfig,
  operatorNamespace: string,
): LinkEnd => ({
  name,
  admin,
  kubeconfigPath: plane.started.kubeconfigPath,
  kubectl: plane.started.binaries.kubectl ?? "",
  operatorNamespace,
});

/** Links both ways between two clusters, for the namespaces replicated; the proxies, to stop (or cut). */
export async function linkClusters(a: LinkEnd, b: LinkEnd, namespaces: string[]): Promise<FaultProxy[]> {
  const reader = (end: LinkEnd) =>
    remoteReaderKubeConfig({
      admin: end.admin,
      kubeconfigPath: end.kubeconfigPath,
      kubectl: end.kubectl,
      releaseNamespace: end.operatorNamespace,
      namespaces,
    });
  const toB = await linkTo(await reader(b));
  const toA = await linkTo(await reader(a));
  await createClusterSecret(a.admin, a.operatorNamespace, b.name, kubeconfigThrough(toB, b.name));
  await createClusterSecret(b.admin, b.operatorNamespace, a.name, kubeconfigThrough(toA, a.name));
  return [toB, toA];
}

const on = (kp: string) => ({ type: "CustomerManaged", keyProtectorRef: { name: kp } });

/** R19 R31: the primary `orders` in east on `primaryKp`, naming its secondary `orders` in west on `secondaryKp`, and back. */
export async function createGeoPair(
  east: Api,
  west: Api,
  namespace: string,
  primaryKp: string,
  secondaryKp: string,
): Promise<void> {
  await east.create("EncryptedServer", namespace, "primary-server", { protector: on(primaryKp) });
  await east.create("EncryptedDatabase", namespace, "orders", {
    serverRef: { name: "primary-server" },
    encryptionProtector: on(primaryKp),
    replication: { role: "Primary", secondaries: [{ cluster: "west", namespace, name: "orders" }] },
  });
  await west.create("EncryptedServer", namespace, "dr-server", {
    protector: on(secondaryKp),
    revalidation: "Automatic",
  });
  await west.create("EncryptedDatabase", namespace, "orders", {
    serverRef: { name: "dr-server" },
    encryptionProtector: on(secondaryKp),
    replication: { role: "Secondary", primaryRef: { cluster: "east", namespace, name: "orders" } },
  });
}
