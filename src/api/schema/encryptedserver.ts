/** EncryptedServer: a database server's DEK, its protector and key-access enforcement (SPEC section 3). */
import { type Static, Type } from "@sinclair/typebox";
import { DEFAULTS } from "../defaults.js";
import {
  type CelRule,
  CheckedString,
  Conditions,
  CrossNamespaceReference,
  DeletionPolicy,
  Duration,
  ObjectName,
  ObservedGeneration,
  Opt,
  PROTECTOR_TYPES,
  ProtectorSpec,
  ResourceStateSchema,
  StringEnum,
  Timestamp,
  VALIDATIONS,
} from "./common.js";

export const REVALIDATION_MODES = ["Automatic", "Manual"] as const;
export type RevalidationMode = (typeof REVALIDATION_MODES)[number];
export const ENFORCEMENT_MODES = ["ScaleToZero", "NetworkIsolation", "Patch", "None"] as const;
export type EnforcementMode = (typeof ENFORCEMENT_MODES)[number];
/** The kinds whose apiVersion may be left out of a workloadRef: it is apps/v1. */
export const APPS_WORKLOAD_KINDS = ["StatefulSet", "Deployment"] as const;
export const DEFAULT_WORKLOAD_API_VERSION = "apps/v1";
/** GROUP/VERSION (or a core VERSION), as in an object's apiVersion. CEL has no `\.`, hence `[.]`. */
export const API_VERSION_REGEX =
  "^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?v[0-9]+((alpha|beta)[0-9]+)?$";
export const KIND_REGEX = "^[A-Z][A-Za-z0-9]*$";
export const SOURCE_KINDS = ["Restore", "Replica"] as const;
export type SourceKind = (typeof SOURCE_KINDS)[number];

/** keyAccessGracePeriod bounds: seconds for demos, a week at most. */
export const GRACE_PERIOD_BOUNDS = { min: "5s", max: "168h" } as const;

export const WorkloadRefSchema = Type.Object(
  {
    apiVersion: Opt(
      CheckedString(
        API_VERSION_REGEX,
        "spec.workloadRef.apiVersion must be GROUP/VERSION as in the object's own apiVersion, e.g. apps/v1, postgresql.cnpg.io/v1 or k8s.mariadb.com/v1alpha1",
        {
          description:
            "The workload's apiVersion (GROUP/VERSION), e.g. postgresql.cnpg.io/v1. May be left out for a StatefulSet or Deployment (apps/v1).",
          maxLength: 316,
        },
      ),
    ),
    kind: CheckedString(
      KIND_REGEX,
      "spec.workloadRef.kind must be a kind as written in the object's own kind field, in CamelCase: StatefulSet, Deployment, Cluster, MariaDB",
      {
        description:
          "The workload's kind: StatefulSet, Deployment, or any kind that serves the /scale subresource (a database operator's cluster resource, such as CloudNativePG's Cluster or mariadb-operator's MariaDB).",
        minLength: 1,
        maxLength: 63,
      },
    ),
    name: ObjectName("Name of the workload, in this namespace."),
  },
  {
    description:
      "The object running the database engine, in this namespace: what enforcement acts on (R10). When it is controlled by another object (a controller ownerReference), enforcement acts on that owner instead and the EnforcementTarget condition says so.",
    [VALIDATIONS]: [
      {
        rule: `has(self.apiVersion) || self.kind in [${APPS_WORKLOAD_KINDS.map((k) => `'${k}'`).join(", ")}]`,
        messageExpression:
          "'spec.workloadRef.apiVersion is required for kind ' + self.kind + ': set the GROUP/VERSION that serves it, e.g. postgresql.cnpg.io/v1 for a CloudNativePG Cluster (only StatefulSet and Deployment default to apps/v1)'",
        fieldPath: ".apiVersion",
        reason: "FieldValueRequired",
      },
    ] satisfies CelRule[],
  },
);

/** A string-to-string map (annotations, labels). */
const StringMap = (description: string) =>
  Type.Unsafe<Record<string, string>>({
    description,
    type: "object",
    additionalProperties: { type: "string", maxLength: 4096 },
    maxProperties: 32,
  });

/**
 * R10 Patch enforcement: what the platform sets on the workload while the server is
 * Inaccessible, as a JSON merge patch, and takes back (to exactly the previous values) on
 * revalidation, e.g. CloudNativePG's hibernation annotation.
 */
