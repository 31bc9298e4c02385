import type { EncryptedDatabase, EncryptedServer, KeyProtector } from "../api/index.js";
import {
  Controller,
  type ControllerOptions,
  type KubeObject,
  type ObjectKey,
  type Store,
} from "../runtime/index.js";
import type { ControllerContext } from "./context.js";
import { DatabaseReconciler } from "./database-reconciler.js";
import {
  BY_KEY_PROTECTOR,
  databaseKeyProtectors,
  dependantsIn,
  keyProtectorIndexValue,
  serverKeyProtectors,
} from "./dependants.js";
import { envelopeOwnerName } from "./envelope-owner.js";
import type { ServiceManagedKey } from "./kek-resolution.js";
import type { Kube } from "./resources.js";
import { BY_PRIMARY, primaryIndexValues } from "./rotation-blocker.js";
import { ServerReconciler } from "./server-reconciler.js";
import { BY_SERVICE_MANAGED_THUMBPRINT, serviceManagedIndexValues } from "./service-managed-key.js";

/**
 * Per-kind setup (kubebuilder's SetupWithManager): each controller registers the indexes and the
 * watches it relies on beside itself, so a decider that reads an index (rotationBlocker reads
 * BY_PRIMARY, the KeyProtector's dependants read BY_KEY_PROTECTOR) is right whatever the wiring.
 * The mappers are pure functions of an object and the caches: no API call.
 */

/** The index of databases by the server they name ("namespace/name"). */
export const BY_SERVER = "byServer";

/** The index of restores by the database they restore (spec.restore.sourceRef, "namespace/name"). */
export const BY_RESTORE_SOURCE = "byRestoreSource";

/** The index of restores by the KeyProtectors of spec.restore.keys ("namespace/name"). */
export const BY_RESTORE_KEY = "byRestoreKey";

/** The index of databases by the thumbprints they lack (status.missingThumbprints, "namespace/thumbprint"). */
export const BY_MISSING_THUMBPRINT = "byMissingThumbprint";

/** The index of Local KeyProtectors by their KEK Secret ("namespace/name"). */
export const BY_LOCAL_KEY_SECRET = "byLocalKeySecret";

type Server = Kube<EncryptedServer>;
type Database = Kube<EncryptedDatabase>;
type Options = Pick<ControllerOptions, "concurrency" | "observer">;

const keyOfObj = (o: { metadata: { namespace?: string; name?: string } }): ObjectKey => ({
  namespace: o.metadata.namespace ?? "",
  name: o.metadata.name ?? "",
});

type KeyProtectors = Store<Kube<KeyProtector>>;

/** The KeyProtectors' index: by the Local KEK Secret they name (R7, R33). */
export function indexKeyProtectors(keyProtectors: KeyProtectors): void {
  keyProtectors.addIndex(BY_LOCAL_KEY_SECRET, localKeySecretIndexValues);
}

export function localKeySecretIndexValues(kp: Kube<KeyProtector>): string[] {
  return kp.spec.provider === "Local" && kp.spec.local
    ? [`${kp.metadata.namespace}/${kp.spec.local.secretRef.name}`]
    : [];
}

/** The KeyProtectors a Local KEK Secret's change concerns: those naming it (its creation, a version enabled or disabled). */
export function keyProtectorsOfLocalKey(secret: KubeObject, keyProtectors: KeyProtectors): ObjectKey[] {
  return keyProtectors
    .byIndex(BY_LOCAL_KEY_SECRET, `${secret.metadata?.namespace ?? ""}/${secret.metadata?.name ?? ""}`)
    .map(keyOfObj);
}

/**
 * The servers' indexes (once, whichever controller asks first): by the KeyProtectors they name in
 * spec or status, and by the key of a service-managed DEK (R7, R16: who is still under a previous
 * service-managed key).
 */
export function indexServers(servers: Store<Server>): void {
  if (servers.hasIndex(BY_KEY_PROTECTOR)) return;
  servers.addIndex(BY_KEY_PROTECTOR, serverKeyProtectors);
  servers.addIndex(BY_SERVICE_MANAGED_THUMBPRINT, serviceManagedIndexValues);
}

