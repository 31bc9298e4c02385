import {
  type ConditionInput,
  ConditionType,
  type EncryptedDatabase,
  findCondition,
  MAX_SECONDARIES,
  Reason,
} from "../api/index.js";
import type { Store } from "../runtime/index.js";
import type { Kube } from "./resources.js";

type Database = Kube<EncryptedDatabase>;

/** What a secondary's link to its primary looks like (R19, R31). */
export type SecondaryLink =
  | { ok: true; primary: Database }
  | { ok: false; reason: SecondaryLinkProblem; message: string };

export type SecondaryLinkProblem =
  | "PrimaryNotFound"
  | "PrimaryIsNotPrimary"
  | "NotListedByPrimary"
  | "TooManySecondaries"
  | "SecondaryNeedsDatabaseProtector";

const nsOf = (d: Database) => d.metadata.namespace ?? "";

/**
 * R19, R31: a secondary is linked when its primary exists, is itself a Primary (no chaining),
 * names this secondary back in spec.replication.secondaries (at most 4), and, when the primary
 * has its own database-level protector, the secondary has one too.
 */
export function linkSecondary(db: Database, databases: Store<Database>): SecondaryLink {
  const ref = db.spec.replication?.primaryRef;
  if (!ref)
    return { ok: false, reason: "PrimaryNotFound", message: "spec.replication.primaryRef is missing" };
  const primaryNs = ref.namespace ?? nsOf(db);
  const primary = databases.get(primaryNs, ref.name);
  if (!primary) {
    return {
      ok: false,
      reason: "PrimaryNotFound",
      message: `waiting for the primary EncryptedDatabase ${primaryNs}/${ref.name}`,
    };
  }
  return linkTo(db, primary, `${primaryNs}/${ref.name}`, (s) => !s.cluster && s.namespace === nsOf(db));
}

/** One entry of a primary's spec.replication.secondaries. */
type Listed = NonNullable<NonNullable<EncryptedDatabase["spec"]["replication"]>["secondaries"]>[number];

/**
 * R19, R31: the checks of a secondary's link once its primary is found (in this cluster or
 * another): a Primary (no chaining) that lists this secondary (`listsHere` says whether an entry
 * of the same name is this one: same namespace, and the cluster the primary calls this one), at
 * most 4, and a database-level protector here when the primary has one. Pure.
 */
export function linkTo(
  db: Database,
  primary: Database,
  primaryName: string,
  listsHere: (entry: Listed) => boolean,
): SecondaryLink {
  const here = `${nsOf(db)}/${db.metadata.name}`;
  if (primary.spec.replication?.role !== "Primary") {
    return {
      ok: false,
      reason: "PrimaryIsNotPrimary",
      message: `${primaryName} is not a Primary (${primary.spec.replication?.role ?? "no replication"}): a secondary must follow a primary, never another secondary (no chaining, R19)`,
    };
  }
  const listed = primary.spec.replication.secondaries ?? [];
  if (!listed.some((s) => s.name === db.metadata.name && listsHere(s))) {
    const full = listed.length >= MAX_SECONDARIES;
    return {
      ok: false,
      reason: full ? "TooManySecondaries" : "NotListedByPrimary",
      message: full
        ? `primary ${primaryName} already has ${MAX_SECONDARIES} secondaries, the most a primary may have (R19); ${here} is refused`
        : `primary ${primaryName} does not list ${here} in spec.replication.secondaries: add it there (R31: both sides must name each other)`,
    };
  }
  if (primary.status?.effectiveProtector?.source === "Database" && !db.spec.encryptionProtector) {
    return {
      ok: false,
      reason: "SecondaryNeedsDatabaseProtector",
      message: `primary ${primaryName} has a database-level protector, so this secondary needs one too: set spec.encryptionProtector to a KeyProtector of this namespace (R19)`,
    };
  }
  return { ok: true, primary };
}

/** The secondaries of a primary that it lists and that name it back (the ones its rotations must wait for). */
export function linkedSecondaries(primary: Database, databases: Store<Database>): Database[] {
  const listed =
    primary.spec.replication?.role === "Primary" ? (primary.spec.replication.secondaries ?? []) : [];
  return listed
    .filter((s) => !s.cluster)
    .map((s) => databases.get(s.namespace, s.name))
    .filter((s): s is Database => {
      const r = s?.spec.replication;
      return (
        r?.role === "Secondary" &&
        !r.primaryRef?.cluster &&
        r.primaryRef?.name === primary.metadata.name &&
        (r.primaryRef?.namespace ?? s?.metadata.namespace) === nsOf(primary)
      );
    });
}

/**
 * R21: before a primary switches to a key, every secondary must hold a proven wrap under that
 * key (its own KeyProtector with the same key material). Returns the secondaries that do not,
 * with why, in the order they are listed: a secondary that reported the key missing is quoted
 * (its KeyListSynced says whether no KeyProtector there holds it, or which one does and why it
 * cannot take it: disabled, expired, not permitted…).
 */
export function secondariesMissingKey(
  primary: Database,
  databases: Store<Database>,
  thumbprint: string,
  hasWrap: (secondary: Database) => boolean,
): { name: string; why: string }[] {
  return linkedSecondaries(primary, databases)
    .filter((s) => !hasWrap(s))
    .map((s) => ({ name: `${nsOf(s)}/${s.metadata.name}`, why: whyMissing(s, thumbprint) }));
}

/** R21: why a linked secondary holds no wrap under the primary's next key, as its own status tells. */
export function whyMissing(s: Database, thumbprint: string): string {
  const missing = s.status?.missingThumbprints?.includes(thumbprint);
  const synced = findCondition(s.status?.conditions, ConditionType.KeyListSynced);
  return !missing
    ? `it has not yet added and proven a wrap under ${thumbprint.slice(0, 12)}`
    : synced?.status === "False"
      ? `its KeyListSynced says ${synced.reason}: ${synced.message}`
      : `no KeyProtector in namespace ${nsOf(s)} holds the key ${thumbprint.slice(0, 12)}: import the same key material into its vault and name it in spec.keys`;
}

/**
 * R19, R31: ReplicationLinked for a database in a replication, and the primary a linked secondary
 * follows; an unlinked secondary is held back (Ready says why). Nothing for a database that
 * replicates nothing. Pure.
 */
export function replicationLink(
  db: Database,
  databases: Store<Database>,
): { condition?: ConditionInput; primary?: Database; block?: { reason: string; message: string } } {
  const role = db.spec.replication?.role;
  const linked = (message: string): ConditionInput => ({
    type: ConditionType.ReplicationLinked,
    status: "True",
    reason: Reason.ReplicationLinked,
    message,
  });
  if (role === "Primary")
    return { condition: linked(`primary of ${linkedSecondaries(db, databases).length} secondaries`) };
  if (role !== "Secondary") return {};
  const link = linkSecondary(db, databases);
  if (link.ok)
    return {
      condition: linked(`secondary of ${nsOf(link.primary)}/${link.primary.metadata.name}`),
      primary: link.primary,
    };
  const block = { reason: link.reason, message: link.message };
  return { condition: { type: ConditionType.ReplicationLinked, status: "False", ...block }, block };
}
