import {
  ENCRYPTED_DATABASE_RESOURCE,
  ENCRYPTED_SERVER_RESOURCE,
  type EncryptedDatabase,
  type EncryptedServer,
  KEY_PROTECTOR_RESOURCE,
  type KeyProtector,
} from "../api/index.js";
import type { KubeObject, ResourceKind } from "../runtime/index.js";
import { boundedName } from "../runtime/names.js";

/** The kinds the controllers read and write, as the runtime addresses them. */
export const KeyProtectorKind: ResourceKind = KEY_PROTECTOR_RESOURCE;
export const EncryptedServerKind: ResourceKind = ENCRYPTED_SERVER_RESOURCE;
export const EncryptedDatabaseKind: ResourceKind = ENCRYPTED_DATABASE_RESOURCE;
export const SecretKind: ResourceKind = { group: "", version: "v1", plural: "secrets", kind: "Secret" };

export type TdeObject = KeyProtector | EncryptedServer | EncryptedDatabase;

/** The finalizer that lets Retain/Shred (R25) run before a server or database is gone. */
export const FINALIZER = "tde.dev/envelope-protection";

/** Labels on every envelope Secret, so the operator's Secret informer sees only its own. */
export const ENVELOPE_LABEL = "tde.dev/envelope";
export const OWNER_KIND_LABEL = "tde.dev/owner-kind";
/** The label the Local provider puts on its KEK Secrets (src/kms/local.ts): what their protection watches (R33). */
export const LOCAL_KEY_LABEL = "tde.dev/local-key";
/** A label value (at most 63 characters, R32): the owner's name, shortened with a hash when longer. */
export const OWNER_NAME_LABEL = "tde.dev/owner-name";
/** The owner's full name (annotations have no 63-character limit): what owner lookups read (R32). */
export const OWNER_NAME_ANNOTATION = "tde.dev/owner-name";

/**
 * The envelope Secret of a server or database: deterministic, so a crash between creating it and
 * recording it in status can never produce a second DEK (the retry finds the first). R32: within
 * 253 characters and collision-free for every valid name (a long one keeps a readable prefix and
 * a hash of the whole name).
 */
export function envelopeSecretName(kind: "EncryptedServer" | "EncryptedDatabase", name: string): string {
  return boundedName(kind === "EncryptedServer" ? "tde-esrv-" : "tde-edb-", name);
}

/** One of our kinds as the runtime handles it (its objects carry any further fields). */
export type Kube<T> = T & KubeObject;
