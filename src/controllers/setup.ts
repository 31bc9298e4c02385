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
import { BY_KEY_PROTECTOR, databaseKeyProtectors, dependantsIn, serverKeyProtectors } from "./dependants.js";
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

type Server = Kube<EncryptedServer>;
type Database = Kube<EncryptedDatabase>;
type Options = Pick<ControllerOptions, "concurrency" | "observer">;

const keyOfObj = (o: { metadata: { namespace?: string; name?: string } }): ObjectKey => ({
  namespace: o.metadata.namespace ?? "",
  name: o.metadata.name ?? "",
});

/**
 * The servers' indexes: by the KeyProtectors they name in spec or status, and by the key of a
 * service-managed DEK (R7, R16: who is still under a previous service-managed key).
 */
export function indexServers(servers: Store<Server>): void {
  servers.addIndex(BY_KEY_PROTECTOR, serverKeyProtectors);
  servers.addIndex(BY_SERVICE_MANAGED_THUMBPRINT, serviceManagedIndexValues);
}

/** The databases' indexes: by KeyProtector, by service-managed key, by server, by primary (R17, R20, R21). */
export function indexDatabases(databases: Store<Database>): void {
  databases.addIndex(BY_KEY_PROTECTOR, databaseKeyProtectors);
  databases.addIndex(BY_SERVICE_MANAGED_THUMBPRINT, serviceManagedIndexValues);
  databases.addIndex(BY_SERVER, serverIndexValues);
  databases.addIndex(BY_PRIMARY, primaryIndexValues);
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
 * The databases a KeyProtector's change concerns: those that name it, and a secondary missing
 * this key material (R20), which picks it up from any KeyProtector of its namespace.
 */
export function databasesOfKeyProtector(
  kp: Kube<KeyProtector>,
  databases: Store<Database>,
  smk: ServiceManagedKey,
): ObjectKey[] {
  const thumbprint = kp.status?.thumbprint;
  return [
    ...dependantsIn(kp, databases, smk),
    ...databases
      .list(kp.metadata.namespace)
      .filter((d) => thumbprint && d.status?.missingThumbprints?.includes(thumbprint)),
  ].map(keyOfObj);
}

/** The databases on a server. */
export function databasesOfServer(s: Server, databases: Store<Database>): ObjectKey[] {
  return databases.byIndex(BY_SERVER, `${s.metadata.namespace}/${s.metadata.name}`).map(keyOfObj);
}

/**
 * A database's replication peers: a secondary's change wakes its primary (R17: it may release
 * the old key), a primary's change (its protector, its pending rotation, its key list) wakes its
 * secondaries (R20, R21).
 */
export function replicationPeers(d: Database): ObjectKey[] {
  const r = d.spec.replication;
  if (r?.role === "Secondary" && r.primaryRef)
    return [{ namespace: r.primaryRef.namespace ?? d.metadata.namespace ?? "", name: r.primaryRef.name }];
  if (r?.role === "Primary")
    return (r.secondaries ?? []).map((s) => ({ namespace: s.namespace, name: s.name }));
  return [];
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
  return new Controller({ name: "encrypteddatabase", reconciler: new DatabaseReconciler(ctx), ...options })
    .watchPrimary(ctx.databases)
    .watch(ctx.keyProtectors, (kp) => databasesOfKeyProtector(kp, ctx.databases.store, ctx.smk))
    .watch(ctx.servers, (s) => databasesOfServer(s, ctx.databases.store))
    .watch(ctx.databases, replicationPeers)
    .watch(ctx.envelopes, (secret) => envelopeOwnerKeys(secret, "EncryptedDatabase"));
}