export const EnforcementPatchSchema = Type.Object(
  {
    metadata: Opt(
      Type.Object(
        {
          annotations: Opt(
            StringMap('Annotations to set while Inaccessible, e.g. cnpg.io/hibernation: "on".'),
          ),
          labels: Opt(StringMap("Labels to set while Inaccessible.")),
        },
        {
          description: "Annotations and labels to set on the workload while Inaccessible.",
          [VALIDATIONS]: [
            {
              rule: "!has(self.annotations) || self.annotations.all(k, !k.startsWith('tde.dev/'))",
              message:
                "spec.enforcementPatch.metadata.annotations cannot set tde.dev/ annotations: the operator keeps its own records there",
              fieldPath: ".annotations",
            },
          ] satisfies CelRule[],
        },
      ),
    ),
    spec: Opt(
      Type.Unsafe<Record<string, unknown>>({
        description:
          "Fields of the workload's spec to set while Inaccessible, as a JSON merge patch, e.g. {pause: true} (Percona) or {shutdown: true} (Crunchy PGO).",
        type: "object",
        "x-kubernetes-preserve-unknown-fields": true,
      }),
    ),
  },
  {
    description:
      "For enforcement: Patch: a JSON merge patch of the workload (spec.workloadRef, or its controlling owner) applied while the server is Inaccessible, for an engine that cannot go to zero through /scale (R10). The previous values are recorded on the workload (annotation tde.dev/previous-values) and put back exactly on revalidation (R11).",
    [VALIDATIONS]: [
      {
        rule: "has(self.metadata) || has(self.spec)",
        message:
          'spec.enforcementPatch must set something: metadata.annotations, metadata.labels or spec fields, e.g. {metadata: {annotations: {cnpg.io/hibernation: "on"}}}',
      },
    ] satisfies CelRule[],
  },
);

export const ServerSourceSchema = Type.Object(
  {
    kind: StringEnum(SOURCE_KINDS, {
      description:
        "Restore: a copy of a server (optionally at pointInTime). Replica: a replica of a running server.",
    }),
    sourceRef: CrossNamespaceReference(
      "The EncryptedServer copied. Another namespace is honoured only when that server lists this one back (R31).",
      "source EncryptedServer",
    ),
    pointInTime: Opt(
      Type.String({
        description: "For kind Restore: the time to restore to (RFC 3339). Empty: the latest.",
        format: "date-time",
        maxLength: 64,
      }),
    ),
  },
  {
    description:
      "Create this server as a copy of another (R23, R24): it starts Inaccessible until its own key access is proven and it is revalidated. Set at creation only.",
    [VALIDATIONS]: [
      {
        rule: "self.kind == 'Restore' || !has(self.pointInTime)",
        message: "spec.source.pointInTime is only for kind Restore: remove it or set kind: Restore",
        fieldPath: ".pointInTime",
        reason: "FieldValueForbidden",
      },
      {
        rule: "self == oldSelf",
        message:
          "spec.source is immutable: a server is a copy from its creation on; create a new EncryptedServer instead",
      },
    ] satisfies CelRule[],
  },
);

