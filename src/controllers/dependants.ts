import type { EncryptedDatabase, EncryptedServer, KeyProtector } from "../api/index.js";
import { parseLocalKeyID } from "../kms/local.js";
import type { KubeObject, Store } from "../runtime/index.js";
import { envelopeOwnerName } from "./envelope-owner.js";
import { envelopeFromCache } from "./envelope-summary.js";
import type { ServiceManagedKey } from "./kek-resolution.js";
import type { Kube } from "./resources.js";
import {
  BY_SERVICE_MANAGED_THUMBPRINT,
  isPreviousServiceManagedCandidate,
  isServiceManagedKey,
} from "./service-managed-key.js";

/**
 * R33: who depends on a KeyProtector, a Local KEK Secret or an envelope Secret, named for people
 * ("EncryptedServer shop/orders"). Read from the informer caches: no API call.
 */

/** The name of the operator's own KeyProtector for the service-managed key (R7, R9). */
export const SERVICE_MANAGED_KEY_PROTECTOR = "tde-service-managed";

/** The index of servers and databases by the KeyProtectors they name in spec or status. */
export const BY_KEY_PROTECTOR = "byKeyProtector";

/**
 * The BY_KEY_PROTECTOR value of the service-managed key (R7, R9): a resource names it by its
 * protector's type, not by a KeyProtector name, so every resource on it shares this one value.
 */
export const SERVICE_MANAGED_INDEX_VALUE = "smk";

/**
 * A KeyProtector's value in BY_KEY_PROTECTOR: the one serving as the service-managed key (the
 * operator setting's, R7) is SERVICE_MANAGED_INDEX_VALUE.
 */
export function keyProtectorIndexValue(kp: Kube<KeyProtector>, smk: ServiceManagedKey): string {
  return isServiceManagedKey(kp, smk)
    ? SERVICE_MANAGED_INDEX_VALUE
    : `${kp.metadata.namespace}/${kp.metadata.name}`;
}

/**
 * The servers or databases that depend on a KeyProtector: those naming it (BY_KEY_PROTECTOR), and
 * for a KeyProtector that may hold a previous service-managed key (R16), the service-managed ones
 * whose DEK is still under its key, until they have moved to the key the setting names.
 */
export function dependantsIn<T extends KubeObject>(
  kp: Kube<KeyProtector>,
  store: Store<T>,
  smk: ServiceManagedKey,
): T[] {
  const naming = store.byIndex(BY_KEY_PROTECTOR, keyProtectorIndexValue(kp, smk));
  const thumbprint = kp.status?.thumbprint;
  if (!thumbprint || !isPreviousServiceManagedCandidate(kp, smk)) return naming;
  const under = store.byIndex(BY_SERVICE_MANAGED_THUMBPRINT, thumbprint).filter((o) => !naming.includes(o));
  return [...naming, ...under];
}

/** BY_KEY_PROTECTOR values of a server: its protector in spec and the one its status records. */
export function serverKeyProtectors(s: Kube<EncryptedServer>): string[] {
  const ns = s.metadata.namespace;
  const values = new Set<string>();
  const ref = s.spec.protector.keyProtectorRef?.name;
  if (s.spec.protector.type === "ServiceManaged") values.add(SERVICE_MANAGED_INDEX_VALUE);
  else if (ref) values.add(`${ns}/${ref}`);
  const recorded = s.status?.protector?.keyProtectorName;
  if (recorded) values.add(`${ns}/${recorded}`);
  if (s.status?.protector?.type === "ServiceManaged") values.add(SERVICE_MANAGED_INDEX_VALUE);
  return [...values];
}

/** BY_KEY_PROTECTOR values of a database: its own protector, its extra keys, the effective one. */
export function databaseKeyProtectors(d: Kube<EncryptedDatabase>): string[] {
  const ns = d.metadata.namespace;
  const values = new Set<string>();
  const own = d.spec.encryptionProtector?.keyProtectorRef?.name;
  if (own) values.add(`${ns}/${own}`);
  for (const k of d.spec.keys ?? []) values.add(`${ns}/${k.keyProtectorRef.name}`);
  const eff = d.status?.effectiveProtector;
  if (eff?.keyProtectorName) values.add(`${ns}/${eff.keyProtectorName}`);
  if (eff?.type === "ServiceManaged" || d.spec.encryptionProtector?.type === "ServiceManaged")
    values.add(SERVICE_MANAGED_INDEX_VALUE);
  return [...values];
}

const named = (kind: string, o: KubeObject) => `${kind} ${o.metadata?.namespace}/${o.metadata?.name}`;

/** The servers and databases that name this KeyProtector (spec or status), or are still under its key (R16). */
export function keyProtectorDependants(
  kp: Kube<KeyProtector>,
  servers: Store<Kube<EncryptedServer>>,
  databases: Store<Kube<EncryptedDatabase>>,
  smk: ServiceManagedKey,
): string[] {
  return [
    ...dependantsIn(kp, servers, smk).map((s) => named("EncryptedServer", s)),
    ...dependantsIn(kp, databases, smk).map((d) => named("EncryptedDatabase", d)),
  ];
}

/**
 * Who depends on a Local KEK Secret: the KeyProtectors that name it, and every envelope holding a
 * wrap under one of its versions (a protector or a retained wrap, of a live or a retained
 * envelope): deleting the key material would make those wraps undecryptable.
 */
export function localKeyDependants(
  secret: KubeObject,
  keyProtectors: Store<Kube<KeyProtector>>,
  envelopes: Store<KubeObject>,
): string[] {
  const namespace = secret.metadata?.namespace ?? "";
  const name = secret.metadata?.name ?? "";
  const out = keyProtectors
    .list(namespace)
    .filter((kp) => kp.spec.provider === "Local" && kp.spec.local?.secretRef.name === name)
    .map((kp) => named("KeyProtector", kp));
  for (const e of envelopes.list()) {
    let dekID: string | undefined;
    try {
      const { envelope } = envelopeFromCache(e);
      const under = envelope.wraps.some((w) => {
        const id = parseLocalKeyID(w.keyID);
        return id?.namespace === namespace && id.name === name;
      });
      if (under) dekID = envelope.dekID;
    } catch {
      continue; // an unreadable envelope is its owner's to report (R2)
    }
    if (dekID) out.push(`envelope Secret ${e.metadata?.namespace}/${e.metadata?.name} (DEK ${dekID})`);
  }
  return out;
}

/** Who depends on an envelope Secret: its owner, while the owner exists and is not being deleted. */
export function envelopeDependants(
  secret: KubeObject,
  servers: Store<Kube<EncryptedServer>>,
  databases: Store<Kube<EncryptedDatabase>>,
): string[] {
  const namespace = secret.metadata?.namespace ?? "";
  const out: string[] = [];
  const owner = (kind: string, get: (name: string) => KubeObject | undefined) => {
    const name = envelopeOwnerName(secret, kind);
    const o = name ? get(name) : undefined;
    if (o && !o.metadata?.deletionTimestamp) out.push(named(kind, o));
  };
  owner("EncryptedServer", (name) => servers.get(namespace, name));
  owner("EncryptedDatabase", (name) => databases.get(namespace, name));
  return out;
}
