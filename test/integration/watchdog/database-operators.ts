/**
 * Stand-ins for database operators, against the real API server: minimal CRDs with the group,
 * kind, `/scale` paths and validation of the real ones (CloudNativePG's Cluster refuses fewer than
 * one instance; mariadb-operator's MariaDB and a test Engine scale to zero), and a controller
 * that does what those operators do to what they own: it keeps a StatefulSet per object and
 * keeps resetting its replicas to the owner's count, whatever anyone else writes.
 */
import {
  HttpKubeClient,
  isAlreadyExists,
  isNotFound,
  type KubeObject,
  type ResourceKind,
} from "../../../src/runtime/index.js";
import { testKubeConfig } from "../../harness/kube.js";

export interface OperatorKind {
  resource: ResourceKind;
  /** the spec field /scale reads and writes */
  replicasField: string;
  /** CloudNativePG refuses fewer than 1 instance */
  minimum: number;
}

export const EngineKind: OperatorKind = {
  resource: { group: "enforce.tde.dev", version: "v1", plural: "engines", kind: "Engine" },
  replicasField: "replicas",
  minimum: 0,
};
export const CnpgClusterKind: OperatorKind = {
  resource: { group: "postgresql.cnpg.io", version: "v1", plural: "clusters", kind: "Cluster" },
  replicasField: "instances",
  minimum: 1,
};
export const MariaDbKind: OperatorKind = {
  resource: { group: "k8s.mariadb.com", version: "v1alpha1", plural: "mariadbs", kind: "MariaDB" },
  replicasField: "replicas",
  minimum: 0,
};

const CrdKind: ResourceKind = {
  group: "apiextensions.k8s.io",
  version: "v1",
  plural: "customresourcedefinitions",
  kind: "CustomResourceDefinition",
  namespaced: false,
};

export const client = () => new HttpKubeClient(testKubeConfig());

function crd(k: OperatorKind): KubeObject {
  const { group, version, plural, kind } = k.resource;
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${plural}.${group}` },
    spec: {
      group,
      scope: "Namespaced",
      names: { plural, singular: kind.toLowerCase(), kind, listKind: `${kind}List` },
      versions: [
        {
          name: version,
          served: true,
          storage: true,
          subresources: {
            status: {},
            scale: {
              specReplicasPath: `.spec.${k.replicasField}`,
              statusReplicasPath: `.status.${k.replicasField}`,
              labelSelectorPath: ".status.selector",
            },
          },
          schema: {
            openAPIV3Schema: {
              type: "object",
              properties: {
                spec: {
                  type: "object",
                  "x-kubernetes-preserve-unknown-fields": true,
                  properties: { [k.replicasField]: { type: "integer", minimum: k.minimum } },
                },
                status: { type: "object", "x-kubernetes-preserve-unknown-fields": true },
              },
            },
          },
        },
      ],
    },
  };
}

/** Installs the CRDs (once per control plane) and waits until each serves objects. */
export async function installOperatorCrds(kinds: OperatorKind[]): Promise<void> {
  const c = client();
  for (const k of kinds) {
    try {
      await c.create(CrdKind, "", crd(k));
    } catch (error) {
      if (!isAlreadyExists(error)) throw error;
    }
  }
  const deadline = Date.now() + 30_000;
  for (const k of kinds) {
    for (;;) {
      const served = await c.list(k.resource, "default").then(
        () => true,
        () => false,
      );
      if (served) break;
      if (Date.now() > deadline) throw new Error(`CRD ${k.resource.plural}.${k.resource.group} not served`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

export async function createOwner(
  k: OperatorKind,
  namespace: string,
  name: string,
  replicas: number,
  extra: { annotations?: Record<string, string>; spec?: Record<string, unknown> } = {},
): Promise<void> {
  const { group, version, kind } = k.resource;
  await client().create(k.resource, namespace, {
    apiVersion: `${group}/${version}`,
    kind,
    metadata: { name, namespace, ...(extra.annotations ? { annotations: extra.annotations } : {}) },
    spec: { [k.replicasField]: replicas, ...extra.spec },
  });
}

export async function readOwner(k: OperatorKind, namespace: string, name: string) {
  const o = await client().get<KubeObject & { spec: Record<string, unknown> }>(k.resource, namespace, name);
  return {
    replicas: o.spec[k.replicasField] as number | undefined,
    annotations: o.metadata?.annotations ?? {},
    spec: o.spec,
  };
}

export const StatefulSetKind: ResourceKind = {
  group: "apps",
  version: "v1",
  plural: "statefulsets",
  kind: "StatefulSet",
};

export async function readStatefulSet(namespace: string, name: string) {
  const o = await client().get<KubeObject & { spec: { replicas?: number } }>(
    StatefulSetKind,
    namespace,
    name,
  );
  return { replicas: o.spec.replicas, annotations: o.metadata?.annotations ?? {} };
}

/**
 * What a database operator does to what it owns, every `intervalMs`: one StatefulSet per object
 * of the kind (named after it, controller ownerReference), its replicas reset to the object's
 * count whenever they differ. Counts its resets.
 */
export function runOwnerController(k: OperatorKind, namespace: string, intervalMs = 100) {
  const c = client();
  let stopped = false;
  const stats = { resets: 0, errors: 0 };
  const loop = (async () => {
    while (!stopped) {
      try {
        const owners = await c.list<KubeObject & { spec: Record<string, unknown> }>(k.resource, namespace);
        for (const owner of owners.items) {
          const name = owner.metadata?.name ?? "";
          const want = (owner.spec[k.replicasField] as number | undefined) ?? 1;
          let sts: (KubeObject & { spec: { replicas?: number } }) | undefined;
          try {
            sts = await c.get<KubeObject & { spec: { replicas?: number } }>(StatefulSetKind, namespace, name);
          } catch (error) {
            if (!isNotFound(error)) throw error;
          }
          if (!sts) {
            await c.create(StatefulSetKind, namespace, statefulSet(owner, name, want));
          } else if (sts.spec.replicas !== want) {
            await c.patch(StatefulSetKind, namespace, name, { spec: { replicas: want } });
            stats.resets++;
          }
          await c.patch(
            k.resource,
            namespace,
            name,
            { status: { [k.replicasField]: want, selector: `app=${name}` } },
            { subresource: "status" },
          );
        }
      } catch {
        stats.errors++;
      }
      await new Promise((r) => setTimeout(r, intervalMs));
    }
  })();
  return {
    stats,
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

function statefulSet(owner: KubeObject, name: string, replicas: number): KubeObject {
  const labels = { app: name };
  return {
    apiVersion: "apps/v1",
    kind: "StatefulSet",
    metadata: {
      name,
      ownerReferences: [
        {
          apiVersion: owner.apiVersion ?? "",
          kind: owner.kind ?? "",
          name,
          uid: owner.metadata?.uid ?? "",
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: {
      replicas,
      serviceName: name,
      selector: { matchLabels: labels },
      template: { metadata: { labels }, spec: { containers: [{ name: "db", image: "mariadb:11" }] } },
    },
  };
}
