import type { EncryptedDatabase } from "../api/index.js";
import type { Store } from "../runtime/index.js";
import type { Kube } from "./resources.js";

/**
 * R17: a rotation to a new key is refused while the protector before the current one is still in
 * use, that is while a secondary of this database still has it as its protector. Returns the
 * waiting message, or undefined when the rotation may go ahead.
 */
export function rotationBlocker(
  db: Kube<EncryptedDatabase>,
  databases: Store<Kube<EncryptedDatabase>>,
  targetThumbprint: string,
  /** linked secondaries in other clusters ("cluster/namespace/name") and their protectors */
  remote: readonly { name: string; protector: string | undefined }[] = [],
): string | undefined {
  const history = db.status?.keyList ?? [];
  const current = db.status?.effectiveProtector?.thumbprint;
  const previous = history
    .filter((e) => e.role === "protector" && e.until !== undefined && e.thumbprint !== current)
    .sort((a, b) => Date.parse(b.until ?? "") - Date.parse(a.until ?? ""))[0];
  if (!previous || previous.thumbprint === targetThumbprint) return undefined;
  const users = [
    ...secondariesOf(db, databases).map((s) => ({
      name: `${s.metadata.namespace}/${s.metadata.name}`,
      protector: s.status?.effectiveProtector?.thumbprint,
    })),
    ...remote,
  ].filter((s) => s.protector === previous.thumbprint);
  if (users.length === 0) return undefined;
  const names = users.map((s) => s.name).join(", ");
  return `KeyRotationAttemptedWhileOldThumbprintInUse: the previous protector ${previous.thumbprint.slice(0, 12)} is still the protector of secondary ${names}; the rotation waits until they have moved to the current key, then goes ahead by itself`;
}

/** The store index of databases by the primary they name ("namespace/name"); the operator registers it. */
export const BY_PRIMARY = "byPrimary";

export function primaryIndexValues(d: Kube<EncryptedDatabase>): string[] {
  const r = d.spec.replication;
  if (r?.role !== "Secondary" || !r.primaryRef || r.primaryRef.cluster) return [];
  return [`${r.primaryRef.namespace ?? d.metadata.namespace}/${r.primaryRef.name}`];
}

/** Databases that name this one as their primary (any namespace), from the index: no scan of the fleet. */
export function secondariesOf(
  db: Kube<EncryptedDatabase>,
  databases: Store<Kube<EncryptedDatabase>>,
): Kube<EncryptedDatabase>[] {
  return databases.byIndex(BY_PRIMARY, `${db.metadata.namespace}/${db.metadata.name}`);
}
