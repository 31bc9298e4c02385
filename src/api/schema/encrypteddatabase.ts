/** EncryptedDatabase: a database's own DEK, its effective protector, replication and restore (SPEC 4-6). */
import { type Static, Type } from "@sinclair/typebox";
import { DEFAULTS } from "../defaults.js";
import {
  type CelRule,
  ClusterName,
  Conditions,
  CrossNamespaceReference,
  DeletionPolicy,
  Identity,
  KeyProtectorList,
  LocalObjectReference,
  NamespacedName,
  ObservedGeneration,
  Opt,
  PROTECTOR_TYPES,
  ProtectorSpec,
  ResourceStateSchema,
  StringEnum,
  Timestamp,
  VALIDATIONS,
} from "./common.js";

export const REPLICATION_ROLES = ["Primary", "Secondary"] as const;
export type ReplicationRole = (typeof REPLICATION_ROLES)[number];
export const PROTECTOR_SOURCES = ["Database", "Server"] as const;
export type ProtectorSource = (typeof PROTECTOR_SOURCES)[number];
export const KEY_LIST_ROLES = ["protector", "additional"] as const;
export type KeyListRole = (typeof KEY_LIST_ROLES)[number];

/** R19: a primary has at most this many secondaries. */
export const MAX_SECONDARIES = 4;
/** Bounds on the lists of a database spec (they keep CEL cost estimates small). */
export const MAX_KEYS = 16;
export const MAX_RESTORE_TARGETS = 16;

/** R19, R31: a secondary's primary, in this cluster or (with `cluster`) in another. */
const PrimaryReference = (() => {
  const ref = CrossNamespaceReference(
    "For a Secondary: its primary EncryptedDatabase, which must be a Primary (no chaining) and list this database among its secondaries (R19, R31). Required for a Secondary, forbidden for a Primary; immutable.",
    "primary EncryptedDatabase",
  );
  return Type.Object(
    {
      cluster: Opt(
        ClusterName(
          "The cluster the primary runs in, when not this one: the operator reads it through the kubeconfig Secret <cluster>-kubeconfig (key value) in the operator's namespace, and the primary must list this database with this operator's --cluster-name (R19, R31). Empty: this cluster.",
        ),
      ),
      ...ref.properties,
    },
    { description: ref.description },
  );
})();

/** R19, R31: one secondary a primary allows, in this cluster or another. */
const SecondaryReference = (() => {
  const ref = NamespacedName("A secondary EncryptedDatabase.", "secondary EncryptedDatabase");
  return Type.Object(
    {
      // defaulted: a key of the list map must be required or have a default
      cluster: Opt(
        Type.String({
          ...ClusterName(
            "The cluster the secondary runs in, as this operator's kubeconfig Secret <cluster>-kubeconfig names it. Empty (the default): this cluster.",
            { allowEmpty: true },
          ),
          default: "",
        }),
      ),
      ...ref.properties,
    },
    { description: ref.description },
  );
})();

export const ReplicationSchema = Type.Object(
  {
    role: StringEnum(REPLICATION_ROLES, {
      description:
        "Primary or Secondary. May change only from Secondary to Primary (promotion, R22); promoting also removes primaryRef.",
    }),
    primaryRef: Opt({
      ...PrimaryReference,
      [VALIDATIONS]: [
        {
          rule: "self == oldSelf",
          message:
            "spec.replication.primaryRef is immutable: a secondary cannot follow another primary; create a new secondary instead",
        },
      ] satisfies CelRule[],
    } as typeof PrimaryReference),
    secondaries: Opt(
      Type.Array(SecondaryReference, {
        description: `For a Primary: the secondaries allowed to replicate it, at most ${MAX_SECONDARIES} (R19). A secondary in another namespace or cluster is honoured only when listed here (R31).`,
        maxItems: MAX_SECONDARIES,
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["cluster", "namespace", "name"],
      }),
    ),
  },
  {
    description:
      "Geo-replication (R19-R22). A Secondary holds its primary's DEK wrapped under its own KeyProtectors and keeps its key list in sync.",
    [VALIDATIONS]: [
      {
        rule: "self.role != 'Secondary' || has(self.primaryRef)",
        message:
          "spec.replication.primaryRef is required when role is Secondary: name the primary EncryptedDatabase (namespace and name)",
        fieldPath: ".primaryRef",
        reason: "FieldValueRequired",
      },
      {
        rule: "self.role != 'Primary' || !has(self.primaryRef)",
        message:
          "spec.replication.primaryRef is only for role Secondary: a Primary does not follow another database; remove primaryRef",
        fieldPath: ".primaryRef",
        reason: "FieldValueForbidden",
      },
      {
        rule: "self.role != 'Secondary' || !has(self.secondaries)",
        message:
          "spec.replication.secondaries is only for role Primary: a Secondary cannot have secondaries (no chaining); remove secondaries",
        fieldPath: ".secondaries",
        reason: "FieldValueForbidden",
      },
      {
        rule: "self.role == oldSelf.role || (oldSelf.role == 'Secondary' && self.role == 'Primary')",
        message:
          "spec.replication.role can change only from Secondary to Primary (promotion): to make this database a Secondary, create a new EncryptedDatabase with role Secondary",
        fieldPath: ".role",
        reason: "FieldValueForbidden",
      },
    ] satisfies CelRule[],
  },
);

