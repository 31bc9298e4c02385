import { retryOnConflict } from "./conflict.js";
import { clone, deepEqual } from "./deep-equal.js";
import type { KubeClient } from "./kube-client.js";
import type { KubeObject, ObjectMeta, ResourceKind } from "./resource.js";

/** The metadata fields a controller edits. */
export type EditableMeta = Pick<ObjectMeta, "labels" | "annotations" | "finalizers" | "ownerReferences">;

export interface MetadataWriteResult<T> {
  written: boolean;
  object: T;
}

/**
 * Edits an object's labels, annotations, finalizers or owner references with a JSON merge patch
 * that carries the read's resourceVersion as a precondition; on 409 Conflict it re-reads and
 * applies `mutate` again. Nothing is sent when `mutate` changes nothing.
 */
export async function patchMetadata<T extends KubeObject>(
  client: KubeClient,
  kind: ResourceKind,
  current: T,
  mutate: (meta: EditableMeta, object: T) => void,
  options: { maxConflictRetries?: number } = {},
): Promise<MetadataWriteResult<T>> {
  const namespace = current.metadata?.namespace ?? "";
  const name = current.metadata?.name ?? "";
  let base = current;
  return retryOnConflict(async (attempt) => {
    if (attempt > 0) base = await client.get<T>(kind, namespace, name);
    const before = editable(base.metadata);
    const draft = clone(before);
    mutate(draft, base);
    const patch = metaPatch(before, draft);
    if (Object.keys(patch).length === 0) return { written: false, object: base };
    const object = await client.patch<T>(kind, namespace, name, {
      metadata: { ...patch, resourceVersion: base.metadata?.resourceVersion },
    });
    return { written: true, object };
  }, options.maxConflictRetries ?? 5);
}

/** Sets (string) or removes (null) annotations; no write when they already are so. */
export function setAnnotations<T extends KubeObject>(
  client: KubeClient,
  kind: ResourceKind,
  current: T,
  annotations: Record<string, string | null>,
): Promise<MetadataWriteResult<T>> {
  return patchMetadata(client, kind, current, (meta) => {
    for (const [k, v] of Object.entries(annotations)) {
      if (v === null) {
        if (meta.annotations) delete meta.annotations[k];
      } else {
        meta.annotations = { ...meta.annotations, [k]: v };
      }
    }
  });
}

/** Sets (string) or removes (null) labels; no write when they already are so. */
export function setLabels<T extends KubeObject>(
  client: KubeClient,
  kind: ResourceKind,
  current: T,
  labels: Record<string, string | null>,
): Promise<MetadataWriteResult<T>> {
  return patchMetadata(client, kind, current, (meta) => {
    for (const [k, v] of Object.entries(labels)) {
      if (v === null) {
        if (meta.labels) delete meta.labels[k];
      } else {
        meta.labels = { ...meta.labels, [k]: v };
      }
    }
  });
}

function editable(meta: ObjectMeta | undefined): EditableMeta {
  return clone({
    labels: meta?.labels,
    annotations: meta?.annotations,
    finalizers: meta?.finalizers,
    ownerReferences: meta?.ownerReferences,
  });
}

/** A merge patch turning `before` into `after`: maps patched key by key (null deletes), lists whole. */
function metaPatch(before: EditableMeta, after: EditableMeta): Record<string, unknown> {
  const patch: Record<string, unknown> = {};
  for (const field of ["labels", "annotations"] as const) {
    const b = before[field] ?? {};
    const a = after[field] ?? {};
    const diff: Record<string, string | null> = {};
    for (const k of Object.keys(b)) if (!(k in a)) diff[k] = null;
    for (const [k, v] of Object.entries(a)) if (b[k] !== v) diff[k] = v;
    if (Object.keys(diff).length > 0) patch[field] = diff;
  }
  for (const field of ["finalizers", "ownerReferences"] as const) {
    const b = before[field] ?? [];
    const a = after[field] ?? [];
    if (!deepEqual(b, a)) patch[field] = a.length > 0 ? a : null;
  }
  return patch;
}
