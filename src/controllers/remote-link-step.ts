import {
  type ConditionInput,
  type EncryptedDatabase,
  type EncryptedDatabaseStatus,
  Reason,
} from "../api/index.js";
import { decodeEnvelopeSecret, type Envelope, EnvelopeError, type Wrap } from "../crypto/index.js";
import type { RemoteRead, RemoteReader } from "../remote/remote-reader.js";
import type { KubeObject } from "../runtime/index.js";
import type { EnvelopeSecret } from "./dek-operations.js";
import { keyHolders, requiredFromPrimary } from "./key-list-sync.js";
import type { PassFrame } from "./owner-pass.js";
import { localizedEnvelope } from "./remote-envelope.js";
import {
  otherCluster,
  primaryLinked,
  type RemoteSecondary,
  remoteKeyListSynced,
  remotePrimaryLink,
  remoteSecondary,
} from "./remote-replication.js";
import { linkedSecondaries, replicationLink } from "./replication.js";
import { envelopeSecretName, type Kube } from "./resources.js";

type Database = Kube<EncryptedDatabase>;
type Frame = PassFrame<EncryptedDatabaseStatus, Database>;

/** What a pass knows of its replication, in this cluster and across clusters (R19-R22, R31). */
export interface ReplicationView {
  condition?: ConditionInput;
  /** the linked primary (read from its cluster when remote) */
  primary?: Database;
  block?: { reason: string; message: string };
  /**
   * the primary the target key follows (R21): the primary; or, while a remote primary cannot be
   * read, a stand-in holding the key the DEK is under, so that nothing moves until the link is back
   */
  following?: Database;
  /** R20: a remote primary's envelope, as this cluster's keys unwrap it (remote-envelope.ts) */
  primaryEnvelope?: EnvelopeSecret;
  /** the primary's cluster, when it is another one */
  primaryCluster?: string;
  keyListSynced?: ConditionInput;
  /** a primary's secondaries in other clusters, as read */
  remoteSecondaries: RemoteSecondary[];
  /** look again after this long: nothing here tells of a change in another cluster */
  requeueAfterMs?: number;
}

/**
 * R19-R22, R31: observes the replication of a database. In one cluster, from the caches
 * (replicationLink); a primary or secondaries in another cluster are read through the remote
 * reader (read-only, reused for its ttl), then decided purely (remote-replication.ts).
 */
export async function observeReplication(
  frame: Frame,
  protecting: Wrap | undefined,
): Promise<ReplicationView> {
  const { ctx, obj: db } = frame;
  const remote = ctx.remote;
  const r = db.spec.replication;
  const primaryCluster = otherCluster(r?.primaryRef?.cluster, remote?.clusterName);
  if (r?.role === "Secondary" && primaryCluster && r.primaryRef)
    return observeRemotePrimary(frame, primaryCluster, protecting);
  const here = replicationLink(db, ctx.databases.store);
  const local = { ...here, ...(here.primary ? { following: here.primary } : {}) };
  const entries = (r?.role === "Primary" ? (r.secondaries ?? []) : []).flatMap((s) => {
    const cluster = otherCluster(s.cluster, remote?.clusterName);
    return cluster ? [{ cluster, namespace: s.namespace, name: s.name }] : [];
  });
  if (entries.length === 0 || !remote) return { ...local, remoteSecondaries: [] };
  const secondaries = await Promise.all(
    entries.map(async (e) => {
      const read = await remote.reader.read<Database>(e.cluster, "EncryptedDatabase", e.namespace, e.name);
      const first = remoteSecondary(e, db, remote.clusterName, read);
      if (first.state !== "linked" || !first.db) return first;
      const envelope = await readEnvelope(remote.reader, e.cluster, first.db);
      const wraps: RemoteRead<Envelope> = envelope.ok
        ? { ok: true, object: envelope.object?.envelope }
        : envelope;
      return remoteSecondary(e, db, remote.clusterName, read, wraps);
    }),
  );
  const condition = primaryLinked(
    linkedSecondaries(db, ctx.databases.store).length,
    secondaries,
    remote.clusterName,
  );
  const keyListSynced = remoteKeyListSynced(secondaries);
  return {
    condition,
    ...(keyListSynced ? { keyListSynced } : {}),
    remoteSecondaries: secondaries,
    requeueAfterMs: remote.ttlMs,
  };
}

