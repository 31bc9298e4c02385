import type { EncryptedDatabase, EncryptedServer, KeyProtector } from "../api/index.js";
import { type Envelope, protectorWrap } from "../crypto/index.js";
import type { Store } from "../runtime/index.js";
import { type Kek, keyIDBelongsTo } from "./dek-operations.js";
import { resolveKek, type ServiceManagedKey } from "./kek-resolution.js";
import type { ProtectorChoice } from "./protector-choice.js";
import type { Kube } from "./resources.js";

type Database = Kube<EncryptedDatabase>;

/** The key a database's DEK is to be wrapped by, and the protector choice the status records for it. */
export interface DatabaseTarget {
  kek: Kek;
  choice: ProtectorChoice;
}

/**
 * R6, R13, R21: the key to wrap with. The effective protector's key (the one the pass watches);
 * pinned to the version that protects the DEK when autoRotation is off (R6); for a secondary with
 * autoRotation, its own key holding the primary's protector (R21). While the pass watches the key
 * it last knew (the protector asked for does not resolve) the recorded choice stays. Pure.
 */
export function databaseTarget(o: {
  db: Database;
  server: Kube<EncryptedServer>;
  watched: Kek;
  watchingRecorded: boolean;
  choice: ProtectorChoice;
  recorded: ProtectorChoice | undefined;
  envelope: Envelope | undefined;
  primary: Database | undefined;
  keyProtectors: Store<Kube<KeyProtector>>;
  smk: ServiceManagedKey;
}): DatabaseTarget {
  const { db, envelope } = o;
  let kek = o.watched;
  const choice = o.watchingRecorded && o.recorded ? o.recorded : o.choice;
  const wrap = envelope ? protectorWrap(envelope) : undefined;
  if (
    wrap &&
    !db.spec.autoRotation &&
    wrap.thumbprint !== kek.thumbprint &&
    keyIDBelongsTo(kek.ref, wrap.keyID)
  )
    kek = { ...kek, keyID: wrap.keyID, thumbprint: wrap.thumbprint };
  const primaryThumbprint = o.primary?.status?.effectiveProtector?.thumbprint;
  if (primaryThumbprint && db.spec.autoRotation && primaryThumbprint !== kek.thumbprint) {
    const follow = ownKeyHolding(o, primaryThumbprint);
    if (follow)
      return {
        kek: follow.kek,
        choice: { source: follow.source, type: "CustomerManaged", keyProtectorName: follow.name },
      };
  }
  return { kek, choice };
}

/**
 * R20, R21: a KeyProtector this database may use (its own, its extra keys, its server's, or any
 * of its namespace, as the key-list sync takes key material from any) that holds the key with
 * this thumbprint and can take a wrap now.
 */
export function ownKeyHolding(
  o: {
    db: Database;
    server: Kube<EncryptedServer>;
    keyProtectors: Store<Kube<KeyProtector>>;
    smk: ServiceManagedKey;
  },
  thumbprint: string,
): { kek: Kek; name: string; source: "Database" | "Server" } | undefined {
  const namespace = o.db.metadata.namespace ?? "";
  const names: { name: string; source: "Database" | "Server" }[] = [];
  const own = o.db.spec.encryptionProtector?.keyProtectorRef?.name;
  if (own) names.push({ name: own, source: "Database" });
  for (const k of o.db.spec.keys ?? []) names.push({ name: k.keyProtectorRef.name, source: "Database" });
  const fromServer = o.server.spec.protector.keyProtectorRef?.name;
  if (fromServer) names.push({ name: fromServer, source: "Server" });
  for (const kp of o.keyProtectors.list(namespace)) {
    if (kp.status?.thumbprint === thumbprint && kp.metadata.name)
      names.push({ name: kp.metadata.name, source: "Database" });
  }
  for (const { name, source } of names) {
    const r = resolveKek(
      o.keyProtectors,
      namespace,
      { type: "CustomerManaged", keyProtectorName: name },
      o.smk,
    );
    if (r.ok && r.kek.thumbprint === thumbprint && r.ready && r.access.accessible)
      return { kek: r.kek, name, source };
  }
  return undefined;
}
