/**
 * The TypeScript types of the three kinds, from the TypeBox schemas.
 *
 * `XSpec` is a spec as the API server serves it: every field with a schema default is present.
 * `XSpecInput` is a spec as a person writes it: defaulted fields may be absent. Controllers read
 * `XSpec`; code that builds objects client-side writes `XSpecInput` (see defaults.ts).
 */
import type { Condition } from "./conditions.js";
import type { API_VERSION } from "./constants.js";
import type { KeySize } from "./defaults.js";
import type {
  DeletionPolicy,
  Identity as IdentityInput,
  IdentityType,
  ObjectMeta,
  ProtectorSpec,
  ProtectorType,
} from "./schema/common.js";
import type {
  EncryptedDatabaseSpec as EncryptedDatabaseSpecInput,
  EncryptedDatabaseStatus as EncryptedDatabaseStatusRaw,
} from "./schema/encrypteddatabase.js";
import type {
  EncryptedServerSpec as EncryptedServerSpecInput,
  EncryptedServerStatus as EncryptedServerStatusRaw,
  EnforcementMode,
  RevalidationMode,
} from "./schema/encryptedserver.js";
import type {
  KeyProtectorRequirements,
  KeyProtectorSpec as KeyProtectorSpecInput,
  KeyProtectorStatus as KeyProtectorStatusRaw,
} from "./schema/keyprotector.js";

export type { EncryptedDatabaseSpecInput, EncryptedServerSpecInput, KeyProtectorSpecInput };

/** An identity as served: `type` is always set (default "Default"). */
export type Identity = Omit<IdentityInput, "type"> & { type: IdentityType };
export type { IdentityInput };

/** R5 requirements as served: every field is set. */
export type Requirements = {
  [K in keyof KeyProtectorRequirements]-?: NonNullable<KeyProtectorRequirements[K]>;
} & {
  allowedKeySizes: KeySize[];
};

export type KeyProtectorSpec = Omit<
  KeyProtectorSpecInput,
  "identity" | "requirements" | "autoRotationWindow"
> & {
  identity?: Identity;
  requirements: Requirements;
  autoRotationWindow: string;
};

/** A server protector as served: type is always set (default ServiceManaged). */
export type ServerProtector = Omit<ProtectorSpec, "type"> & { type: ProtectorType };

export type EncryptedServerSpec = Omit<
  EncryptedServerSpecInput,
  "protector" | "keyAccessGracePeriod" | "revalidation" | "enforcement" | "deletionPolicy"
> & {
  protector: ServerProtector;
  keyAccessGracePeriod: string;
  revalidation: RevalidationMode;
  enforcement: EnforcementMode;
  deletionPolicy: DeletionPolicy;
};

export type EncryptedDatabaseSpec = Omit<
  EncryptedDatabaseSpecInput,
  "identity" | "autoRotation" | "deletionPolicy"
> & {
  identity?: Identity;
  autoRotation: boolean;
  deletionPolicy: DeletionPolicy;
};

type WithConditions<T> = Omit<T, "conditions"> & { conditions?: Condition[] };
export type KeyProtectorStatus = WithConditions<KeyProtectorStatusRaw>;
export type EncryptedServerStatus = WithConditions<EncryptedServerStatusRaw>;
export type EncryptedDatabaseStatus = WithConditions<EncryptedDatabaseStatusRaw>;

interface Resource<K extends string, Spec, Status> {
  apiVersion: typeof API_VERSION;
  kind: K;
  metadata: ObjectMeta;
  spec: Spec;
  status?: Status;
}

export type KeyProtector = Resource<"KeyProtector", KeyProtectorSpec, KeyProtectorStatus>;
export type EncryptedServer = Resource<"EncryptedServer", EncryptedServerSpec, EncryptedServerStatus>;
export type EncryptedDatabase = Resource<"EncryptedDatabase", EncryptedDatabaseSpec, EncryptedDatabaseStatus>;

/** The same kinds as written by a person or a client, before the API server's defaults. */
export type KeyProtectorInput = Resource<"KeyProtector", KeyProtectorSpecInput, KeyProtectorStatus>;
export type EncryptedServerInput = Resource<
  "EncryptedServer",
  EncryptedServerSpecInput,
  EncryptedServerStatus
>;
export type EncryptedDatabaseInput = Resource<
  "EncryptedDatabase",
  EncryptedDatabaseSpecInput,
  EncryptedDatabaseStatus
>;