export const RestoreSchema = Type.Object(
  {
    sourceRef: CrossNamespaceReference(
      "The EncryptedDatabase restored, which may since have been deleted (its envelope is retained, R25). Another namespace is honoured only when the source lists this database in allowedRestoreTargets (R31).",
      "source EncryptedDatabase",
    ),
    pointInTime: Opt(
      Type.String({
        description: "The time to restore to (RFC 3339). Empty: the latest.",
        format: "date-time",
        maxLength: 64,
      }),
    ),
    keys: Opt(
      KeyProtectorList(
        "spec.restore.keys",
        "KeyProtectors, in this namespace, that together hold every thumbprint that protected the source at pointInTime (R18, R24). A missing thumbprint is reported and nothing is created half-way.",
        MAX_KEYS,
      ),
    ),
  },
  {
    description:
      "Create this database as a restore of another (R23, R24): it gets the source's DEK and starts Inaccessible until revalidated. Set at creation only; immutable.",
    [VALIDATIONS]: [
      {
        rule: "self == oldSelf",
        message: "spec.restore is immutable: to restore again, create a new EncryptedDatabase",
      },
    ] satisfies CelRule[],
  },
);

export const EncryptedDatabaseSpecSchema = Type.Object(
  {
    serverRef: {
      ...LocalObjectReference(
        "The EncryptedServer this database belongs to, in the same namespace (R31). Immutable.",
        "Name of an EncryptedServer in this namespace.",
      ),
      [VALIDATIONS]: [
        {
          rule: "self == oldSelf",
          message:
            "spec.serverRef is immutable: a database cannot move to another server; restore it into a new EncryptedDatabase instead",
        },
      ] satisfies CelRule[],
    } as ReturnType<typeof LocalObjectReference>,
    encryptionProtector: Opt(
      ProtectorSpec(
        "spec.encryptionProtector",
        "The database's own protector, overriding the server's (R13, R14). Absent: inherit the server's. On a server with a customer-managed key a database cannot choose ServiceManaged, nor drop its own protector (R15): the operator refuses such a change on the ProtectorChangeAccepted condition and keeps the key.",
      ),
    ),
    keys: Opt(
      KeyProtectorList(
        "spec.keys",
        "Additional KeyProtectors, in this namespace, kept wrapping the DEK for restore and replication; never the protector (R20, R24).",
        MAX_KEYS,
      ),
    ),
    identity: Opt(
      Identity(
        "spec.identity",
        "At most one identity used instead of each KeyProtector's own to reach this database's keys; it must be proven on every one of them. Absent: each KeyProtector's identity.",
        { userAssignedOnly: true },
      ),
    ),
    autoRotation: Opt(
      Type.Boolean({
        description:
          "Whether a new version of the protector's key is applied automatically (R6). Default true; false keeps the current version until the spec changes.",
        default: DEFAULTS.autoRotation,
      }),
    ),
    replication: Opt(ReplicationSchema),
    restore: Opt(RestoreSchema),
    allowedRestoreTargets: Opt(
      Type.Array(NamespacedName("A database allowed to restore this one.", "EncryptedDatabase"), {
        description:
          "EncryptedDatabases in other namespaces allowed to restore this one through restore.sourceRef (R31).",
        maxItems: MAX_RESTORE_TARGETS,
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["namespace", "name"],
      }),
    ),
    deletionPolicy: Opt(DeletionPolicy("database")),
  },
  {
    description: "The database's server, protector, extra keys, replication and restore source.",
    [VALIDATIONS]: [
      {
        rule: "!has(self.keys) || !has(self.encryptionProtector) || !has(self.encryptionProtector.keyProtectorRef) || !self.keys.exists(k, k.keyProtectorRef.name == self.encryptionProtector.keyProtectorRef.name)",
        message:
          "spec.keys must not contain the protector spec.encryptionProtector.keyProtectorRef: keys lists only additional KeyProtectors; remove it from spec.keys",
        fieldPath: ".keys",
        reason: "FieldValueInvalid",
      },
      {
        rule: "!has(self.restore) || !has(self.replication) || self.replication.role != 'Secondary'",
        message:
          "spec.restore and a Secondary replication role exclude each other: a secondary gets its DEK from its primary; remove one",
        fieldPath: ".restore",
        reason: "FieldValueForbidden",
      },
      {
        rule: "has(self.restore) == has(oldSelf.restore)",
        message:
          "spec.restore can be set only when the database is created and cannot be removed: create a new EncryptedDatabase to restore",
        fieldPath: ".restore",
        reason: "FieldValueForbidden",
      },
      {
        rule: "!has(self.replication) || self.replication.role != 'Secondary' || (has(oldSelf.replication) && oldSelf.replication.role == 'Secondary')",
        message:
          "an existing database cannot become a Secondary: create a new EncryptedDatabase with spec.replication.role Secondary",
        fieldPath: ".replication",
        reason: "FieldValueForbidden",
      },
    ] satisfies CelRule[],
  },
);