/**
 * The databases' indexes: by KeyProtector, by service-managed key, by server, by primary (R17, R20, R21), by restore
 * source and restore key (R24, R31), by the thumbprints they lack (R20, R24).
 */
export function indexDatabases(databases: Store<Database>): void {
  databases.addIndex(BY_KEY_PROTECTOR, databaseKeyProtectors);
  databases.addIndex(BY_SERVICE_MANAGED_THUMBPRINT, serviceManagedIndexValues);
  databases.addIndex(BY_SERVER, serverIndexValues);
  databases.addIndex(BY_PRIMARY, primaryIndexValues);
  databases.addIndex(BY_RESTORE_SOURCE, restoreSourceIndexValues);
  databases.addIndex(BY_RESTORE_KEY, restoreKeyIndexValues);
  databases.addIndex(BY_MISSING_THUMBPRINT, missingThumbprintIndexValues);
}

export function restoreSourceIndexValues(d: Database): string[] {
  const ref = d.spec.restore?.sourceRef;
  return ref ? [`${ref.namespace ?? d.metadata.namespace}/${ref.name}`] : [];
}

export function restoreKeyIndexValues(d: Database): string[] {
  return (d.spec.restore?.keys ?? []).map((k) => `${d.metadata.namespace}/${k.keyProtectorRef.name}`);
}

export function missingThumbprintIndexValues(d: Database): string[] {
  return (d.status?.missingThumbprints ?? []).map((t) => `${d.metadata.namespace}/${t}`);
}

export function serverIndexValues(d: Database): string[] {
  return [`${d.metadata.namespace}/${d.spec.serverRef.name}`];
}

/** The owner of an envelope Secret, of one kind (its label names it). */
export function envelopeOwnerKeys(
  secret: KubeObject,
  kind: "EncryptedServer" | "EncryptedDatabase",
): ObjectKey[] {
  const owner = envelopeOwnerName(secret, kind);
  return owner ? [{ namespace: secret.metadata?.namespace ?? "", name: owner }] : [];
}

/**
 * The servers a KeyProtector's change concerns: they name it in spec or status (the
 * service-managed key: every server on it), or their DEK is still under its key (a previous
 * service-managed key, R16).
 */
export function serversOfKeyProtector(
  kp: Kube<KeyProtector>,
  servers: Store<Server>,
  smk: ServiceManagedKey,
): ObjectKey[] {
  return dependantsIn(kp, servers, smk).map(keyOfObj);
}

/**
 * The databases a KeyProtector's change concerns, all from indexes: those that name it (their
 * protector, spec.keys, spec.restore.keys), those on a server that names it (they inherit its
 * protector before they record one, R13), and a database missing this key material (R20, R24),
 * which picks it up from any KeyProtector of its namespace.
 */
export function databasesOfKeyProtector(
  kp: Kube<KeyProtector>,
  databases: Store<Database>,
  smk: ServiceManagedKey,
  servers?: Store<Server>,
): ObjectKey[] {
  const thumbprint = kp.status?.thumbprint;
  const ns = kp.metadata.namespace;
  return unique(
    [
      ...dependantsIn(kp, databases, smk),
      ...databases.byIndex(BY_RESTORE_KEY, `${ns}/${kp.metadata.name}`),
      ...(thumbprint ? databases.byIndex(BY_MISSING_THUMBPRINT, `${ns}/${thumbprint}`) : []),
      ...(servers ? servers.byIndex(BY_KEY_PROTECTOR, keyProtectorIndexValue(kp, smk)) : []).flatMap((s) =>
        databases.byIndex(BY_SERVER, `${s.metadata.namespace}/${s.metadata.name}`),
      ),
    ].map(keyOfObj),
  );
}

/** The databases on a server. */
export function databasesOfServer(s: Server, databases: Store<Database>): ObjectKey[] {
  return databases.byIndex(BY_SERVER, `${s.metadata.namespace}/${s.metadata.name}`).map(keyOfObj);
}

/**
 * The databases another database's change concerns, both ends of each reference (R31: both sides
 * name each other), from its spec and the indexes, never a scan:
 * - replication: a secondary wakes the primary it names (R17: it may release the old key; R21: it
 *   may now hold the new one); a primary wakes the secondaries it lists and every database naming
 *   it as primary, listed or not (it may just have added it, or become a Primary: R19, R20, R21);
 * - restore: a source wakes its restores and the targets it allows (it may just have named one
 *   back, got its DEK or its key history: R24, R31); a restore wakes its source.
 */