export const EncryptedServerSpecSchema = Type.Object(
  {
    protector: Opt(
      ProtectorSpec(
        "spec.protector",
        "The key that wraps the server DEK (R9), and the default for its databases (R13). Default: ServiceManaged.",
        "ServiceManaged",
      ),
    ),
    keyAccessGracePeriod: Opt(
      Duration(
        "spec.keyAccessGracePeriod",
        `How long key access may be lost before the server becomes Inaccessible and is enforced (R10), from ${GRACE_PERIOD_BOUNDS.min} to ${GRACE_PERIOD_BOUNDS.max}, e.g. 90s or 10m (the default).`,
        { ...GRACE_PERIOD_BOUNDS, default: DEFAULTS.keyAccessGracePeriod },
      ),
    ),
    revalidation: Opt(
      StringEnum(REVALIDATION_MODES, {
        description:
          "How an Inaccessible server comes back (R11). Automatic: as soon as a probe succeeds. Manual (the default): only when revalidationToken changes.",
        default: DEFAULTS.revalidation,
      }),
    ),
    revalidationToken: Opt(
      Type.String({
        description:
          "Any new value asks the operator to revalidate now: unwrap the DEK with the current protector and check its KCV (R11).",
        maxLength: 253,
      }),
    ),
    workloadRef: Opt(WorkloadRefSchema),
    enforcement: Opt(
      StringEnum(ENFORCEMENT_MODES, {
        description:
          "What happens when the server becomes Inaccessible (R10). ScaleToZero (the default): the workload's replicas are set to 0 through its /scale subresource and given back on recovery. NetworkIsolation: a NetworkPolicy denies all ingress to its pods. Patch: spec.enforcementPatch is applied to the workload and taken back on recovery (for an engine that cannot go to zero through /scale). None: only report.",
        default: DEFAULTS.enforcement,
      }),
    ),
    enforcementPatch: Opt(EnforcementPatchSchema),
    deletionPolicy: Opt(DeletionPolicy("server")),
    source: Opt(ServerSourceSchema),
  },
  {
    description: "The server's protector, how loss of key access is handled, and where its data came from.",
    default: {},
    [VALIDATIONS]: [
      {
        rule: "!has(self.enforcement) || self.enforcement != 'Patch' || has(self.enforcementPatch)",
        message:
          'spec.enforcement: Patch needs spec.enforcementPatch: what to set on the workload while Inaccessible, e.g. {metadata: {annotations: {cnpg.io/hibernation: "on"}}}',
        fieldPath: ".enforcementPatch",
        reason: "FieldValueRequired",
      },
      {
        rule: "!has(self.enforcementPatch) || (has(self.enforcement) && self.enforcement == 'Patch')",
        message:
          "spec.enforcementPatch is applied only with spec.enforcement: Patch: set enforcement: Patch, or remove enforcementPatch",
        fieldPath: ".enforcementPatch",
        reason: "FieldValueForbidden",
      },
      {
        rule: "has(self.source) == has(oldSelf.source)",
        message:
          "spec.source can be set only when the server is created and cannot be removed: create a new EncryptedServer instead",
        fieldPath: ".source",
        reason: "FieldValueForbidden",
      },
    ] satisfies CelRule[],
  },
);

export const ServerProtectorStatusSchema = Type.Object(
  {
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
  { description: "The protector currently wrapping the server DEK." },
);

export const EnforcementStatusSchema = Type.Object(
  {
    previousReplicas: Opt(
      Type.Integer({
        description: "The workload's replica count before ScaleToZero, given back on recovery.",
        format: "int32",
        minimum: 0,
      }),
    ),
    networkPolicyName: Opt(
      Type.String({ description: "The NetworkPolicy created by NetworkIsolation.", maxLength: 253 }),
    ),
    target: Opt(
      Type.String({
        description:
          "The object enforcement acts on, as KIND.GROUP/NAME: spec.workloadRef, or its controlling owner.",
        maxLength: 640,
      }),
    ),
    patched: Opt(
      Type.Boolean({ description: "Patch enforcement: spec.enforcementPatch is applied to the target." }),
    ),
  },
  { description: "What enforcement currently holds, so it can be given back (R10, R11)." },
);

export const EncryptedServerStatusSchema = Type.Object(
  {
    observedGeneration: Opt(ObservedGeneration()),
    conditions: Opt(Conditions("Ready, KeyAccessible, Enforced, Revalidated, Restored")),
    state: Opt(ResourceStateSchema),
    envelopeSecretName: Opt(
      Type.String({
        description: "The Secret (type tde.dev/envelope) holding the wrapped server DEK (R2).",
        maxLength: 253,
      }),
    ),
    dekID: Opt(Type.String({ description: "The id of the server DEK.", maxLength: 128 })),
    protector: Opt(ServerProtectorStatusSchema),
    keyAccessLostSince: Opt(Timestamp("When key access was lost; absent while the key is reachable.")),
    inaccessibleSince: Opt(Timestamp("When the server became Inaccessible.")),
    lastRevalidatedToken: Opt(
      Type.String({ description: "The revalidationToken of the last revalidation.", maxLength: 253 }),
    ),
    enforcement: Opt(EnforcementStatusSchema),
  },
  { description: "What the operator last observed and did." },
);

export type EncryptedServerSpec = Static<typeof EncryptedServerSpecSchema>;
export type EncryptedServerStatus = Static<typeof EncryptedServerStatusSchema>;
export type WorkloadRef = Static<typeof WorkloadRefSchema>;
export type EnforcementPatch = Static<typeof EnforcementPatchSchema>;
export type ServerSource = Static<typeof ServerSourceSchema>;
export type ServerProtectorStatus = Static<typeof ServerProtectorStatusSchema>;
export type EnforcementStatus = Static<typeof EnforcementStatusSchema>;
