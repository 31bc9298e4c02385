import { type EncryptedServerSpec, type EnforcementPatch, Reason } from "../api/index.js";
import {
  ApiError,
  isAlreadyExists,
  isNotFound,
  type KubeClient,
  type KubeObject,
  type OwnerReference,
  PatchType,
  type ResourceKind,
} from "../runtime/index.js";
import { boundedName, labelValueFor } from "../runtime/names.js";
import {
  decodePrevious,
  encodePrevious,
  patchHolds,
  patchProblem,
  previousValues,
  restoringPatch,
} from "./enforcement-patch.js";
import { describeRef, ScaleClient, selectorFromString } from "./scale-client.js";
import { type Located, resolveTarget, type TargetResolution } from "./workload-target.js";

/**
 * R10/R11: what the operator does to a server's workload when its key is lost past the grace
 * period, and how it gives it back. Idempotent in both directions and meant to be called again
 * for as long as the server is Inaccessible: enforcing again keeps the first recorded values and
 * takes back whatever someone (an owner's controller, a GitOps sync, a person) put back;
 * restoring twice is harmless.
 *
 * ScaleToZero acts through the `/scale` subresource of any kind that serves it, on the workload
 * or, when another controller owns the workload, on the top of its chain of controllers (never
 * behind an owner's back). Patch applies the platform's declared `spec.enforcementPatch` there
 * and records what it replaced. NetworkIsolation denies all ingress to the workload's pods.
 */
export type EnforcementMode = EncryptedServerSpec["enforcement"];

export interface EnforcementRecord {
  previousReplicas?: number;
  networkPolicyName?: string;
  /** the object enforcement acts on, KIND.GROUP/NAME */
  target?: string;
  patched?: boolean;
}

/** A condition as the reconciler sets it. */
export interface ConditionUpdate {
  status: "True" | "False" | "Unknown";
  reason: string;
  message: string;
}

export interface EnforcementOutcome {
  /** what status.enforcement keeps, so it can be given back */
  record: EnforcementRecord;
  /** the Enforced condition */
  enforced: ConditionUpdate;
  /** the EnforcementTarget condition; undefined when there is nothing to enforce on */
  target?: ConditionUpdate;
}

/** The parts of an EncryptedServer enforcement reads. */
export interface EnforcedServer {
  metadata: { namespace?: string; name?: string };
  spec: Pick<EncryptedServerSpec, "enforcement" | "workloadRef" | "enforcementPatch">;
  status?: { enforcement?: EnforcementRecord };
}

export const PREVIOUS_REPLICAS_ANNOTATION = "tde.dev/previous-replicas";
export const PREVIOUS_VALUES_ANNOTATION = "tde.dev/previous-values";
export const ENFORCED_BY_ANNOTATION = "tde.dev/enforced-by";

export const NetworkPolicyKind: ResourceKind = {
  group: "networking.k8s.io",
  version: "v1",
  plural: "networkpolicies",
  kind: "NetworkPolicy",
};

export interface EnforcerOptions {
  /** how often an Inaccessible server's enforcement is looked at again; default 30 s */
  holdIntervalMs?: number;
  /** how long a discovery answer and a resolved target are reused; default 60 s */
  cacheTtlMs?: number;
  now?: () => number;
}

const FIELD_MANAGER = "tde-operator";
const isForbidden = (error: unknown) => error instanceof ApiError && error.statusCode === 403;
const isRefused = (error: unknown) =>
  error instanceof ApiError && (error.statusCode === 422 || error.statusCode === 400);

export class Enforcer {
  readonly holdIntervalMs: number;
  private readonly scales: ScaleClient;
  private readonly cacheTtlMs: number;
  private readonly now: () => number;
  private readonly inspected = new Map<string, { at: number; spec: string; condition: ConditionUpdate }>();

  constructor(
    private readonly client: KubeClient,
    options: EnforcerOptions = {},
  ) {
    this.holdIntervalMs = options.holdIntervalMs ?? 30_000;
    this.cacheTtlMs = options.cacheTtlMs ?? 60_000;
    this.now = options.now ?? Date.now;
    this.scales = new ScaleClient(client, { discoveryTtlMs: this.cacheTtlMs, now: this.now });
  }

