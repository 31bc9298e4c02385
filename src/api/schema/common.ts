/**
 * Building blocks shared by the three kinds. Each helper returns a TypeBox schema whose
 * `Static<>` is the TypeScript type and whose JSON is a structural OpenAPI v3 schema the API
 * server accepts (every node typed; enums as `type` + `enum`, never `anyOf`).
 */
import { type SchemaOptions, type Static, type TSchema, Type } from "@sinclair/typebox";
import { DURATION_PATTERN } from "../duration.js";

/** One `x-kubernetes-validations` entry: a CEL rule and what to say when it fails. */
export interface CelRule {
  rule: string;
  message?: string;
  messageExpression?: string;
  /** The field the error is reported on, relative to the node carrying the rule. */
  fieldPath?: string;
  reason?: "FieldValueInvalid" | "FieldValueForbidden" | "FieldValueRequired" | "FieldValueDuplicate";
}

export const VALIDATIONS = "x-kubernetes-validations";

/** A string restricted to a set of values, shown by `kubectl explain` as an enum. */
export function StringEnum<const T extends readonly string[]>(values: T, options: SchemaOptions) {
  return Type.Unsafe<T[number]>({ ...options, type: "string", enum: [...values] });
}

/** A string checked by a CEL regex, so a mistake gets a sentence instead of the raw regex. */
export function CheckedString(
  regex: string,
  message: string,
  options: SchemaOptions & { maxLength: number },
) {
  return Type.String({
    ...options,
    [VALIDATIONS]: [{ rule: `self.matches('${regex}')`, message } satisfies CelRule],
  });
}

const DNS_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?";
/** A DNS-1123 subdomain: the name of most Kubernetes objects. CEL has no `\.`, hence `[.]`. */
export const DNS_SUBDOMAIN_REGEX = `^${DNS_LABEL}([.]${DNS_LABEL})*$`;
export const DNS_LABEL_REGEX = `^${DNS_LABEL}$`;
export const GUID_REGEX = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$";

/** The name of an object in the same namespace. */
export function ObjectName(description: string) {
  return CheckedString(
    DNS_SUBDOMAIN_REGEX,
    "must be a Kubernetes object name: lowercase letters, digits, '-' and '.', starting and ending with a letter or digit",
    { description, minLength: 1, maxLength: 253 },
  );
}

/** The name of a namespace. */
export function NamespaceName(description: string) {
  return CheckedString(
    DNS_LABEL_REGEX,
    "must be a namespace name: at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit",
    { description, minLength: 1, maxLength: 63 },
  );
}

/** A Microsoft Entra client (application) id. */
export function Guid(description: string, what: string) {
  return CheckedString(
    GUID_REGEX,
    `must be the ${what} as a GUID, for example 00000000-0000-0000-0000-000000000000`,
    { description, minLength: 36, maxLength: 36 },
  );
}

/** An RFC 3339 time. */
export function Timestamp(description: string) {
  return Type.String({ description, format: "date-time", maxLength: 64 });
}

export interface DurationBounds {
  /** the smallest accepted duration, e.g. "5s" */
  min: string;
  /** the largest accepted duration, e.g. "168h" */
  max: string;
  default?: string;
}

/**
 * A duration string ("90s", "10m", "24h", "1h30m") checked by CEL: first its form, then its
 * bounds (the bounds rule is guarded so a malformed string reports only the form).
 */
export function Duration(field: string, description: string, bounds: DurationBounds) {
  const form = `self.matches('${DURATION_PATTERN}')`;
  const rules: CelRule[] = [
    {
      rule: form,
      message: `${field} must be a duration: a whole number and a unit (h, m, s or ms), one or more times, for example 90s, 10m, 24h or 1h30m`,
    },
    {
      rule: `!${form} || (duration(self) >= duration('${bounds.min}') && duration(self) <= duration('${bounds.max}'))`,
      message: `${field} must be between ${bounds.min} and ${bounds.max}`,
    },
  ];
  const options: SchemaOptions = { description, minLength: 2, maxLength: 32, [VALIDATIONS]: rules };
  if (bounds.default !== undefined) options.default = bounds.default;
  return Type.String(options);
}

