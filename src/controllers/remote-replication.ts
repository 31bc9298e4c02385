import {
  type ConditionInput,
  ConditionType,
  type EncryptedDatabase,
  findCondition,
  Reason,
  type RemoteSecondaryStatus,
} from "../api/index.js";
import { type Envelope, findWrapByThumbprint } from "../crypto/index.js";
import type { RemoteRead } from "../remote/remote-reader.js";
import { linkTo, whyMissing } from "./replication.js";
import type { Kube } from "./resources.js";

type Database = Kube<EncryptedDatabase>;
type Failure = Extract<RemoteRead<never>, { ok: false }>;

/**
 * R19: the cluster a reference names when it is another one; undefined for this cluster (no
 * cluster, or this operator's own --cluster-name). Pure.
 */
export function otherCluster(cluster: string | undefined, here: string | undefined): string | undefined {
  return cluster && cluster !== here ? cluster : undefined;
}

/** What a secondary whose primary is in another cluster knows of the link, from one remote read. */
export interface RemotePrimaryLink {
  condition: ConditionInput;
  /** the primary as read, once linked (R31: it names this secondary back with this cluster's name) */
  primary?: Database;
  /** what holds the secondary back (Ready says why) */
  block?: { reason: string; message: string };
  /** R20: the key-list sync cannot be checked while the primary's cluster cannot be read */
  keyListSynced?: ConditionInput;
}

/**
 * R19, R20, R31 across clusters: a secondary is linked when its primary, read from its cluster,
 * is a Primary that lists this database with this cluster's name. While the primary's cluster
 * cannot be read a secondary that already holds the DEK keeps it and its key (KeyListSynced says
 * why it is not checked); one that has no DEK yet waits. Pure.
 */
export function remotePrimaryLink(
  db: Database,
  cluster: string,
  read: RemoteRead<Database>,
  here: string | undefined,
  hasDek: boolean,
): RemotePrimaryLink {
  const ref = db.spec.replication?.primaryRef;
  const primaryName = `${cluster}/${ref?.namespace ?? db.metadata.namespace}/${ref?.name}`;
  const refused = (reason: string, message: string): RemotePrimaryLink => ({
    condition: { type: ConditionType.ReplicationLinked, status: "False", reason, message },
    block: { reason, message },
  });
  if (!here)
    return refused(
      Reason.ClusterNameNotSet,
      `spec.replication.primaryRef.cluster names the cluster ${cluster}, but this operator has no --cluster-name: set it (the chart's clusterName) to the name the primary's cluster lists this cluster's secondaries with (R31)`,
    );
  if (!read.ok) {
    const message = `the primary ${primaryName} cannot be read: ${read.message}`;
    return {
      condition: {
        type: ConditionType.ReplicationLinked,
        status: "Unknown",
        reason: Reason.RemoteClusterUnreachable,
        message,
      },
      keyListSynced: {
        type: ConditionType.KeyListSynced,
        status: "False",
        reason: Reason.RemoteClusterUnreachable,
        message: `${message}; the key list is checked again by itself once the link is back (R20)`,
      },
      ...(hasDek ? {} : { block: { reason: Reason.RemoteClusterUnreachable, message } }),
    };
  }
  if (!read.object)
    return refused(Reason.PrimaryNotFound, `waiting for the primary EncryptedDatabase ${primaryName}`);
  const link = linkTo(
    db,
    read.object,
    primaryName,
    (s) => s.cluster === here && s.namespace === db.metadata.namespace,
  );
  if (!link.ok)
    return refused(
      link.reason,
      link.reason === "NotListedByPrimary"
        ? `${link.message}, as {cluster: ${here}, namespace: ${db.metadata.namespace}, name: ${db.metadata.name}}`
        : link.message,
    );
  return {
    condition: {
      type: ConditionType.ReplicationLinked,
      status: "True",
      reason: Reason.ReplicationLinked,
      message: `secondary of ${primaryName}`,
    },
    primary: link.primary,
  };
}

/** One secondary of a primary in another cluster, as the primary's operator last read it. */
export interface RemoteSecondary {
  /** "cluster/namespace/name" */
  name: string;
  cluster: string;
  state: "linked" | "notLinked" | "promoted" | "unreachable";
  db?: Database;
  /** its envelope (wrapped DEKs only), when linked and read */
  envelope?: Envelope;
  failure?: Failure;
}

/**
 * R19, R31, R22: a listed secondary in another cluster, from the reads of it and of its envelope:
 * linked when it is a Secondary naming this primary with this cluster's name; promoted when it
 * became a Primary (this primary is then demoted, not a second primary of the pair);
 * unreachable when it cannot be read. Pure.
 */
export function remoteSecondary(
  entry: { cluster: string; namespace: string; name: string },
  primary: Database,
  here: string | undefined,
  read: RemoteRead<Database>,
  envelope?: RemoteRead<Envelope>,
): RemoteSecondary {
  const base = { name: `${entry.cluster}/${entry.namespace}/${entry.name}`, cluster: entry.cluster };
  if (!read.ok) return { ...base, state: "unreachable", failure: read };
  const db = read.object;
  if (!db) return { ...base, state: "notLinked" };
  const r = db.spec.replication;
  if (r?.role === "Primary") return { ...base, state: "promoted", db };
  const names =
    r?.role === "Secondary" &&
    r.primaryRef?.cluster === here &&
    (r.primaryRef?.namespace ?? entry.namespace) === primary.metadata.namespace &&
    r.primaryRef?.name === primary.metadata.name;
  if (!names) return { ...base, state: "notLinked", db };
  if (envelope && !envelope.ok) return { ...base, state: "unreachable", db, failure: envelope };
  return { ...base, state: "linked", db, ...(envelope?.object ? { envelope: envelope.object } : {}) };
}