export const EffectiveProtectorSchema = Type.Object(
  {
    source: StringEnum(PROTECTOR_SOURCES, {
      description: "Database: the database's own encryptionProtector. Server: inherited from the server.",
    }),
    type: StringEnum(PROTECTOR_TYPES, { description: "ServiceManaged or CustomerManaged." }),
    keyProtectorName: Opt(
      Type.String({ description: "The KeyProtector, for CustomerManaged.", maxLength: 253 }),
    ),
    keyID: Type.String({ description: "The key id, with version, that wraps the DEK.", maxLength: 1024 }),
    thumbprint: Type.String({ description: "The key's thumbprint (R3).", maxLength: 128 }),
    thumbprintShort: Type.String({
      description: "The first 12 hex characters of thumbprint.",
      maxLength: 16,
    }),
  },
  { description: "The protector wrapping the database DEK now, and where it comes from (R13)." },
);

export const KeyListEntrySchema = Type.Object(
  {
    keyID: Type.String({ description: "The key id, with version.", maxLength: 1024 }),
    thumbprint: Type.String({ description: "The key's thumbprint (R3).", maxLength: 128 }),
    role: StringEnum(KEY_LIST_ROLES, {
      description:
        "protector: the key that wraps the DEK. additional: a key kept for restore or replication.",
    }),
    keyProtectorName: Opt(Type.String({ description: "The KeyProtector holding the key.", maxLength: 253 })),
    since: Timestamp("When the key started protecting (or wrapping) the DEK in this role."),
    until: Opt(Timestamp("When it stopped; absent while current.")),
  },
  { description: "One key in the database's key history." },
);

export const RotationStatusSchema = Type.Object(
  {
    phase: Type.String({
      description: "The step the rotation is in (R16, R21), e.g. AddingToSecondaries, Wrapping, Switching.",
      maxLength: 64,
    }),
    fromThumbprint: Opt(
      Type.String({ description: "The thumbprint of the protector being replaced.", maxLength: 128 }),
    ),
    toKeyID: Type.String({ description: "The key id, with version, rotated to.", maxLength: 1024 }),
    toThumbprint: Type.String({ description: "The thumbprint of the key rotated to.", maxLength: 128 }),
    toKeyProtectorName: Opt(Type.String({ description: "The KeyProtector rotated to.", maxLength: 253 })),
    startedAt: Timestamp("When the rotation started."),
  },
  { description: "A rotation in progress; absent when none is." },
);