/** A reference by name to an object in the resource's own namespace (R31). */
export function LocalObjectReference(description: string, nameDescription: string) {
  return Type.Object({ name: ObjectName(nameDescription) }, { description });
}
export type LocalObjectReference = Static<ReturnType<typeof LocalObjectReference>>;

/** A reference that may name another namespace (only replication and restore, R31). */
export function CrossNamespaceReference(description: string, what: string) {
  return Type.Object(
    {
      namespace: Type.Optional(
        NamespaceName(
          `Namespace of the ${what}. Empty means this resource's namespace. Another namespace is honoured only when the ${what} names this resource back (R31).`,
        ),
      ),
      name: ObjectName(`Name of the ${what}.`),
    },
    { description },
  );
}
export type CrossNamespaceReference = Static<ReturnType<typeof CrossNamespaceReference>>;

/**
 * R19: the name of another cluster, as its kubeconfig Secret names it (Cluster API's convention:
 * the Secret `<cluster>-kubeconfig`, key `value`, in the operator's namespace). A DNS label, so
 * that the Secret's name is always valid.
 */
export function ClusterName(description: string, options: { allowEmpty?: boolean } = {}) {
  const message =
    "must be a cluster name: at most 52 lowercase letters, digits and '-', starting and ending with a letter or digit (the operator reads the Secret <cluster>-kubeconfig in its own namespace)";
  return CheckedString(options.allowEmpty ? `^(${DNS_LABEL})?$` : DNS_LABEL_REGEX, message, {
    description,
    ...(options.allowEmpty ? {} : { minLength: 1 }),
    maxLength: 52,
  });
}

/** A namespace and name, both required (used in lists keyed by both). */
export function NamespacedName(description: string, what: string) {
  return Type.Object(
    {
      namespace: NamespaceName(`Namespace of the ${what}.`),
      name: ObjectName(`Name of the ${what}.`),
    },
    { description },
  );
}
export type NamespacedName = Static<ReturnType<typeof NamespacedName>>;

/** A key of a Secret in the resource's namespace. */
export function SecretKeySelector(description: string) {
  return Type.Object(
    {
      name: ObjectName("Name of the Secret, in the resource's namespace."),
      key: CheckedString(
        "^[-._a-zA-Z0-9]+$",
        "must be a Secret data key: letters, digits, '-', '_' and '.'",
        { description: "Key within the Secret's data that holds the value.", minLength: 1, maxLength: 253 },
      ),
    },
    { description },
  );
}
export type SecretKeySelector = Static<ReturnType<typeof SecretKeySelector>>;

export const IDENTITY_TYPES = ["Default", "WorkloadIdentity", "ManagedIdentity", "ClientSecret"] as const;
export type IdentityType = (typeof IDENTITY_TYPES)[number];

/**
 * How the operator authenticates to a key vault: at most one identity, with the fields its
 * type needs. `path` is where it sits in the resource, for messages.
 */
