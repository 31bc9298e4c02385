import {
  isAlreadyExists,
  isNotFound,
  type KubeClient,
  type KubeObject,
  type OwnerReference,
  type ResourceKind,
} from "../runtime/index.js";
import { boundedName, labelValueFor } from "../runtime/names.js";

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

export const StatefulSetKind: ResourceKind = {
  group: "apps",
  version: "v1",
  plural: "statefulsets",
  kind: "StatefulSet",
};
export const DeploymentKind: ResourceKind = {
  group: "apps",
  version: "v1",
  plural: "deployments",
  kind: "Deployment",
};
export const NetworkPolicyKind: ResourceKind = {
  group: "networking.k8s.io",
  version: "v1",
  plural: "networkpolicies",
  kind: "NetworkPolicy",
};

interface Scalable extends KubeObject {
  spec?: { replicas?: number; selector?: Record<string, unknown> };
}

const workloadKind = (ref: WorkloadRef) => (ref.kind === "StatefulSet" ? StatefulSetKind : DeploymentKind);

export class Enforcer {
  constructor(private readonly client: KubeClient) {}

  private read(namespace: string, ref: WorkloadRef): Promise<Scalable> {
    return this.client.get<Scalable>(workloadKind(ref), namespace, ref.name);
  }

  private async patch(namespace: string, ref: WorkloadRef, body: object): Promise<void> {
    await this.client.patch(workloadKind(ref), namespace, ref.name, body);
  }

  /** Takes the workload away: replicas to 0 (count kept) or a deny-all-ingress NetworkPolicy. */
  async apply(
    namespace: string,
    serverName: string,
    mode: EnforcementMode,
    ref: WorkloadRef | undefined,
    owner: OwnerReference,
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
    const policy: KubeObject = {
      apiVersion: "networking.k8s.io/v1",
      kind: "NetworkPolicy",
      metadata: {
        name,
        namespace,
        labels: {
          "app.kubernetes.io/managed-by": "tde-operator",
          "tde.dev/server": labelValueFor(serverName),
        },
        ownerReferences: [owner],
      },
      spec: {
        podSelector: workload.spec?.selector ?? {},
        policyTypes: ["Ingress"],
        ingress: [],
      },
    };
    try {
      await this.client.create(NetworkPolicyKind, namespace, policy);
    } catch (error) {
      if (!isAlreadyExists(error)) throw error;
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
        if (!isNotFound(error)) throw error;
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
      await this.client.delete(NetworkPolicyKind, namespace, name);
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }
}

/** R32: within 253 characters and distinct for distinct servers (a long name is shortened with a hash). */
export function networkPolicyName(serverName: string): string {
  return boundedName("", `${serverName}-tde-isolation`);
}