export const REMOTE_SECONDARY_STATES = ["Linked", "NotLinked", "Promoted", "Unreachable"] as const;

/** R19-R22: one secondary in another cluster, as the primary's operator last read it. */
export const RemoteSecondaryStatusSchema = Type.Object(
  {
    cluster: Type.String({ description: "The secondary's cluster.", maxLength: 52 }),
    namespace: Type.String({ description: "The secondary's namespace.", maxLength: 63 }),
    name: Type.String({ description: "The secondary's name.", maxLength: 253 }),
    state: StringEnum(REMOTE_SECONDARY_STATES, {
      description:
        "Linked: it names this primary back (R31). NotLinked: it does not (yet). Promoted: it became a Primary, this one is demoted (R22). Unreachable: its cluster cannot be read.",
    }),
    keyListSynced: Opt(
      StringEnum(["True", "False", "Unknown"] as const, {
        description: "Its KeyListSynced condition (R20), as read from its cluster.",
      }),
    ),
    protectorThumbprint: Opt(
      Type.String({ description: "The thumbprint of its effective protector, as read.", maxLength: 128 }),
    ),
    reason: Opt(
      Type.String({
        description:
          "Why its cluster cannot be read: NoKubeconfig, BadKubeconfig, Unreachable, Forbidden, ServerError.",
        maxLength: 64,
      }),
    ),
  },
  { description: "A secondary in another cluster." },
);

export const EncryptedDatabaseStatusSchema = Type.Object(
  {
    observedGeneration: Opt(ObservedGeneration()),
    conditions: Opt(
      Conditions(
        "Ready, KeyAccessible, KeyListSynced, ProtectorChangeAccepted, RotationBlocked, ReplicationLinked, Revalidated, Restored",
      ),
    ),
    state: Opt(ResourceStateSchema),
    envelopeSecretName: Opt(
      Type.String({
        description: "The Secret (type tde.dev/envelope) holding the wrapped database DEK (R2).",
        maxLength: 253,
      }),
    ),
    dekID: Opt(Type.String({ description: "The id of the database DEK.", maxLength: 128 })),
    effectiveProtector: Opt(EffectiveProtectorSchema),
    keyList: Opt(
      Type.Array(KeyListEntrySchema, {
        description:
          "The database's key history (R18): which keys are current (no until) and which were in use at any time T.",
        "x-kubernetes-list-type": "atomic",
      }),
    ),
    missingThumbprints: Opt(
      Type.Array(Type.String({ description: "A thumbprint.", maxLength: 128 }), {
        description:
          "Thumbprints this database lacks: of its primary's key list (a Secondary, R20) or of the restore source (R24).",
        maxItems: 64,
        "x-kubernetes-list-type": "set",
      }),
    ),
    rotation: Opt(RotationStatusSchema),
    remoteSecondaries: Opt(
      Type.Array(RemoteSecondaryStatusSchema, {
        description:
          "For a Primary: its secondaries in other clusters and their sync state, as last read (R19-R22); absent with none.",
        maxItems: MAX_SECONDARIES,
        "x-kubernetes-list-type": "atomic",
      }),
    ),
    keyAccessLostSince: Opt(Timestamp("When key access was lost; absent while the key is reachable.")),
    inaccessibleSince: Opt(Timestamp("When the database became Inaccessible.")),
    lastRevalidatedToken: Opt(
      Type.String({
        description: "The server's revalidationToken at the last revalidation.",
        maxLength: 253,
      }),
    ),
  },
  { description: "What the operator last observed and did." },
);

export type EncryptedDatabaseSpec = Static<typeof EncryptedDatabaseSpecSchema>;
export type EncryptedDatabaseStatus = Static<typeof EncryptedDatabaseStatusSchema>;
export type Replication = Static<typeof ReplicationSchema>;
export type Restore = Static<typeof RestoreSchema>;
export type EffectiveProtector = Static<typeof EffectiveProtectorSchema>;
export type KeyListEntry = Static<typeof KeyListEntrySchema>;
export type RotationStatus = Static<typeof RotationStatusSchema>;
export type RemoteSecondaryStatus = Static<typeof RemoteSecondaryStatusSchema>;