export function databasePeers(d: Database, databases: Store<Database>): ObjectKey[] {
  const ns = d.metadata.namespace ?? "";
  const self = `${ns}/${d.metadata.name}`;
  const out: ObjectKey[] = [];
  const r = d.spec.replication;
  // a peer in another cluster is no object here: it is read remotely, on its own clock
  if (r?.role === "Secondary" && r.primaryRef && !r.primaryRef.cluster)
    out.push({ namespace: r.primaryRef.namespace ?? ns, name: r.primaryRef.name });
  if (r?.role === "Primary")
    out.push(
      ...(r.secondaries ?? [])
        .filter((s) => !s.cluster)
        .map((s) => ({ namespace: s.namespace, name: s.name })),
    );
  out.push(...databases.byIndex(BY_PRIMARY, self).map(keyOfObj));
  const source = d.spec.restore?.sourceRef;
  if (source) out.push({ namespace: source.namespace ?? ns, name: source.name });
  out.push(...databases.byIndex(BY_RESTORE_SOURCE, self).map(keyOfObj));
  out.push(...(d.spec.allowedRestoreTargets ?? []).map((t) => ({ namespace: t.namespace, name: t.name })));
  return unique(out).filter((k) => `${k.namespace}/${k.name}` !== self);
}

/** Each key once, in the order first named. */
function unique(keys: ObjectKey[]): ObjectKey[] {
  const seen = new Set<string>();
  return keys.filter((k) => {
    const id = `${k.namespace}/${k.name}`;
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

/**
 * The databases an envelope Secret's change concerns: its owner, and the databases that read it
 * though they do not own it: the owner's secondaries and restores copy their DEK from it (R19,
 * R24: a restore of a dropped database reads only its retained envelope), and the owner's primary
 * checks it holds the primary's next key before switching (R21).
 */
export function databasesOfEnvelope(secret: KubeObject, databases: Store<Database>): ObjectKey[] {
  const [owner] = envelopeOwnerKeys(secret, "EncryptedDatabase");
  if (!owner) return [];
  const value = `${owner.namespace}/${owner.name}`;
  const primaryRef = databases.get(owner.namespace, owner.name)?.spec.replication?.primaryRef;
  return unique([
    owner,
    ...databases.byIndex(BY_PRIMARY, value).map(keyOfObj),
    ...databases.byIndex(BY_RESTORE_SOURCE, value).map(keyOfObj),
    ...(primaryRef && !primaryRef.cluster
      ? [{ namespace: primaryRef.namespace ?? owner.namespace, name: primaryRef.name }]
      : []),
  ]);
}

/** The EncryptedServer controller with its indexes and watches. */
export function setupServerController(ctx: ControllerContext, options: Options): Controller {
  indexServers(ctx.servers.store);
  return new Controller({ name: "encryptedserver", reconciler: new ServerReconciler(ctx), ...options })
    .watchPrimary(ctx.servers)
    .watch(ctx.keyProtectors, (kp) => serversOfKeyProtector(kp, ctx.servers.store, ctx.smk))
    .watch(ctx.envelopes, (secret) => envelopeOwnerKeys(secret, "EncryptedServer"));
}

/** The EncryptedDatabase controller with its indexes and watches. */
export function setupDatabaseController(ctx: ControllerContext, options: Options): Controller {
  indexDatabases(ctx.databases.store);
  // databasesOfKeyProtector reads the servers by KeyProtector (a database inherits its server's)
  indexServers(ctx.servers.store);
  return new Controller({ name: "encrypteddatabase", reconciler: new DatabaseReconciler(ctx), ...options })
    .watchPrimary(ctx.databases)
    .watch(ctx.keyProtectors, (kp) =>
      databasesOfKeyProtector(kp, ctx.databases.store, ctx.smk, ctx.servers.store),
    )
    .watch(ctx.servers, (s) => databasesOfServer(s, ctx.databases.store))
    .watch(ctx.databases, (d) => databasePeers(d, ctx.databases.store))
    .watch(ctx.envelopes, (secret) => databasesOfEnvelope(secret, ctx.databases.store));
}
