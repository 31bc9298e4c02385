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
): string | undefined {
  const history = db.status?.keyList ?? [];
  const current = db.status?.effectiveProtector?.thumbprint;
  const previous = history
    .filter((e) => e.role === "protector" && e.until !== undefined && e.thumbprint !== current)
    .sort((a, b) => Date.parse(b.until ?? "") - Date.parse(a.until ?? ""))[0];
  if (!previous || previous.thumbprint === targetThumbprint) return undefined;
  const users = secondariesOf(db, databases).filter(
    (s) => s.status?.effectiveProtector?.thumbprint === previous.thumbprint,
  );
  if (users.length === 0) return undefined;
  const names = users.map((s) => `${s.metadata.namespace}/${s.metadata.name}`).join(", ");
  return `KeyRotationAttemptedWhileOldThumbprintInUse: the previous protector ${previous.thumbprint.slice(0, 12)} is still the protector of secondary ${names}; the rotation waits until they have moved to the current key, then goes ahead by itself`;
}

/** Databases that name this one as their primary (any namespace). */
export function secondariesOf(
  db: Kube<EncryptedDatabase>,
  databases: Store<Kube<EncryptedDatabase>>,
): Kube<EncryptedDatabase>[] {
  const ns = db.metadata.namespace;
  const name = db.metadata.name;
  return databases
    .list()
    .filter(
      (d) =>
        d.spec.replication?.role === "Secondary" &&
        d.spec.replication.primaryRef?.name === name &&
        (d.spec.replication.primaryRef?.namespace ?? d.metadata.namespace) === ns,
    );
}
