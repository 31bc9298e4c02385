import type { EncryptedDatabase, KeyProtector } from "../api/index.js";
import type { Envelope, EnvelopeOwner } from "../crypto/index.js";
import type { KubeObject, Store } from "../runtime/index.js";
import type { EnvelopeSecret } from "./dek-operations.js";
import { envelopeFromCache } from "./envelope-summary.js";
import { thumbprintsAt } from "./key-history.js";
import { envelopeSecretName, type Kube } from "./resources.js";

type Database = Kube<EncryptedDatabase>;

export type RestorePlan =
  | {
      ok: true;
      source: EnvelopeSecret;
      sourceNamespace: string;
      needed: string[];
      /** R31: the resource the source envelope must be bound to */
      sourceOwner: EnvelopeOwner;
      /** the DEK id the source's status records (none once it is dropped) */
      sourceRecordedDekID?: string;
    }
  | {
      ok: false;
      reason: "SourceNotFound" | "NotAllowedBySource" | "MissingRestoreKeys";
      message: string;
      missing?: string[];
    };

/**
 * R24, R31: where a restore's DEK comes from and whether it may be taken. The source is the
 * database (or, once dropped, its retained envelope, R25); the keys given in spec.restore.keys
 * must hold every thumbprint that protected the source at pointInTime (its key history, R18, or
 * the retained envelope's wraps). Nothing is created unless the whole plan holds.
 */
export function planRestore(
  db: Database,
  databases: Store<Database>,
  envelopes: Store<KubeObject>,
  keyProtectors: Store<Kube<KeyProtector>>,
  now: Date,
): RestorePlan {
  const restore = db.spec.restore;
  const ownNs = db.metadata.namespace ?? "";
  if (!restore) return { ok: false, reason: "SourceNotFound", message: "no spec.restore" };
  const sourceNs = restore.sourceRef.namespace ?? ownNs;
  const sourceName = restore.sourceRef.name;
  const sourceDb = databases.get(sourceNs, sourceName);
  const refused = notAllowedBySource(db, sourceDb, sourceNs, sourceName);
  if (refused) return refused;
  const secret = envelopes.get(sourceNs, envelopeSecretName("EncryptedDatabase", sourceName));
  if (!secret) {
    return {
      ok: false,
      reason: "SourceNotFound",
      message: `no envelope of ${sourceNs}/${sourceName} exists (it was never created, or it was shredded): nothing can be restored`,
    };
  }
  const source = envelopeFromCache(secret);
  const at = restore.pointInTime ? new Date(restore.pointInTime) : now;
  const needed = neededThumbprints(sourceDb, source.envelope, at);
  if (needed.length === 0) {
    return {
      ok: false,
      reason: "SourceNotFound",
      message: `${sourceNs}/${sourceName} had no key at ${at.toISOString()}: choose a pointInTime after it was created`,
    };
  }
  const provided = new Set(
    (restore.keys ?? [])
      .map((k) => keyProtectors.get(ownNs, k.keyProtectorRef.name)?.status?.thumbprint)
      .filter((t): t is string => Boolean(t)),
  );
  const missing = needed.filter((t) => !provided.has(t));
  if (missing.length > 0) {
    return {
      ok: false,
      reason: "MissingRestoreKeys",
      message: `spec.restore.keys lacks ${missing.length} key(s) that protected ${sourceNs}/${sourceName} at ${at.toISOString()}: thumbprints ${missing.join(", ")}; add KeyProtectors holding them (in this namespace) to spec.restore.keys`,
      missing,
    };
  }
  return {
    ok: true,
    source,
    sourceNamespace: sourceNs,
    needed,
    sourceOwner: { kind: "EncryptedDatabase", namespace: sourceNs, name: sourceName },
    ...(sourceDb?.status?.dekID ? { sourceRecordedDekID: sourceDb.status.dekID } : {}),
  };
}

/** R31: a restore from another namespace needs its source to name it in spec.allowedRestoreTargets. */
function notAllowedBySource(
  db: Database,
  sourceDb: Database | undefined,
  sourceNs: string,
  sourceName: string,
): Extract<RestorePlan, { ok: false }> | undefined {
  const ownNs = db.metadata.namespace ?? "";
  if (sourceNs === ownNs) return undefined;
  const allowed = sourceDb?.spec.allowedRestoreTargets?.some(
    (t) => t.namespace === ownNs && t.name === db.metadata.name,
  );
  if (allowed) return undefined;
  return {
    ok: false,
    reason: "NotAllowedBySource",
    message: sourceDb
      ? `source ${sourceNs}/${sourceName} does not list ${ownNs}/${db.metadata.name} in spec.allowedRestoreTargets: add it there (R31)`
      : `source ${sourceNs}/${sourceName} is gone, so it cannot confirm this restore target; restore a dropped database in its own namespace (R31)`,
  };
}

/**
 * R18, R24: the thumbprints that protected the source at `at`: from its key history while the
 * source exists, else (a dropped database) from the wraps its retained envelope had by then.
 */
function neededThumbprints(sourceDb: Database | undefined, envelope: Envelope, at: Date): string[] {
  const history = sourceDb?.status?.keyList;
  if (history && history.length > 0) return thumbprintsAt(history, at);
  return [
    ...new Set(envelope.wraps.filter((w) => Date.parse(w.addedAt) <= at.getTime()).map((w) => w.thumbprint)),
  ];
}
