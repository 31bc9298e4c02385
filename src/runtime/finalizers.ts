import type { KubeClient } from "./kube-client.js";
import { type MetadataWriteResult, patchMetadata } from "./metadata.js";
import type { KubeObject, ResourceKind } from "./resource.js";

export function hasFinalizer(obj: KubeObject, finalizer: string): boolean {
  return obj.metadata?.finalizers?.includes(finalizer) ?? false;
}

/** True once deletion was requested; with a finalizer of ours present, the object stays until we remove it. */
export function isBeingDeleted(obj: KubeObject): boolean {
  return Boolean(obj.metadata?.deletionTimestamp);
}

/** Adds `finalizer` unless present (no write then). Guarded by resourceVersion, retried on conflict. */
export function addFinalizer<T extends KubeObject>(
  client: KubeClient,
  kind: ResourceKind,
  obj: T,
  finalizer: string,
): Promise<MetadataWriteResult<T>> {
  return patchMetadata(client, kind, obj, (meta) => {
    const list = meta.finalizers ?? [];
    if (!list.includes(finalizer)) meta.finalizers = [...list, finalizer];
  });
}

/** Removes `finalizer` if present (no write otherwise). Guarded by resourceVersion, retried on conflict. */
export function removeFinalizer<T extends KubeObject>(
  client: KubeClient,
  kind: ResourceKind,
  obj: T,
  finalizer: string,
): Promise<MetadataWriteResult<T>> {
  return patchMetadata(client, kind, obj, (meta) => {
    if (meta.finalizers?.includes(finalizer))
      meta.finalizers = meta.finalizers.filter((f) => f !== finalizer);
  });
}
