/**
 * A kind as the API server serves it: enough to build every URL of it. The runtime knows no
 * kind of ours; callers describe theirs with this.
 */
export interface ResourceKind {
  /** API group; "" for the core group (Secrets, Events, ConfigMaps). */
  readonly group: string;
  readonly version: string;
  /** Lower-case plural as in the URL, e.g. "keyprotectors". */
  readonly plural: string;
  /** The `kind` field of objects of this resource, e.g. "KeyProtector". */
  readonly kind: string;
  /** False for cluster-scoped kinds. Defaults to true. */
  readonly namespaced?: boolean;
}

/** The minimal shape of any object the runtime handles. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: ObjectMeta;
  [field: string]: unknown;
}

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: OwnerReference[];
  [field: string]: unknown;
}

/** A namespaced name, the unit of work of a reconciler. */
export interface ObjectKey {
  readonly namespace: string;
  readonly name: string;
}

/** `group/version`, or just `version` for the core group. */
export function apiVersionOf(kind: ResourceKind): string {
  return kind.group === "" ? kind.version : `${kind.group}/${kind.version}`;
}

/** The collection URL of a kind, in one namespace or across all of them. */
export function collectionPath(kind: ResourceKind, namespace?: string): string {
  const root = kind.group === "" ? `/api/${kind.version}` : `/apis/${kind.group}/${kind.version}`;
  const scoped = kind.namespaced !== false && namespace ? `/namespaces/${encodeURIComponent(namespace)}` : "";
  return `${root}${scoped}/${kind.plural}`;
}

/** The URL of one object, optionally of one of its subresources (e.g. "status"). */
export function objectPath(
  kind: ResourceKind,
  namespace: string,
  name: string,
  subresource?: string,
): string {
  const base = `${collectionPath(kind, namespace)}/${encodeURIComponent(name)}`;
  return subresource ? `${base}/${subresource}` : base;
}

/** The queue key of an object: "namespace/name", or "name" when cluster-scoped. */
export function keyOf(obj: { metadata?: { namespace?: string; name?: string } }): string {
  const ns = obj.metadata?.namespace;
  const name = obj.metadata?.name ?? "";
  return ns ? `${ns}/${name}` : name;
}

export function keyString(key: ObjectKey): string {
  return key.namespace ? `${key.namespace}/${key.name}` : key.name;
}

export function parseKey(key: string): ObjectKey {
  const slash = key.indexOf("/");
  return slash < 0
    ? { namespace: "", name: key }
    : { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}
