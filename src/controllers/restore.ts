import { ConditionType, type EncryptedDatabase, findCondition, type KeyProtector } from "../api/index.js";
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
  const named = (restore.keys ?? []).map((k) => k.keyProtectorRef.name);
  const provided = new Set(
    named
      .map((name) => keyProtectors.get(ownNs, name)?.status?.thumbprint)
      .filter((t): t is string => Boolean(t)),
  );
  const missing = needed.filter((t) => !provided.has(t));
  if (missing.length > 0) {
    const hints = restoreKeyHints(ownNs, named, missing, keyProtectors);
    return {
      ok: false,
      reason: "MissingRestoreKeys",
      message: `spec.restore.keys lacks ${missing.length} key(s) that protected ${sourceNs}/${sourceName} at ${at.toISOString()}: thumbprints ${missing.join(", ")}; add KeyProtectors holding them (in this namespace) to spec.restore.keys${hints.length > 0 ? `: ${hints.join("; ")}` : ""}`,
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
      : `source ${sourceNs}/${sourceName} does not exist (not created yet, or deleted), so it cannot confirm this restore target: create it with ${ownNs}/${db.metadata.name} in spec.allowedRestoreTargets; a dropped database can be restored in its own namespace only (R31)`,
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

/**
 * What to do about the keys a restore lacks (R24): a KeyProtector it names that does not exist or
 * has not resolved its key yet (and why), and one of the namespace that holds a missing key but is
 * not named.
 */
function restoreKeyHints(
  namespace: string,
  named: readonly string[],
  missing: readonly string[],
  keyProtectors: Store<Kube<KeyProtector>>,
): string[] {
  const hints: string[] = [];
  for (const name of named) {
    const kp = keyProtectors.get(namespace, name);
    if (!kp)
      hints.push(
        `KeyProtector ${name} (spec.restore.keys) does not exist in namespace ${namespace}: create it`,
      );
    else if (!kp.status?.thumbprint) {
      const ready = findCondition(kp.status?.conditions, ConditionType.Ready);
      hints.push(
        `KeyProtector ${name} (spec.restore.keys) has not resolved its key yet${ready ? ` (${ready.reason}: ${ready.message})` : ""}`,
      );
    }
  }
  for (const t of missing) {
    for (const kp of keyProtectors.list(namespace)) {
      const name = kp.metadata.name ?? "";
      if (kp.status?.thumbprint === t && !named.includes(name))
        hints.push(`KeyProtector ${name} holds ${t.slice(0, 12)}: add it to spec.restore.keys`);
    }
  }
  return hints;
}
