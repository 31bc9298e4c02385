import * as k8s from "@kubernetes/client-node";

/**
 * R10/R11: what the operator does to a server's workload when its key is lost past the grace
 * period, and how it gives it back. Idempotent in both directions: applying twice keeps the
 * first replica count; releasing twice is harmless.
 */
export type EnforcementMode = "ScaleToZero" | "NetworkIsolation" | "None";

export interface WorkloadRef {
  kind: "StatefulSet" | "Deployment";
  name: string;
}

export interface EnforcementRecord {
  previousReplicas?: number;
  networkPolicyName?: string;
}

export const PREVIOUS_REPLICAS_ANNOTATION = "tde.dev/previous-replicas";
export const ENFORCED_BY_ANNOTATION = "tde.dev/enforced-by";

const mergePatch = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch);

interface Scalable {
  metadata?: k8s.V1ObjectMeta;
  spec?: { replicas?: number; selector?: k8s.V1LabelSelector };
}

export class Enforcer {
  private readonly apps: k8s.AppsV1Api;
  private readonly net: k8s.NetworkingV1Api;

  constructor(kc: k8s.KubeConfig) {
    this.apps = kc.makeApiClient(k8s.AppsV1Api);
    this.net = kc.makeApiClient(k8s.NetworkingV1Api);
  }

  private async read(namespace: string, ref: WorkloadRef): Promise<Scalable> {
    return ref.kind === "StatefulSet"
      ? this.apps.readNamespacedStatefulSet({ namespace, name: ref.name })
      : this.apps.readNamespacedDeployment({ namespace, name: ref.name });
  }

  private async patch(namespace: string, ref: WorkloadRef, body: object): Promise<void> {
    if (ref.kind === "StatefulSet") {
      await this.apps.patchNamespacedStatefulSet({ namespace, name: ref.name, body }, mergePatch);
    } else {
      await this.apps.patchNamespacedDeployment({ namespace, name: ref.name, body }, mergePatch);
    }
  }

  /** Takes the workload away: replicas to 0 (count kept) or a deny-all-ingress NetworkPolicy. */
  async apply(
    namespace: string,
    serverName: string,
    mode: EnforcementMode,
    ref: WorkloadRef | undefined,
    owner: k8s.V1OwnerReference,
  ): Promise<EnforcementRecord> {
    if (mode === "None" || !ref) return {};
    const workload = await this.read(namespace, ref);
    if (mode === "ScaleToZero") {
      const kept = workload.metadata?.annotations?.[PREVIOUS_REPLICAS_ANNOTATION];
      const previous = kept !== undefined ? Number(kept) : (workload.spec?.replicas ?? 1);
      if (kept === undefined || workload.spec?.replicas !== 0) {
        await this.patch(namespace, ref, {
          metadata: {
            annotations: {
              [PREVIOUS_REPLICAS_ANNOTATION]: String(previous),
              [ENFORCED_BY_ANNOTATION]: serverName,
            },
          },
          spec: { replicas: 0 },
        });
      }
      return { previousReplicas: previous };
    }
    const name = networkPolicyName(serverName);
    const policy: k8s.V1NetworkPolicy = {
      metadata: {
        name,
        namespace,
        labels: { "app.kubernetes.io/managed-by": "tde-operator", "tde.dev/server": serverName },
        ownerReferences: [owner],
      },
      spec: {
        podSelector: workload.spec?.selector ?? {},
        policyTypes: ["Ingress"],
        ingress: [],
      },
    };
    try {
      await this.net.createNamespacedNetworkPolicy({ namespace, body: policy });
    } catch (error) {
      if (statusCode(error) !== 409) throw error;
    }
    return { networkPolicyName: name };
  }

  /** Gives back what `apply` took: the kept replica count, or removes the NetworkPolicy. */
  async release(
    namespace: string,
    serverName: string,
    ref: WorkloadRef | undefined,
    record: EnforcementRecord,
  ) {
    if (ref) {
      let workload: Scalable | undefined;
      try {
        workload = await this.read(namespace, ref);
      } catch (error) {
        if (statusCode(error) !== 404) throw error;
      }
      const kept = workload?.metadata?.annotations?.[PREVIOUS_REPLICAS_ANNOTATION] ?? record.previousReplicas;
      if (workload && kept !== undefined) {
        await this.patch(namespace, ref, {
          metadata: { annotations: { [PREVIOUS_REPLICAS_ANNOTATION]: null, [ENFORCED_BY_ANNOTATION]: null } },
          spec: { replicas: Number(kept) },
        });
      }
    }
    const name = record.networkPolicyName ?? networkPolicyName(serverName);
    try {
      await this.net.deleteNamespacedNetworkPolicy({ namespace, name });
    } catch (error) {
      if (statusCode(error) !== 404) throw error;
    }
  }
}

export function networkPolicyName(serverName: string): string {
  return `${serverName}-tde-isolation`.slice(0, 253);
}

export function statusCode(error: unknown): number | undefined {
  const e = error as { code?: number; statusCode?: number; response?: { statusCode?: number } };
  return e?.code ?? e?.statusCode ?? e?.response?.statusCode;
}