  /**
   * The EnforcementTarget condition of a healthy server: which object enforcement would act on
   * and whether it could. Undefined when there is nothing to enforce on. A good answer is reused
   * for the cache TTL; a bad one is looked at again at every call.
   */
  async inspect(server: EnforcedServer): Promise<ConditionUpdate | undefined> {
    const { spec } = server;
    if (spec.enforcement === "None" || !spec.workloadRef) return undefined;
    const key = `${server.metadata.namespace}/${server.metadata.name}`;
    const specKey = JSON.stringify([spec.enforcement, spec.workloadRef]);
    const hit = this.inspected.get(key);
    if (hit && hit.spec === specKey && this.now() - hit.at < this.cacheTtlMs) return hit.condition;
    let condition: ConditionUpdate;
    try {
      const resolution = await resolveTarget(this.client, this.scales, namespaceOf(server), spec.workloadRef);
      condition = (await this.targetCondition(server, resolution)).condition;
    } catch (error) {
      this.inspected.delete(key);
      return {
        status: "Unknown",
        reason: Reason.WorkloadNotReadable,
        message: `could not look up spec.workloadRef: ${(error as Error).message}`,
      };
    }
    if (condition.status === "True") this.inspected.set(key, { at: this.now(), spec: specKey, condition });
    else this.inspected.delete(key);
    return condition;
  }

  /** Takes the workload away (or holds it away); the outcome says what for the conditions. */
  async enforce(server: EnforcedServer, owner: OwnerReference): Promise<EnforcementOutcome> {
    const { spec } = server;
    const mode = spec.enforcement;
    if (mode === "None" || !spec.workloadRef) {
      return {
        record: {},
        enforced: {
          status: "False",
          reason: mode === "None" ? Reason.EnforcementDisabled : Reason.NotEnforced,
          message:
            mode === "None"
              ? "enforcement is None: the server is only reported Inaccessible"
              : "no spec.workloadRef: nothing to enforce on",
        },
      };
    }
    const resolution = await resolveTarget(this.client, this.scales, namespaceOf(server), spec.workloadRef);
    const { condition: target, usable } = await this.targetCondition(server, resolution);
    if (!resolution.ok || !usable) {
      return { record: {}, target, enforced: { ...target, status: "False" } };
    }
    try {
      const done =
        mode === "NetworkIsolation"
          ? await this.isolate(server, resolution.workload, owner)
          : mode === "Patch"
            ? await this.patch(server, resolution.target, spec.enforcementPatch as EnforcementPatch)
            : await this.scaleToZero(server, resolution.target);
      return { ...done, target };
    } catch (error) {
      const what = describeRef(mode === "NetworkIsolation" ? resolution.workload.ref : resolution.target.ref);
      if (isNotFound(error))
        return {
          record: {},
          target,
          enforced: {
            status: "False",
            reason: Reason.WorkloadNotFound,
            message: `${what} was not found: create it or fix spec.workloadRef`,
          },
        };
      if (isForbidden(error))
        return {
          record: {},
          target,
          enforced: {
            status: "False",
            reason: Reason.EnforcementForbidden,
            message: `the operator may not change ${what}: ${(error as Error).message}; grant it patch on the kind and its /scale subresource (the Helm value enforcement.scaleTargets)`,
          },
        };
      if (isRefused(error))
        return {
          record: {},
          target,
          enforced: {
            status: "False",
            reason: mode === "Patch" ? Reason.PatchRefused : Reason.ScaleRefused,
            message:
              mode === "Patch"
                ? `${what} refused spec.enforcementPatch: ${(error as Error).message}; fix spec.enforcementPatch`
                : `${what} refused 0 replicas through /scale: ${(error as Error).message}; use enforcement: Patch with the engine's own way to stop (for CloudNativePG, the cnpg.io/hibernation annotation), or NetworkIsolation`,
          },
        };
      throw error;
    }
  }

  /** Gives back what `enforce` took: the kept replica count, the patched fields' old values, the NetworkPolicy. */
  async restore(server: EnforcedServer, record: EnforcementRecord): Promise<void> {
    const namespace = namespaceOf(server);
    if (server.spec.workloadRef) {
      const resolution = await resolveTarget(this.client, this.scales, namespace, server.spec.workloadRef);
      if (resolution.ok) await this.giveBack(namespace, resolution.target, record);
    }
    const name = record.networkPolicyName ?? networkPolicyName(server.metadata.name ?? "");
    try {
      await this.client.delete(NetworkPolicyKind, namespace, name);
    } catch (error) {
      if (!isNotFound(error)) throw error;
    }
  }