/**
 * R21 across clusters: the secondaries in other clusters that do not hold a wrap under the
 * primary's next key, with why; one whose cluster cannot be read is among them (the primary
 * waits: it cannot prove the key usable there). Pure.
 */
export function remoteSecondariesMissingKey(
  secondaries: readonly RemoteSecondary[],
  thumbprint: string,
): { name: string; why: string }[] {
  return secondaries.flatMap((s) => {
    if (s.state === "unreachable")
      return [
        {
          name: s.name,
          why: `its cluster ${s.cluster} cannot be read (${s.failure?.reason}): ${s.failure?.message}; the rotation goes ahead by itself once the link is back`,
        },
      ];
    if (s.state !== "linked" || !s.db) return [];
    if (s.envelope && findWrapByThumbprint(s.envelope, thumbprint)) return [];
    return [{ name: s.name, why: whyMissing(s.db, thumbprint) }];
  });
}

/**
 * R20, R21 on a primary with secondaries in other clusters: KeyListSynced says whether each of
 * them was read and holds the primary's key list, naming the cluster that cannot be read and why.
 * Undefined with no secondary in another cluster. Pure.
 */
export function remoteKeyListSynced(secondaries: readonly RemoteSecondary[]): ConditionInput | undefined {
  if (secondaries.length === 0) return undefined;
  const unreachable = secondaries.filter((s) => s.state === "unreachable");
  if (unreachable.length > 0)
    return {
      type: ConditionType.KeyListSynced,
      status: "False",
      reason: Reason.RemoteClusterUnreachable,
      message: `secondaries in other clusters cannot be read: ${unreachable.map((s) => `${s.name} (${s.failure?.reason}: ${s.failure?.message})`).join("; ")}; a protector change waits until they can (R21)`,
    };
  const behind = secondaries.filter(
    (s) =>
      s.state === "linked" &&
      findCondition(s.db?.status?.conditions, ConditionType.KeyListSynced)?.status !== "True",
  );
  if (behind.length > 0)
    return {
      type: ConditionType.KeyListSynced,
      status: "False",
      reason: Reason.MissingThumbprints,
      message: `secondaries in other clusters do not hold this database's key list yet: ${behind.map((s) => s.name).join(", ")} (their KeyListSynced says why)`,
    };
  return {
    type: ConditionType.KeyListSynced,
    status: "True",
    reason: Reason.KeyListSynced,
    message: `every linked secondary in another cluster holds this database's key list (${secondaries.filter((s) => s.state === "linked").length})`,
  };
}

/**
 * R22: a listed secondary that was promoted in its cluster makes this primary the demoted side of
 * the pair: ReplicationLinked says so, naming it, rather than counting two primaries. Pure.
 */
export function demotedBy(secondaries: readonly RemoteSecondary[]): ConditionInput | undefined {
  const promoted = secondaries.filter((s) => s.state === "promoted");
  if (promoted.length === 0) return undefined;
  return {
    type: ConditionType.ReplicationLinked,
    status: "False",
    reason: Reason.SecondaryPromoted,
    message: `${promoted.map((s) => s.name).join(", ")} was promoted to Primary: this database is the demoted side and no longer its primary; its rotations no longer wait for it. Remove it from spec.replication.secondaries, and make this database a secondary of the new primary (a new EncryptedDatabase with role Secondary) or delete it`,
  };
}

const STATE = {
  linked: "Linked",
  notLinked: "NotLinked",
  promoted: "Promoted",
  unreachable: "Unreachable",
} as const;

/**
 * R19-R22: status.remoteSecondaries of a primary, what `kubectl tde status` shows of its
 * secondaries in other clusters: each one's link, key-list sync and protector, as read. Only
 * bounded values (no error text), so that nothing is rewritten while nothing changes. Pure.
 */
export function remoteSecondariesStatus(secondaries: readonly RemoteSecondary[]): RemoteSecondaryStatus[] {
  return secondaries.map((s) => {
    const [cluster, namespace, ...name] = s.name.split("/");
    const synced = findCondition(s.db?.status?.conditions, ConditionType.KeyListSynced)?.status;
    const protector = s.db?.status?.effectiveProtector?.thumbprint;
    return {
      cluster: cluster ?? s.cluster,
      namespace: namespace ?? "",
      name: name.join("/"),
      state: STATE[s.state],
      ...(s.state === "linked" ? { keyListSynced: synced ?? "Unknown" } : {}),
      ...(protector && s.state !== "unreachable" ? { protectorThumbprint: protector } : {}),
      ...(s.failure ? { reason: s.failure.reason } : {}),
    };
  });
}

/**
 * R19, R22, R31: ReplicationLinked of a primary with secondaries in other clusters: how many are
 * linked; demoted once one of them was promoted; refused while this operator has no
 * --cluster-name, since no secondary elsewhere could name this primary back. Pure.
 */
export function primaryLinked(
  localLinked: number,
  secondaries: readonly RemoteSecondary[],
  here: string | undefined,
): ConditionInput {
  if (!here)
    return {
      type: ConditionType.ReplicationLinked,
      status: "False",
      reason: Reason.ClusterNameNotSet,
      message: `spec.replication.secondaries names secondaries in other clusters (${secondaries.map((s) => s.name).join(", ")}), but this operator has no --cluster-name: set it (the chart's geoReplication.clusterName) to the name those clusters' secondaries name this primary's cluster with (R31)`,
    };
  const across = secondaries.filter((s) => s.state === "linked").length;
  return (
    demotedBy(secondaries) ?? {
      type: ConditionType.ReplicationLinked,
      status: "True",
      reason: Reason.ReplicationLinked,
      message: `primary of ${localLinked + across} secondaries (${across} in other clusters)`,
    }
  );
}
