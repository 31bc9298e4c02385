/**
 * The tde.dev/v1alpha1 API: kinds, types, constants, conditions and durations. This module
 * imports nothing else of ours; everything else imports it.
 */
export * from "./conditions.js";
export * from "./constants.js";
export * from "./defaults.js";
export * from "./duration.js";
export * from "./health.js";
export type {
  CrossNamespaceReference,
  DeletionPolicy,
  IdentityType,
  KeyProtectorListEntry,
  LocalObjectReference,
  NamespacedName,
  ObjectMeta,
  ProtectorSpec,
  ProtectorType,
  ResourceState,
  SecretKeySelector,
} from "./schema/common.js";
export { DELETION_POLICIES, IDENTITY_TYPES, PROTECTOR_TYPES, RESOURCE_STATES } from "./schema/common.js";
export type {
  EffectiveProtector,
  KeyListEntry,
  KeyListRole,
  ProtectorSource,
  RemoteSecondaryStatus,
  Replication,
  ReplicationRole,
  Restore,
  RotationStatus,
} from "./schema/encrypteddatabase.js";
export {
  KEY_LIST_ROLES,
  MAX_KEYS,
  MAX_RESTORE_TARGETS,
  MAX_SECONDARIES,
  PROTECTOR_SOURCES,
  REPLICATION_ROLES,
} from "./schema/encrypteddatabase.js";
export type {
  EnforcementMode,
  EnforcementPatch,
  EnforcementStatus,
  RevalidationMode,
  ServerProtectorStatus,
  ServerSource,
  SourceKind,
  WorkloadRef,
} from "./schema/encryptedserver.js";
export {
  APPS_WORKLOAD_KINDS,
  DEFAULT_WORKLOAD_API_VERSION,
  ENFORCEMENT_MODES,
  GRACE_PERIOD_BOUNDS,
  REVALIDATION_MODES,
  SOURCE_KINDS,
} from "./schema/encryptedserver.js";
export type {
  AzureKeyVaultKey,
  KeyProtectorRequirements,
  LocalKey,
  Provider,
  UnmetRequirement,
} from "./schema/keyprotector.js";
export { PROVIDERS } from "./schema/keyprotector.js";
export * from "./types.js";
