/** KeyProtector: a reference to a KEK and proof that it is usable (SPEC section 2, R5-R8). */
import { type Static, Type } from "@sinclair/typebox";
import { DEFAULTS, KEY_SIZES } from "../defaults.js";
import {
  type CelRule,
  CheckedString,
  Conditions,
  Duration,
  Identity,
  LocalObjectReference,
  ObservedGeneration,
  Opt,
  StringEnum,
  Timestamp,
  VALIDATIONS,
} from "./common.js";

export const PROVIDERS = ["AzureKeyVault", "Local"] as const;
/** R7: whether a Local KeyProtector's missing Secret gets a new key or is waited for. */
export const LOCAL_KEY_CREATE = ["IfMissing", "Never"] as const;
export type Provider = (typeof PROVIDERS)[number];

const KeyVersion = (description: string) =>
  CheckedString(
    "^[0-9a-zA-Z-]+$",
    "must be a key version: letters, digits and '-', or leave it empty to follow the vault's current version",
    { description, minLength: 1, maxLength: 64 },
  );

export const AzureKeyVaultKeySchema = Type.Object(
  {
    vaultURL: Type.String({
      description: "Base URL of the key vault, https only, e.g. https://my-vault.vault.azure.net/.",
      minLength: 9,
      maxLength: 256,
      [VALIDATIONS]: [
        {
          rule: "isURL(self) && url(self).getScheme() == 'https' && url(self).getHostname() != ''",
          message:
            "spec.azureKeyVault.vaultURL must be an https URL of a key vault, for example https://my-vault.vault.azure.net/",
        },
        {
          rule: "!isURL(self) || url(self).getEscapedPath() == '' || url(self).getEscapedPath() == '/'",
          message:
            "spec.azureKeyVault.vaultURL must be the vault's base URL without a path: put the key's name in spec.azureKeyVault.keyName",
        },
      ] satisfies CelRule[],
    }),
    keyName: CheckedString(
      "^[0-9a-zA-Z-]+$",
      "spec.azureKeyVault.keyName must be a Key Vault key name: letters, digits and '-' (at most 127)",
      { description: "Name of the RSA key in the vault.", minLength: 1, maxLength: 127 },
    ),
    keyVersion: Opt(
      KeyVersion(
        "A fixed key version. Empty (the default) follows the vault's current version (what it answers for the key without a version): a new current version is a rotation, and a disabled current version is a loss of access, never a move back to an older version (R6).",
      ),
    ),
  },
  {
    description: "The key in Azure Key Vault (or a compatible vault). Required with provider AzureKeyVault.",
  },
);

export const LocalKeySchema = Type.Object(
  {
    secretRef: LocalObjectReference(
      "The Secret, in this namespace, that holds the RSA key and its versions. The operator's Local provider creates and manages it on first use (see create); do not edit it by hand.",
      "Name of the Secret holding the local key.",
    ),
    create: Opt(
      StringEnum(LOCAL_KEY_CREATE, {
        description:
          "What the operator does when the Secret does not exist and this KeyProtector never resolved a key (R7). IfMissing (the default): it creates a new key. Never: it waits for the Secret (KeySecretNotFound, a waiting state); use Never for imported key material (the same key in every region of a geo pair), so that a Secret applied after its KeyProtector is used, never replaced by a new key. A key that existed and vanished is KeyNotFound either way, never re-created.",
        default: "IfMissing",
      }),
    ),
    keyVersion: Opt(
      KeyVersion(
        "A fixed key version. Empty (the default) follows the current (newest) version: a new version is a rotation, and a disabled current version is a loss of access (R6).",
      ),
    ),
  },
  {
    description:
      "An RSA key held in a Kubernetes Secret, with the same semantics as a vault key (R7). Required with provider Local.",
  },
);

export const RequirementsSchema = Type.Object(
  {
    allowedKeySizes: Opt(
      Type.Array(
        Type.Unsafe<(typeof KEY_SIZES)[number]>({
          type: "integer",
          enum: [...KEY_SIZES],
          description: "An RSA key size in bits: 2048, 3072 or 4096.",
        }),
        {
          description: "RSA key sizes the key may have, in bits (2048, 3072, 4096). Default 2048 and 3072.",
          minItems: 1,
          maxItems: 3,
          "x-kubernetes-list-type": "set",
          default: DEFAULTS.allowedKeySizes,
        },
      ),
    ),
    allowExpiry: Opt(
      Type.Boolean({
        description:
          "Whether the key may carry an expiry date. False (the default) refuses a key with an expiry; true accepts one in the future.",
        default: DEFAULTS.allowExpiry,
      }),
    ),
    requireRecoverable: Opt(
      Type.Boolean({
        description:
          "Whether the vault must keep deleted keys recoverable (soft delete with purge protection, Azure recovery level Recoverable). Default true.",
        default: DEFAULTS.requireRecoverable,
      }),
    ),
    minimumRecoverableDays: Opt(
      Type.Integer({
        description:
          "The fewest days a deleted key must stay recoverable, 7 to 90. Default 90. Used when requireRecoverable is true.",
        minimum: 7,
        maximum: 90,
        default: DEFAULTS.minimumRecoverableDays,
      }),
    ),
  },
  {
    description:
      "What a key must satisfy before it may protect anything (R5). Each unmet requirement is a separate reason on the RequirementsMet condition. Key type RSA, enabled, and an activation date in the past are always required, as is a proven get, wrapKey and unwrapKey round trip.",
    default: {},
  },
);