/** R19, R20, R31: a secondary whose primary is in another cluster. */
async function observeRemotePrimary(
  frame: Frame,
  cluster: string,
  protecting: Wrap | undefined,
): Promise<ReplicationView> {
  const { ctx, obj: db } = frame;
  const remote = ctx.remote;
  const ref = db.spec.replication?.primaryRef;
  const namespace = ref?.namespace ?? frame.namespace;
  const read: RemoteRead<Database> = remote
    ? await remote.reader.read<Database>(cluster, "EncryptedDatabase", namespace, ref?.name ?? "")
    : {
        ok: false,
        cluster,
        reason: "NoKubeconfig",
        message: "this operator reads no other cluster",
      };
  const link = remotePrimaryLink(db, cluster, read, remote?.clusterName, protecting !== undefined);
  const view: ReplicationView = {
    ...link,
    primaryCluster: cluster,
    remoteSecondaries: [],
    ...(remote ? { requeueAfterMs: remote.ttlMs } : {}),
  };
  if (link.primary) view.following = link.primary;
  else if (!read.ok && protecting)
    // a stand-in, not a database: databaseTarget reads only the primary's protector thumbprint
    view.following = {
      metadata: {},
      spec: db.spec,
      status: { effectiveProtector: { thumbprint: protecting.thumbprint } },
    } as unknown as Database;
  if (!link.primary || protecting || !remote) return view;
  return withPrimaryEnvelope(frame, view, link.primary, cluster, remote.reader);
}

/** R20: a secondary with no DEK yet reads its remote primary's envelope and localizes it for this cluster's keys. */
async function withPrimaryEnvelope(
  frame: Frame,
  view: ReplicationView,
  primary: Database,
  cluster: string,
  reader: RemoteReader,
): Promise<ReplicationView> {
  const { ctx } = frame;
  const read = await readEnvelope(reader, cluster, primary);
  if (!read.ok) return { ...view, block: { reason: Reason.RemoteClusterUnreachable, message: read.message } };
  if (!read.object) return view; // planProvisioning waits for the primary's DEK
  const secret = read.object;
  const localized = localizedEnvelope(secret, cluster, requiredFromPrimary(primary), (thumbprint) => {
    const usable = keyHolders(ctx.keyProtectors.store, frame.namespace, thumbprint, ctx.smk).find(
      (h) => h.why === undefined && h.resolution.ok,
    );
    return usable?.resolution.ok ? { thumbprint, keyID: usable.resolution.kek.keyID } : undefined;
  });
  if (!localized.ok) {
    frame.draft.next.missingThumbprints = localized.missing;
    return { ...view, block: { reason: Reason.MissingThumbprints, message: localized.message } };
  }
  return { ...view, primaryEnvelope: localized.source };
}

/** A remote database's envelope Secret (wrapped DEKs only), decoded. */
async function readEnvelope(
  reader: RemoteReader,
  cluster: string,
  d: Database,
): Promise<RemoteRead<EnvelopeSecret>> {
  const namespace = d.metadata.namespace ?? "";
  const name = d.status?.envelopeSecretName ?? envelopeSecretName("EncryptedDatabase", d.metadata.name ?? "");
  const read = await reader.read<KubeObject & { type?: string; data?: Record<string, string> }>(
    cluster,
    "Secret",
    namespace,
    name,
  );
  if (!read.ok || !read.object) return read.ok ? { ok: true, object: undefined } : read;
  try {
    return { ok: true, object: { secret: read.object, envelope: decodeEnvelopeSecret(read.object) } };
  } catch (error) {
    if (!(error instanceof EnvelopeError)) throw error;
    return {
      ok: false,
      cluster,
      reason: "ServerError",
      message: `the envelope Secret ${cluster}/${namespace}/${name} is unreadable: ${error.message}`,
    };
  }
}
