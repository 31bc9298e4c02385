/** The API group, version and names of the three kinds (SPEC: group tde.dev, version v1alpha1). */
export const GROUP = "tde.dev";
export const VERSION = "v1alpha1";
export const API_VERSION = `${GROUP}/${VERSION}` as const;
/** `kubectl get tde` lists every kind of ours. */
export const CATEGORY = "tde";

export const KINDS = {
  KeyProtector: "KeyProtector",
  EncryptedServer: "EncryptedServer",
  EncryptedDatabase: "EncryptedDatabase",
} as const;
export type KindName = (typeof KINDS)[keyof typeof KINDS];

export const PLURALS = {
  KeyProtector: "keyprotectors",
  EncryptedServer: "encryptedservers",
  EncryptedDatabase: "encrypteddatabases",
} as const;

export const SINGULARS = {
  KeyProtector: "keyprotector",
  EncryptedServer: "encryptedserver",
  EncryptedDatabase: "encrypteddatabase",
} as const;

export const SHORT_NAMES = {
  KeyProtector: "kp",
  EncryptedServer: "esrv",
  EncryptedDatabase: "edb",
} as const;

/** A kind as the API server serves it (structurally the runtime's ResourceKind). */
export interface ApiResourceKind {
  readonly group: string;
  readonly version: string;
  readonly plural: string;
  readonly kind: string;
  readonly namespaced: boolean;
}

function resource(kind: KindName): ApiResourceKind {
  return { group: GROUP, version: VERSION, plural: PLURALS[kind], kind, namespaced: true };
}

export const KEY_PROTECTOR_RESOURCE = resource("KeyProtector");
export const ENCRYPTED_SERVER_RESOURCE = resource("EncryptedServer");
export const ENCRYPTED_DATABASE_RESOURCE = resource("EncryptedDatabase");

/** The Secret type of an envelope (R2). */
export const ENVELOPE_SECRET_TYPE = "tde.dev/envelope";

/** The number of hex characters of a thumbprint shown in printer columns (`thumbprintShort`). */
export const THUMBPRINT_SHORT_LENGTH = 12;

/** The short form of a thumbprint that status carries for `kubectl get` (first 12 hex characters). */
export function shortThumbprint(thumbprint: string): string {
  return thumbprint.slice(0, THUMBPRINT_SHORT_LENGTH);
}