  private async giveBack(namespace: string, target: Located, record: EnforcementRecord): Promise<void> {
    const annotations = target.object.metadata?.annotations ?? {};
    const kept = annotations[PREVIOUS_REPLICAS_ANNOTATION] ?? record.previousReplicas;
    const previous = decodePrevious(annotations[PREVIOUS_VALUES_ANNOTATION]);
    const forget: Record<string, null> = {};
    if (kept !== undefined && target.served.servesScale) {
      await this.scales.setReplicas(target.served.resource, namespace, target.ref.name, Number(kept));
      if (PREVIOUS_REPLICAS_ANNOTATION in annotations) forget[PREVIOUS_REPLICAS_ANNOTATION] = null;
    }
    if (previous) forget[PREVIOUS_VALUES_ANNOTATION] = null;
    const stillHeld = [PREVIOUS_REPLICAS_ANNOTATION, PREVIOUS_VALUES_ANNOTATION].some(
      (k) => k in annotations && !(k in forget),
    );
    if (ENFORCED_BY_ANNOTATION in annotations && !stillHeld) forget[ENFORCED_BY_ANNOTATION] = null;
    if (Object.keys(forget).length === 0) return;
    const patch = mergeObjects(previous ? restoringPatch(previous) : {}, {
      metadata: { annotations: forget },
    });
    await this.patchObject(target, namespace, patch);
  }

  private async scaleToZero(server: EnforcedServer, target: Located) {
    const namespace = namespaceOf(server);
    const scale = await this.scales.getScale(target.served.resource, namespace, target.ref.name);
    const kept = target.object.metadata?.annotations?.[PREVIOUS_REPLICAS_ANNOTATION];
    // the annotation first, then the status: a count someone removed from the target is not lost
    const previous =
      kept !== undefined
        ? Number(kept)
        : (server.status?.enforcement?.previousReplicas ?? scale.spec?.replicas ?? 0);
    if (kept === undefined) {
      // recorded first: a crash between the two writes leaves a count to give back
      await this.patchObject(target, namespace, {
        metadata: {
          annotations: {
            [PREVIOUS_REPLICAS_ANNOTATION]: String(previous),
            [ENFORCED_BY_ANNOTATION]: server.metadata.name ?? "",
          },
        },
      });
    }
    // a Scale leaves out replicas: 0 (omitempty)
    if ((scale.spec?.replicas ?? 0) !== 0) {
      try {
        await this.scales.setReplicas(target.served.resource, namespace, target.ref.name, 0);
      } catch (error) {
        // a kind that refuses 0 keeps no record of a count that was never taken
        if (isRefused(error) && kept === undefined)
          await this.patchObject(target, namespace, {
            metadata: {
              annotations: { [PREVIOUS_REPLICAS_ANNOTATION]: null, [ENFORCED_BY_ANNOTATION]: null },
            },
          });
        throw error;
      }
    }
    const what = describeRef(target.ref);
    return {
      record: { previousReplicas: previous, target: what },
      enforced: {
        status: "True" as const,
        reason: Reason.ScaledToZero,
        message: `${what} scaled to 0 through /scale (was ${previous}); the count is given back on revalidation`,
      },
    };
  }

  private async patch(server: EnforcedServer, target: Located, declared: EnforcementPatch) {
    const namespace = namespaceOf(server);
    const what = describeRef(target.ref);
    const recorded = target.object.metadata?.annotations?.[PREVIOUS_VALUES_ANNOTATION];
    if (recorded === undefined) {
      const record = encodePrevious(previousValues(target.object, declared));
      await this.patchObject(
        target,
        namespace,
        mergeObjects(declared, {
          metadata: {
            annotations: {
              [PREVIOUS_VALUES_ANNOTATION]: record,
              [ENFORCED_BY_ANNOTATION]: server.metadata.name ?? "",
            },
          },
        }),
      );
    } else if (!patchHolds(target.object, declared)) {
      await this.patchObject(target, namespace, declared);
    }
    return {
      record: { patched: true, target: what },
      enforced: {
        status: "True" as const,
        reason: Reason.Patched,
        message: `spec.enforcementPatch holds on ${what}; the values it replaced are kept in its ${PREVIOUS_VALUES_ANNOTATION} annotation and put back on revalidation`,
      },
    };
  }