export function Identity(path: string, description: string, options: { userAssignedOnly?: boolean } = {}) {
  const rules: CelRule[] = [
    // a KeyProtector may use the system-assigned identity; a database names one user-assigned identity
    ...(options.userAssignedOnly
      ? [
          {
            rule: "self.type != 'ManagedIdentity' || has(self.clientID)",
            message: `${path}.clientID is required when ${path}.type is ManagedIdentity: set the client id of the user-assigned managed identity`,
            fieldPath: ".clientID",
            reason: "FieldValueRequired" as const,
          },
        ]
      : []),
    {
      rule: "self.type != 'ClientSecret' || has(self.clientID)",
      message: `${path}.clientID is required when ${path}.type is ClientSecret: set the application (client) id`,
      fieldPath: ".clientID",
      reason: "FieldValueRequired",
    },
    {
      rule: "self.type != 'ClientSecret' || has(self.tenantID)",
      message: `${path}.tenantID is required when ${path}.type is ClientSecret: set the tenant of the application`,
      fieldPath: ".tenantID",
      reason: "FieldValueRequired",
    },
    {
      rule: "self.type != 'ClientSecret' || has(self.clientSecretRef)",
      message: `${path}.clientSecretRef is required when ${path}.type is ClientSecret: name the Secret and key holding the client secret`,
      fieldPath: ".clientSecretRef",
      reason: "FieldValueRequired",
    },
    {
      rule: "!has(self.clientSecretRef) || self.type == 'ClientSecret'",
      message: `${path}.clientSecretRef is used only with ${path}.type ClientSecret: remove it or set type: ClientSecret`,
      fieldPath: ".clientSecretRef",
      reason: "FieldValueForbidden",
    },
    {
      rule: "!has(self.federatedClientID) || has(self.tenantID)",
      message: `${path}.federatedClientID needs ${path}.tenantID: set the tenant that holds the key vault`,
      fieldPath: ".tenantID",
      reason: "FieldValueRequired",
    },
  ];
  return Type.Object(
    {
      type: Type.Optional(
        StringEnum(IDENTITY_TYPES, {
          description:
            "How to authenticate. Default: the environment's default credential chain. WorkloadIdentity: the " +
            "federated token of the operator's service account (clientID optional, else taken from the " +
            "environment). ManagedIdentity: the user-assigned managed identity with clientID, or without clientID the " +
            "system-assigned one of the node or pod. ClientSecret: an " +
            "application with clientID, tenantID and a secret in clientSecretRef.",
          default: "Default",
        }),
      ),
      clientID: Type.Optional(
        Guid(
          "Client (application) id of the identity: the user-assigned managed identity, the workload identity's application or the application of a client secret.",
          "client id",
        ),
      ),
      tenantID: Type.Optional(
        CheckedString(
          `^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}|[a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?([.][a-zA-Z0-9]([-a-zA-Z0-9]*[a-zA-Z0-9])?)+)$`,
          "must be a tenant id (a GUID) or a tenant domain such as contoso.onmicrosoft.com",
          {
            description:
              "Microsoft Entra tenant to authenticate in. Required with ClientSecret and with federatedClientID (a key vault in another tenant).",
            minLength: 1,
            maxLength: 253,
          },
        ),
      ),
      federatedClientID: Type.Optional(
        Guid(
          "Client id of the multi-tenant application used to reach a key vault in another tenant (tenantID); the identity above is its federated credential.",
          "federated client id",
        ),
      ),
      clientSecretRef: Type.Optional(
        SecretKeySelector(
          "The Secret (in the resource's namespace) and key holding the client secret. Only with type ClientSecret.",
        ),
      ),
    },
    { description, [VALIDATIONS]: rules },
  );
}
export type Identity = Static<ReturnType<typeof Identity>>;

export const PROTECTOR_TYPES = ["ServiceManaged", "CustomerManaged"] as const;
export type ProtectorType = (typeof PROTECTOR_TYPES)[number];

/** `{type, keyProtectorRef}`: the key that wraps a DEK. `path` is where it sits, for messages. */
export function ProtectorSpec(path: string, description: string, typeDefault?: ProtectorType) {
  const objectDefault = typeDefault ? { default: { type: typeDefault } } : {};
  const typeOptions: SchemaOptions = {
    description:
      "ServiceManaged: the operator's own key (R7). CustomerManaged: the key of the KeyProtector named in keyProtectorRef.",
  };
  if (typeDefault) typeOptions.default = typeDefault;
  const type = StringEnum(PROTECTOR_TYPES, typeOptions);
  return Type.Object(
    {
      type: typeDefault ? Type.Optional(type) : type,
      keyProtectorRef: Type.Optional(
        LocalObjectReference(
          "The KeyProtector holding the customer-managed key, in this resource's namespace (R31). Required with CustomerManaged, forbidden with ServiceManaged.",
          "Name of a KeyProtector in this resource's namespace.",
        ),
      ),
    },
    {
      description,
      ...objectDefault,
      [VALIDATIONS]: [
        {
          rule: "self.type != 'CustomerManaged' || has(self.keyProtectorRef)",
          message: `${path}.keyProtectorRef is required when ${path}.type is CustomerManaged: name the KeyProtector that holds the key`,
          fieldPath: ".keyProtectorRef",
          reason: "FieldValueRequired",
        },
        {
          rule: "self.type != 'ServiceManaged' || !has(self.keyProtectorRef)",
          message: `${path}.keyProtectorRef is not used with ${path}.type ServiceManaged (the operator's own key): remove it or set type: CustomerManaged`,
          fieldPath: ".keyProtectorRef",
          reason: "FieldValueForbidden",
        },
      ] satisfies CelRule[],
    },
  );
}
export type ProtectorSpec = Static<ReturnType<typeof ProtectorSpec>>;