export const KeyProtectorSpecSchema = Type.Object(
  {
    provider: StringEnum(PROVIDERS, {
      description:
        "Where the key lives. AzureKeyVault: a key in Azure Key Vault, set in azureKeyVault. Local: an RSA key in a Kubernetes Secret, set in local.",
    }),
    azureKeyVault: Opt(AzureKeyVaultKeySchema),
    local: Opt(LocalKeySchema),
    identity: Opt(
      Identity(
        "spec.identity",
        "How the operator authenticates to the vault (provider AzureKeyVault only). Absent: the environment's default credential.",
      ),
    ),
    requirements: Opt(RequirementsSchema),
    autoRotationWindow: Opt(
      Duration(
        "spec.autoRotationWindow",
        "How long the operator may take to apply a new key version to every dependant (R6), e.g. 24h (the default). The operator may apply it at once.",
        { min: "0s", max: "720h", default: DEFAULTS.autoRotationWindow },
      ),
    ),
  },
  {
    description: "Which key-encryption key (KEK) to use, how to reach it, and what it must satisfy.",
    [VALIDATIONS]: [
      {
        rule: "self.provider != 'AzureKeyVault' || has(self.azureKeyVault)",
        message:
          "spec.azureKeyVault is required when provider is AzureKeyVault: set vaultURL and keyName, or set provider: Local",
        fieldPath: ".azureKeyVault",
        reason: "FieldValueRequired",
      },
      {
        rule: "self.provider != 'AzureKeyVault' || !has(self.local)",
        message: "spec.local is only for provider Local: remove spec.local or set provider: Local",
        fieldPath: ".local",
        reason: "FieldValueForbidden",
      },
      {
        rule: "self.provider != 'Local' || has(self.local)",
        message: "spec.local is required when provider is Local: set local.secretRef.name",
        fieldPath: ".local",
        reason: "FieldValueRequired",
      },
      {
        rule: "self.provider != 'Local' || !has(self.azureKeyVault)",
        message:
          "spec.azureKeyVault is only for provider AzureKeyVault: remove spec.azureKeyVault or set provider: AzureKeyVault",
        fieldPath: ".azureKeyVault",
        reason: "FieldValueForbidden",
      },
      {
        rule: "self.provider != 'Local' || !has(self.identity)",
        message:
          "spec.identity is only used with provider AzureKeyVault: remove spec.identity for a Local key",
        fieldPath: ".identity",
        reason: "FieldValueForbidden",
      },
    ] satisfies CelRule[],
  },
);

export const UnmetRequirementSchema = Type.Object(
  {
    reason: Type.String({
      description: "The requirement, as a CamelCase reason (e.g. KeySizeNotAllowed).",
      maxLength: 128,
    }),
    message: Type.String({ description: "What is wrong and how to fix it.", maxLength: 4096 }),
  },
  { description: "A requirement (R5) the key does not meet." },
);

export const KeyProtectorStatusSchema = Type.Object(
  {
    observedGeneration: Opt(ObservedGeneration()),
    conditions: Opt(Conditions("Ready, Accessible and RequirementsMet")),
    keyID: Opt(Type.String({ description: "The resolved key id, with its version.", maxLength: 1024 })),
    keyVersion: Opt(Type.String({ description: "The resolved key version.", maxLength: 128 })),
    thumbprint: Opt(
      Type.String({
        description: "SHA-256 of the DER-encoded public key, hex (R3): the identity of the key material.",
        maxLength: 128,
      }),
    ),
    thumbprintShort: Opt(
      Type.String({ description: "The first 12 hex characters of thumbprint.", maxLength: 16 }),
    ),
    keyType: Opt(
      Type.String({ description: "The key type reported by the vault, e.g. RSA or RSA-HSM.", maxLength: 32 }),
    ),
    keySize: Opt(Type.Integer({ description: "The RSA key size in bits." })),
    enabled: Opt(Type.Boolean({ description: "Whether the key version is enabled." })),
    notBefore: Opt(Timestamp("The key's activation date (nbf), if any.")),
    expiresOn: Opt(Timestamp("The key's expiry date (exp), if any.")),
    recoveryLevel: Opt(
      Type.String({
        description: "The vault's recovery level for the key, e.g. Recoverable.",
        maxLength: 128,
      }),
    ),
    recoverableDays: Opt(Type.Integer({ description: "How many days a deleted key stays recoverable." })),
    provenPermissions: Opt(
      Type.Array(
        Type.String({ description: "A permission, e.g. get, wrapKey or unwrapKey.", maxLength: 64 }),
        {
          description:
            "The permissions proven by a real round trip at the last probe (get, wrapKey, unwrapKey).",
          maxItems: 16,
          "x-kubernetes-list-type": "set",
        },
      ),
    ),
    lastProbeTime: Opt(Timestamp("When the key was last probed.")),
    lastSuccessTime: Opt(Timestamp("When a probe last succeeded.")),
    consecutiveFailures: Opt(
      Type.Integer({ description: "Failed probes since the last success.", minimum: 0 }),
    ),
    keyAccessLostSince: Opt(Timestamp("When the first failed probe of the current outage happened.")),
    unmetRequirements: Opt(
      Type.Array(UnmetRequirementSchema, {
        description: "Every requirement (R5) the key does not meet; empty when RequirementsMet is True.",
        maxItems: 32,
        "x-kubernetes-list-type": "atomic",
      }),
    ),
  },
  { description: "What the operator last observed of the key." },
);

export type KeyProtectorSpec = Static<typeof KeyProtectorSpecSchema>;
export type KeyProtectorStatus = Static<typeof KeyProtectorStatusSchema>;
export type AzureKeyVaultKey = Static<typeof AzureKeyVaultKeySchema>;
export type LocalKey = Static<typeof LocalKeySchema>;
export type KeyProtectorRequirements = Static<typeof RequirementsSchema>;
export type UnmetRequirement = Static<typeof UnmetRequirementSchema>;
