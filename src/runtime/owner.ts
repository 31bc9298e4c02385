import type { KubeObject, ObjectKey, OwnerReference } from "./resource.js";

/**
 * An owner reference to `owner`. Owner and dependant must share a namespace (or the owner be
 * cluster-scoped). `controller: true` marks the one managing controller.
 */
export function ownerReference(
  owner: KubeObject,
  options: { controller?: boolean; blockOwnerDeletion?: boolean } = {},
): OwnerReference {
  const m = owner.metadata;
  if (!owner.apiVersion || !owner.kind || !m?.name || !m.uid) {
    throw new Error("an owner reference needs the owner's apiVersion, kind, name and uid");
  }
  return {
    apiVersion: owner.apiVersion,
    kind: owner.kind,
    name: m.name,
    uid: m.uid,
    controller: options.controller ?? true,
    blockOwnerDeletion: options.blockOwnerDeletion ?? true,
  };
}

/** `refs` with `ref` added, or replacing the entry with the same uid. A second controller is refused. */
export function withOwnerReference(
  refs: readonly OwnerReference[] | undefined,
  ref: OwnerReference,
): OwnerReference[] {
  const list = (refs ?? []).filter((r) => r.uid !== ref.uid);
  if (ref.controller && list.some((r) => r.controller)) {
    throw new Error(`object already has a controller owner; refusing to add ${ref.kind}/${ref.name}`);
  }
  return [...list, ref];
}

export function isOwnedBy(obj: KubeObject, owner: KubeObject): boolean {
  const uid = owner.metadata?.uid;
  return Boolean(uid) && (obj.metadata?.ownerReferences ?? []).some((r) => r.uid === uid);
}

/** The controlling owner's reference, if any. */
export function controllerOf(obj: KubeObject): OwnerReference | undefined {
  return obj.metadata?.ownerReferences?.find((r) => r.controller);
}

/**
 * A mapper for `Controller.watch`: a dependant maps to its controlling owner of `ownerKind`
 * (in the dependant's namespace), e.g. an envelope Secret to its EncryptedDatabase.
 */
export function mapToOwner(ownerApiGroup: string, ownerKind: string): (obj: KubeObject) => ObjectKey[] {
  return (obj) =>
    (obj.metadata?.ownerReferences ?? [])
      .filter((r) => r.controller && r.kind === ownerKind && groupOf(r.apiVersion) === ownerApiGroup)
      .map((r) => ({ namespace: obj.metadata?.namespace ?? "", name: r.name }));
}

function groupOf(apiVersion: string): string {
  const slash = apiVersion.indexOf("/");
  return slash < 0 ? "" : apiVersion.slice(0, slash);
}