/** A list of extra KeyProtectors, each named once. */
export function KeyProtectorList(path: string, description: string, maxItems: number) {
  return Type.Array(
    Type.Object(
      {
        keyProtectorRef: LocalObjectReference(
          "The KeyProtector, in this resource's namespace (R31).",
          "Name of a KeyProtector in this resource's namespace.",
        ),
      },
      { description: "One KeyProtector." },
    ),
    {
      description,
      maxItems,
      "x-kubernetes-list-type": "atomic",
      [VALIDATIONS]: [
        {
          rule: "self.all(k, self.exists_one(j, j.keyProtectorRef.name == k.keyProtectorRef.name))",
          message: `${path} names a KeyProtector more than once: list each keyProtectorRef.name once`,
        },
      ] satisfies CelRule[],
    },
  );
}
export type KeyProtectorListEntry = { keyProtectorRef: LocalObjectReference };

export const DELETION_POLICIES = ["Retain", "Shred"] as const;
export type DeletionPolicy = (typeof DELETION_POLICIES)[number];
export function DeletionPolicy(what: string) {
  return StringEnum(DELETION_POLICIES, {
    description: `What happens to the envelope (the wrapped DEK) when this ${what} is deleted (R25). Retain: kept, so the ${what} can be restored later. Shred: every wrap of the DEK is deleted and the data can never be decrypted again.`,
    default: "Retain",
  });
}

export const RESOURCE_STATES = [
  "Provisioning",
  "Available",
  "Inaccessible",
  "Revalidating",
  "Deleting",
] as const;
export type ResourceState = (typeof RESOURCE_STATES)[number];
export const ResourceStateSchema = StringEnum(RESOURCE_STATES, {
  description:
    "Provisioning: the DEK and its envelope are being made. Available: the DEK is protected and its key reachable. Inaccessible: key access was lost for longer than the grace period, or the resource is a copy not yet revalidated; enforcement applies. Revalidating: unwrapping the DEK to leave Inaccessible. Deleting: the resource is being deleted.",
});

/** A condition in the standard Kubernetes shape (metav1.Condition). */
export const ConditionSchema = Type.Object(
  {
    type: Type.String({
      description: "Condition type in CamelCase, e.g. Ready or KeyAccessible.",
      minLength: 1,
      maxLength: 316,
      pattern:
        "^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
    }),
    status: StringEnum(["True", "False", "Unknown"] as const, { description: "True, False or Unknown." }),
    reason: Type.String({
      description: "Why the condition has its status, in CamelCase.",
      minLength: 1,
      maxLength: 1024,
      pattern: "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
    }),
    message: Type.String({ description: "What happened and what to do, for a person.", maxLength: 32768 }),
    lastTransitionTime: Type.String({
      description: "When the status last changed.",
      format: "date-time",
    }),
    observedGeneration: Type.Optional(
      Type.Integer({
        description: "The metadata.generation the condition was computed from.",
        format: "int64",
        minimum: 0,
      }),
    ),
  },
  { description: "A condition in the standard Kubernetes shape." },
);

export function Conditions(list: string) {
  return Type.Array(ConditionSchema, {
    description: `Conditions in the standard Kubernetes shape: ${list}.`,
    maxItems: 32,
    "x-kubernetes-list-type": "map",
    "x-kubernetes-list-map-keys": ["type"],
  });
}

export function ObservedGeneration() {
  return Type.Integer({
    description: "The metadata.generation the operator last acted on.",
    format: "int64",
    minimum: 0,
  });
}

/** Optional in TypeScript, since status is filled in step by step. */
export function Opt<T extends TSchema>(schema: T) {
  return Type.Optional(schema);
}

/** The metadata every object carries (structurally compatible with the runtime's ObjectMeta). */
export interface ObjectMeta {
  name?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  finalizers?: string[];
  ownerReferences?: {
    apiVersion: string;
    kind: string;
    name: string;
    uid: string;
    controller?: boolean;
    blockOwnerDeletion?: boolean;
  }[];
  [field: string]: unknown;
}
