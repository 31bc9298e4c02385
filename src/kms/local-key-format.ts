/**
 * R7: how a Local KEK is kept in a Kubernetes Secret (type `tde.dev/local-key`): one JSON
 * document under `key.json` with every version (PKCS#8 private key, created, enabled, nbf, exp)
 * and the soft-deletion time. Pure: parsing, building and describing; no I/O.
 *
 * The private keys live only in the Secret's data; no message or error built here contains them.
 */
import { createPrivateKey, createPublicKey, type KeyObject, randomBytes } from "node:crypto";
import { publicKeyDer, rsaKeySize, thumbprintOfDer } from "../crypto/thumbprint.js";
import type { SecretObject } from "./local-secrets.js";
import { KeyAccessError, type KeyDescription } from "./provider.js";

export const LOCAL_KEY_SECRET_TYPE = "tde.dev/local-key";
export const LOCAL_KEY_DATA_KEY = "key.json";
export const LOCAL_RECOVERY_LEVEL = "Recoverable";
export const LOCAL_RECOVERABLE_DAYS = 90;
export const SERVICE_MANAGED_KEY_NAME = "tde-service-managed-key";
export const DELETED_AT_ANNOTATION = "tde.dev/deleted-at";
export const LOCAL_KEY_LABELS = {
  "app.kubernetes.io/managed-by": "tde-operator",
  "tde.dev/local-key": "true",
};

/** One stored version. */
export interface StoredVersion {
  version: string;
  createdOn: string;
  enabled: boolean;
  notBefore?: string;
  expiresOn?: string;
  privateKeyPem: string;
}

export interface StoredKey {
  /** oldest first; the newest is the current version (R6) */
  versions: StoredVersion[];
  deletedAt?: string;
}

/** A version with its key material loaded and described. */
export interface LoadedVersion {
  stored: StoredVersion;
  privateKey: KeyObject;
  /** made once per loaded version, not at every wrap (each is an OpenSSL key outside the V8 heap) */
  publicKey: KeyObject;
  description: KeyDescription;
}

/** A local key id: local://NAMESPACE/NAME/VERSION. */
export function localKeyID(namespace: string, name: string, version: string): string {
  return `local://${namespace}/${name}/${version}`;
}

export function parseLocalKeyID(
  keyID: string,
): { namespace: string; name: string; version: string } | undefined {
  const match = /^local:\/\/([^/]+)\/([^/]+)\/([^/]+)$/.exec(keyID);
  if (!match) return undefined;
  return { namespace: match[1]!, name: match[2]!, version: match[3]! };
}

/** The stored key of a Secret; KeyNotFound for a Secret that is not a (readable) local key. */
export function parseStoredKey(secret: SecretObject, namespace: string, name: string): StoredKey {
  const raw = secret.data?.[LOCAL_KEY_DATA_KEY];
  if (secret.type !== LOCAL_KEY_SECRET_TYPE || raw === undefined) {
    throw new KeyAccessError(
      "KeyNotFound",
      `Secret ${namespace}/${name} is not a local key (type ${LOCAL_KEY_SECRET_TYPE})`,
    );
  }
  try {
    const parsed = JSON.parse(Buffer.from(raw, "base64").toString("utf8")) as StoredKey;
    if (!Array.isArray(parsed.versions) || parsed.versions.length === 0) throw new Error("no versions");
    return parsed;
  } catch {
    // never echo the content: it holds private keys
    throw new KeyAccessError("KeyNotFound", `Secret ${namespace}/${name} holds a malformed local key`);
  }
}

/** The Secret that holds a stored key; with `resourceVersion`, an optimistic-concurrency update. */
export function localKeySecret(
  namespace: string,
  name: string,
  stored: StoredKey,
  resourceVersion?: string,
): SecretObject {
  return {
    apiVersion: "v1",
    kind: "Secret",
    type: LOCAL_KEY_SECRET_TYPE,
    metadata: {
      namespace,
      name,
      labels: { ...LOCAL_KEY_LABELS },
      ...(stored.deletedAt ? { annotations: { [DELETED_AT_ANNOTATION]: stored.deletedAt } } : {}),
      ...(resourceVersion ? { resourceVersion } : {}),
    },
    data: { [LOCAL_KEY_DATA_KEY]: Buffer.from(JSON.stringify(stored), "utf8").toString("base64") },
  };
}

export interface VersionOptions {
  notBefore?: Date;
  expiresOn?: Date;
  enabled?: boolean;
}

/** A new stored version of `privateKey`, with a random version id. */
export function storedVersion(privateKey: KeyObject, options: VersionOptions, now: Date): StoredVersion {
  return {
    version: randomBytes(16).toString("hex"),
    createdOn: now.toISOString(),
    enabled: options.enabled ?? true,
    ...(options.notBefore ? { notBefore: options.notBefore.toISOString() } : {}),
    ...(options.expiresOn ? { expiresOn: options.expiresOn.toISOString() } : {}),
    privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
  };
}

/** A stored version's key material and what the vault says about it (R5, R8). */
export function loadVersion(namespace: string, name: string, stored: StoredVersion): LoadedVersion {
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(stored.privateKeyPem);
  } catch {
    throw new KeyAccessError(
      "KeyNotFound",
      `local key ${namespace}/${name} version ${stored.version} is unreadable`,
    );
  }
  const der = publicKeyDer(privateKey);
  const description: KeyDescription = {
    keyID: localKeyID(namespace, name, stored.version),
    version: stored.version,
    keyType: "RSA",
    keySize: rsaKeySize(privateKey),
    enabled: stored.enabled,
    createdOn: new Date(stored.createdOn),
    ...(stored.notBefore ? { notBefore: new Date(stored.notBefore) } : {}),
    ...(stored.expiresOn ? { expiresOn: new Date(stored.expiresOn) } : {}),
    recoveryLevel: LOCAL_RECOVERY_LEVEL,
    recoverableDays: LOCAL_RECOVERABLE_DAYS,
    publicKeyDer: der,
    thumbprint: thumbprintOfDer(der),
    publicKeyKnown: true,
  };
  return { stored, privateKey, publicKey: createPublicKey(privateKey), description };
}
