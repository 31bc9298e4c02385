/**
 * R7, R9, R16: the service-managed key the operator setting names (SERVICE_MANAGED_KEY_SETTING),
 * and a move from one to another. The move is the ordinary online re-wrap: when the setting
 * names a new KeyProtector, every service-managed DEK resolves to it and is re-wrapped (unwrap
 * with the previous key, wrap with the new, prove, switch; the old wrap kept as retained). Until
 * every service-managed DEK has moved, the previous key stays an unwrap candidate, the watchdog of
 * a DEK still under it watches it, and no retained wrap under it is pruned. A new key that is
 * missing or cannot take DEKs moves nothing: each DEK stays under the key it has. Pure: reads
 * the caches it is given.
 */

import type { EncryptedDatabase, EncryptedServer, KeyProtector } from "../api/index.js";
import { Reason } from "../api/index.js";
import type { Envelope } from "../crypto/index.js";
import type { Store } from "../runtime/index.js";
import { keyIDBelongsTo } from "./dek-operations.js";
import {
  type KekResolution,
  resolveKek,
  resolveKeyProtector,
  SERVICE_MANAGED_KEY_SETTING,
  type ServiceManagedKey,
  serviceManagedCandidates,
} from "./kek-resolution.js";
import { keyReferenceOf } from "./key-reference.js";
import type { ProtectingKey } from "./key-to-watch.js";
import type { Kube } from "./resources.js";

type Choice = { type: "ServiceManaged" | "CustomerManaged"; keyProtectorName?: string };

/**
 * The index of servers and databases whose status records a service-managed protector, by the
 * thumbprint of the key that protects their DEK: "is any service-managed DEK still under key T".
 */
export const BY_SERVICE_MANAGED_THUMBPRINT = "byServiceManagedThumbprint";

/** The thumbprint a server's or a database's status records for its service-managed protector. */
export function serviceManagedThumbprintOf(o: {
  status?:
    | {
        protector?: { type?: string; thumbprint?: string };
        effectiveProtector?: { type?: string; thumbprint?: string };
      }
    | undefined;
}): string | undefined {
  const p = o.status?.protector ?? o.status?.effectiveProtector;
  return p?.type === "ServiceManaged" && p.thumbprint ? p.thumbprint : undefined;
}

/** BY_SERVICE_MANAGED_THUMBPRINT values of a server or a database. */
export function serviceManagedIndexValues(o: Kube<EncryptedServer> | Kube<EncryptedDatabase>): string[] {
  const t = serviceManagedThumbprintOf(o as Parameters<typeof serviceManagedThumbprintOf>[0]);
  return t ? [t] : [];
}

/** Whether this KeyProtector is the one the setting names as the service-managed key. */
export function isServiceManagedKey(kp: Kube<KeyProtector>, smk: ServiceManagedKey): boolean {
  return kp.metadata.namespace === smk.namespace && kp.metadata.name === smk.keyProtectorName;
}

/**
 * A KeyProtector that may hold a previous service-managed key (R16): one that may unwrap
 * service-managed DEKs (`serviceManagedCandidates`) but is not the one the setting names.
 */
export function isPreviousServiceManagedCandidate(kp: Kube<KeyProtector>, smk: ServiceManagedKey): boolean {
  const namespace = kp.metadata.namespace;
  return (
    !isServiceManagedKey(kp, smk) &&
    (namespace === smk.namespace || namespace === (smk.operatorNamespace ?? smk.namespace))
  );
}

/**
 * The KeyProtector of a previous service-managed key that protects this DEK: one of the
 * candidates other than the current key, with this key's thumbprint, else naming its location.
 */
export function previousServiceManagedKey(
  keyProtectors: Store<Kube<KeyProtector>>,
  smk: ServiceManagedKey,
  protecting: ProtectingKey,
): Kube<KeyProtector> | undefined {
  const previous = serviceManagedCandidates(keyProtectors, smk).filter((kp) => !isServiceManagedKey(kp, smk));
  return (
    previous.find((kp) => kp.status?.thumbprint === protecting.thumbprint) ??
    previous.find((kp) => keyIDBelongsTo(keyReferenceOf(kp), protecting.keyID))
  );
}

/**
 * R7, R9, R13, R16: what a server's or a database's pass resolves: the key its choice asks for
 * (`chosen`) and the one its status records (`recorded`), which `keyToWatch` picks from.
 *
 * When both are the service-managed key and the DEK is under a previous one (the setting moved),
 * `recorded` is that previous key, so the watchdog keeps watching the key that protects the DEK;
 * and a new key that cannot take DEKs yet (not Ready, not accessible) is not chosen: the DEK stays
 * where it is, watched there, and Ready names the setting and the fix. A service-managed key that
 * is simply down (the DEK already under it) is reported as before: the key's own access reason.
 */
export function resolveProtector(
  keyProtectors: Store<Kube<KeyProtector>>,
  namespace: string,
  choice: Choice,
  recordedChoice: Choice | undefined,
  protecting: ProtectingKey | undefined,
  smk: ServiceManagedKey,
): { chosen: KekResolution; recorded: KekResolution | undefined } {
  let chosen = resolveKek(keyProtectors, namespace, choice, smk);
  if (!recordedChoice) return { chosen, recorded: undefined };
  const current = chosen.ok && choice.type === "ServiceManaged" ? chosen : undefined;
  const moved =
    recordedChoice.type === "ServiceManaged" &&
    protecting !== undefined &&
    (current ? current.kek.thumbprint !== protecting.thumbprint : true);
  const previousKp =
    moved && protecting ? previousServiceManagedKey(keyProtectors, smk, protecting) : undefined;
  if (!previousKp) return { chosen, recorded: resolveKek(keyProtectors, namespace, recordedChoice, smk) };
  const previous = resolveKeyProtector(previousKp, { customer: false });
  if (choice.type === "ServiceManaged" && chosen.ok && !(chosen.ready && chosen.access.accessible)) {
    chosen = {
      ok: false,
      reason: Reason.KeyProtectorNotReady,
      message: `the service-managed key, KeyProtector ${smk.namespace}/${smk.keyProtectorName} (${SERVICE_MANAGED_KEY_SETTING}), cannot take DEKs yet: ${chosen.notReadyMessage ?? chosen.access.detail ?? "its key is not accessible"}; fix it, or set the setting back to KeyProtector ${previousKp.metadata.namespace}/${previousKp.metadata.name}`,
    };
  }
  return { chosen, recorded: previous };
}

/**
 * R16: the retained wraps of a service-managed DEK kept while the service-managed key moves: a
 * retained wrap under a key that still protects another service-managed DEK stays, whatever its
 * retention window says, until every service-managed DEK has left that key. `protects(t)` says
 * whether any other service-managed server or database is still under thumbprint `t`.
 */
export function heldForServiceManagedMove(
  ownerThumbprint: string | undefined,
  envelope: Envelope,
  protects: (thumbprint: string) => boolean,
): string[] {
  if (ownerThumbprint === undefined) return [];
  return envelope.wraps
    .filter((w) => w.role === "retained" && protects(w.thumbprint))
    .map((w) => w.thumbprint);
}
