/**
 * R10: which object enforcement acts on. A workload that another controller owns (an
 * ownerReference with `controller: true`, e.g. the StatefulSet of a mariadb-operator MariaDB) is
 * never scaled behind its owner's back: the owner would put the replicas back within seconds.
 * Enforcement follows the chain of controllers up to the top one, and the server says which
 * object to point `spec.workloadRef` at.
 */
import { DEFAULT_WORKLOAD_API_VERSION, type WorkloadRef } from "../api/index.js";
import { ApiError, isNotFound, type KubeClient, type KubeObject } from "../runtime/index.js";
import {
  describeRef,
  KindNotServedError,
  type ObjectRef,
  type ScaleClient,
  type ServedKind,
} from "./scale-client.js";

/** How deep a chain of controllers is followed (Deployment -> ReplicaSet is 1). */
export const MAX_OWNER_DEPTH = 5;

/** An object found, with its kind as served. */
export interface Located {
  ref: ObjectRef;
  served: ServedKind;
  object: KubeObject;
}

export type TargetResolution =
  | {
      ok: true;
      /** what spec.workloadRef names */
      workload: Located;
      /** what enforcement acts on: the workload, or the top of its chain of controllers */
      target: Located;
      /** the controllers between them, nearest first (empty: the workload is its own target) */
      owners: Located[];
    }
  | { ok: false; reason: TargetProblem; message: string };

export const TargetProblem = {
  WorkloadNotFound: "WorkloadNotFound",
  KindNotServed: "KindNotServed",
  OwnerNotReadable: "OwnerNotReadable",
  WorkloadNotReadable: "WorkloadNotReadable",
} as const;
export type TargetProblem = (typeof TargetProblem)[keyof typeof TargetProblem];

/** spec.workloadRef with its apiVersion (a StatefulSet or Deployment may leave it out). */
export function workloadObjectRef(ref: WorkloadRef): ObjectRef {
  return { apiVersion: ref.apiVersion ?? DEFAULT_WORKLOAD_API_VERSION, kind: ref.kind, name: ref.name };
}

/** The controlling owner of an object, if any. */
export function controllerOf(object: KubeObject): ObjectRef | undefined {
  const owner = object.metadata?.ownerReferences?.find((o) => o.controller === true);
  return owner ? { apiVersion: owner.apiVersion, kind: owner.kind, name: owner.name } : undefined;
}

const isForbidden = (error: unknown) => error instanceof ApiError && error.statusCode === 403;

export async function resolveTarget(
  client: KubeClient,
  scales: ScaleClient,
  namespace: string,
  workloadRef: WorkloadRef,
): Promise<TargetResolution> {
  const ref = workloadObjectRef(workloadRef);
  const workload = await locate(client, scales, namespace, ref);
  if ("problem" in workload) {
    const { problem, detail } = workload;
    if (problem === TargetProblem.WorkloadNotFound)
      return {
        ok: false,
        reason: problem,
        message: `${describeRef(ref)} was not found: create it or fix spec.workloadRef`,
      };
    if (problem === TargetProblem.KindNotServed)
      return {
        ok: false,
        reason: problem,
        message: `spec.workloadRef names ${describeRef(ref)}, but ${detail}`,
      };
    return {
      ok: false,
      reason: TargetProblem.WorkloadNotReadable,
      message: `the operator may not read ${describeRef(ref)}: ${grantAdvice(ref)}`,
    };
  }
  const owners: Located[] = [];
  let current = workload;
  for (let depth = 0; depth < MAX_OWNER_DEPTH; depth++) {
    const ownerRef = controllerOf(current.object);
    if (!ownerRef) break;
    const owner = await locate(client, scales, namespace, ownerRef);
    if ("problem" in owner) {
      // an owner being deleted (garbage collection pending) no longer resets anything
      if (owner.problem === TargetProblem.WorkloadNotFound) break;
      return {
        ok: false,
        reason: TargetProblem.OwnerNotReadable,
        message:
          owner.problem === TargetProblem.KindNotServed
            ? `${describeRef(current.ref)} is controlled by ${describeRef(ownerRef)}, but ${owner.detail}`
            : `${describeRef(current.ref)} is controlled by ${describeRef(ownerRef)}, which the operator may not read: ${grantAdvice(ownerRef)}; enforcement never acts behind an owner's back`,
      };
    }
    owners.push(owner);
    current = owner;
  }
  return { ok: true, workload, target: current, owners };
}

type LocateResult = Located | { problem: TargetProblem; detail: string };

async function locate(
  client: KubeClient,
  scales: ScaleClient,
  namespace: string,
  ref: ObjectRef,
): Promise<LocateResult> {
  let served: ServedKind;
  try {
    served = await scales.kind(ref.apiVersion, ref.kind);
  } catch (error) {
    if (error instanceof KindNotServedError)
      return { problem: TargetProblem.KindNotServed, detail: error.message };
    throw error;
  }
  try {
    return { ref, served, object: await client.get(served.resource, namespace, ref.name) };
  } catch (error) {
    if (isNotFound(error)) return { problem: TargetProblem.WorkloadNotFound, detail: "" };
    if (isForbidden(error)) return { problem: TargetProblem.WorkloadNotReadable, detail: "" };
    throw error;
  }
}

function grantAdvice(ref: ObjectRef): string {
  const slash = ref.apiVersion.lastIndexOf("/");
  const group = slash < 0 ? "" : ref.apiVersion.slice(0, slash);
  return `grant it get and patch on ${ref.kind} (group ${group || "core"}) and on its /scale subresource (the Helm value enforcement.scaleTargets, docs/operating.md "RBAC")`;
}