  private async isolate(server: EnforcedServer, workload: Located, owner: OwnerReference) {
    const namespace = namespaceOf(server);
    const serverName = server.metadata.name ?? "";
    const selector = await this.podSelector(namespace, workload);
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
      spec: { podSelector: selector, policyTypes: ["Ingress"], ingress: [] },
    };
    try {
      await this.client.create(NetworkPolicyKind, namespace, policy);
    } catch (error) {
      if (!isAlreadyExists(error)) throw error;
    }
    return {
      record: { networkPolicyName: name },
      enforced: {
        status: "True" as const,
        reason: Reason.NetworkIsolated,
        message: `NetworkPolicy ${name} denies all ingress to the pods of ${describeRef(workload.ref)}; removed on revalidation`,
      },
    };
  }

  /** The workload's pods: its spec.selector, else the label selector its /scale reports. */
  private async podSelector(
    namespace: string,
    workload: Located,
  ): Promise<Record<string, unknown> | undefined> {
    const own = (workload.object.spec as { selector?: unknown } | undefined)?.selector;
    if (own && typeof own === "object") return own as Record<string, unknown>;
    if (!workload.served.servesScale) return undefined;
    const scale = await this.scales.getScale(workload.served.resource, namespace, workload.ref.name);
    return selectorFromString(scale.status?.selector);
  }

  /** The EnforcementTarget condition, and whether enforcement in the server's mode can act on it. */
  private async targetCondition(
    server: EnforcedServer,
    resolution: TargetResolution,
  ): Promise<{ condition: ConditionUpdate; usable: boolean }> {
    if (!resolution.ok) {
      return {
        condition: { status: "False", reason: resolution.reason, message: resolution.message },
        usable: false,
      };
    }
    const mode = server.spec.enforcement;
    const { workload, target, owners } = resolution;
    if (mode === "NetworkIsolation") {
      const selector = await this.podSelector(namespaceOf(server), workload);
      return selector
        ? {
            condition: {
              status: "True",
              reason: Reason.WorkloadResolved,
              message: `NetworkIsolation acts on the pods of ${describeRef(workload.ref)}`,
            },
            usable: true,
          }
        : {
            condition: {
              status: "False",
              reason: Reason.SelectorUnknown,
              message: `${describeRef(workload.ref)} has no label selector the operator can read (spec.selector, or the status.selector of its /scale): use ScaleToZero or Patch`,
            },
            usable: false,
          };
    }
    if (mode === "Patch") {
      const problem = patchProblem(server.spec.enforcementPatch);
      if (problem)
        return {
          condition: { status: "False", reason: Reason.PatchRefused, message: problem },
          usable: false,
        };
    } else if (!target.served.servesScale) {
      return {
        condition: {
          status: "False",
          reason: Reason.ScaleNotServed,
          message: `${describeRef(target.ref)}${owners.length > 0 ? ` (the controller of ${describeRef(workload.ref)})` : ""} does not serve the /scale subresource: use enforcement: Patch with the engine's own way to stop, or NetworkIsolation`,
        },
        usable: false,
      };
    }
    const how = mode === "Patch" ? "spec.enforcementPatch" : "ScaleToZero (through /scale)";
    if (owners.length === 0) {
      return {
        condition: {
          status: "True",
          reason: Reason.WorkloadResolved,
          message: `${how} acts on ${describeRef(target.ref)}`,
        },
        usable: true,
      };
    }
    const chain = [workload, ...owners].map((o) => describeRef(o.ref)).join(" is controlled by ");
    return {
      condition: {
        status: "True",
        reason: Reason.OwnerTargeted,
        message: `${chain}: ${how} acts on ${describeRef(target.ref)}, never behind its controller's back; point spec.workloadRef at {apiVersion: ${target.ref.apiVersion}, kind: ${target.ref.kind}, name: ${target.ref.name}} to say so`,
      },
      usable: true,
    };
  }

  private async patchObject(target: Located, namespace: string, patch: object): Promise<void> {
    await this.client.patch(target.served.resource, namespace, target.ref.name, patch, {
      type: PatchType.Merge,
      fieldManager: FIELD_MANAGER,
    });
  }
}

function namespaceOf(server: EnforcedServer): string {
  return server.metadata.namespace ?? "";
}

/** A deep merge of two JSON merge patches (b wins). */
function mergeObjects(a: object, b: object): Record<string, unknown> {
  const out: Record<string, unknown> = { ...(a as Record<string, unknown>) };
  for (const [k, v] of Object.entries(b)) {
    const mine = out[k];
    out[k] =
      v &&
      typeof v === "object" &&
      !Array.isArray(v) &&
      mine &&
      typeof mine === "object" &&
      !Array.isArray(mine)
        ? mergeObjects(mine, v)
        : v;
  }
  return out;
}

/** R32: within 253 characters and distinct for distinct servers (a long name is shortened with a hash). */
export function networkPolicyName(serverName: string): string {
  return boundedName("", `${serverName}-tde-isolation`);
}
