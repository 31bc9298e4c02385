import type { KubeObject, ResourceKind } from "./resource.js";

/** Content types the API server accepts for PATCH. */
export const PatchType = {
  Merge: "application/merge-patch+json",
  Json: "application/json-patch+json",
  StrategicMerge: "application/strategic-merge-patch+json",
  Apply: "application/apply-patch+yaml",
} as const;
export type PatchType = (typeof PatchType)[keyof typeof PatchType];

export interface ListOptions {
  labelSelector?: string;
  fieldSelector?: string;
  resourceVersion?: string;
  limit?: number;
  continue?: string;
}

export interface ObjectList<T extends KubeObject = KubeObject> {
  metadata: { resourceVersion?: string; continue?: string };
  items: T[];
}

export interface WriteOptions {
  subresource?: string;
  fieldManager?: string;
}

export interface PatchOptions extends WriteOptions {
  /** Defaults to a JSON merge patch. */
  type?: PatchType;
  /** Server-side apply only. */
  force?: boolean;
}

/** One API call, reported to an observer (to count writes in tests, or for metrics). */
/** One resource of a group/version as discovery lists it, e.g. `clusters` or `clusters/scale`. */
export interface ApiResource {
  name: string;
  kind: string;
  namespaced: boolean;
  verbs?: string[];
}

/** What the API server serves for one group/version (`GET /apis/GROUP/VERSION`). */
export interface ApiResourceList {
  groupVersion: string;
  resources: ApiResource[];
}

export interface ApiCall {
  verb: "get" | "list" | "create" | "update" | "patch" | "delete" | "discover";
  resource: string;
  subresource?: string;
  namespace?: string;
  name?: string;
  /** HTTP status code, 0 when the request did not reach the server. */
  code: number;
}
export type ApiObserver = (call: ApiCall) => void;

/** One event of a watch stream as the API server sends it. */
export interface WatchEvent {
  type: "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";
  object: KubeObject;
}

export interface WatchOptions {
  resourceVersion?: string;
  labelSelector?: string;
  fieldSelector?: string;
  allowWatchBookmarks?: boolean;
  timeoutSeconds?: number;
}

/** A running watch; `stop()` ends it and the `done` callback is called once. */
export interface WatchHandle {
  stop(): void;
}

/**
 * The narrow port through which the runtime reaches the Kubernetes API. `HttpKubeClient` is the
 * real adapter; tests may pass a fake. Every method throws `ApiError` on a non-2xx answer.
 */
export interface KubeClient {
  /** GET of an object, or of one of its subresources (e.g. "scale"). */
  get<T extends KubeObject = KubeObject>(
    kind: ResourceKind,
    namespace: string,
    name: string,
    options?: { subresource?: string },
  ): Promise<T>;
  /** Discovery: the resources a group/version (`apps/v1`, `v1`) serves; ApiError 404 when none. */
  discover(apiVersion: string): Promise<ApiResourceList>;
  list<T extends KubeObject = KubeObject>(
    kind: ResourceKind,
    namespace?: string,
    options?: ListOptions,
  ): Promise<ObjectList<T>>;
  create<T extends KubeObject = KubeObject>(kind: ResourceKind, namespace: string, body: T): Promise<T>;
  /** PUT; with `metadata.resourceVersion` set it is an optimistic-concurrency update. */
  replace<T extends KubeObject = KubeObject>(
    kind: ResourceKind,
    namespace: string,
    name: string,
    body: T,
    options?: WriteOptions,
  ): Promise<T>;
  patch<T extends KubeObject = KubeObject>(
    kind: ResourceKind,
    namespace: string,
    name: string,
    patch: unknown,
    options?: PatchOptions,
  ): Promise<T>;
  delete(
    kind: ResourceKind,
    namespace: string,
    name: string,
    options?: {
      propagationPolicy?: "Foreground" | "Background" | "Orphan";
      preconditions?: { uid?: string };
    },
  ): Promise<void>;
  watch(
    kind: ResourceKind,
    namespace: string | undefined,
    options: WatchOptions,
    onEvent: (event: WatchEvent) => void,
    onDone: (err: unknown) => void,
  ): Promise<WatchHandle>;
}
