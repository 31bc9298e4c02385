/**
 * THE KMS PORT. Controllers, the watchdog and the agent reach every KEK through these names;
 * adapters (azure-key-vault.ts, local.ts) implement them. Nothing here carries key material
 * except the DEK buffers passed to wrap and returned by unwrap.
 */

/** Why a key could not be used (R10). CamelCase, bounded: safe as a condition reason or metric label. */
export type KeyAccessReason =
  | "KeyDisabled"
  | "KeyExpired"
  | "KeyNotFound"
  | "PermissionDenied"
  | "VaultUnreachable"
  | "AuthenticationFailed"
  | "Throttled"
  /** the key's activation date (nbf) is still in the future */
  | "KeyNotYetActive";

export const KEY_ACCESS_REASONS: readonly KeyAccessReason[] = [
  "KeyDisabled",
  "KeyExpired",
  "KeyNotFound",
  "PermissionDenied",
  "VaultUnreachable",
  "AuthenticationFailed",
  "Throttled",
  "KeyNotYetActive",
];

/** A classified failure to use a key. The message is safe to show: it never holds key bytes or secrets. */
export class KeyAccessError extends Error {
  override readonly name = "KeyAccessError";
  readonly reason: KeyAccessReason;
  /** For Throttled: how long the vault asked us to wait. */
  readonly retryAfterMs?: number;

  constructor(
    reason: KeyAccessReason,
    message: string,
    options: { retryAfterMs?: number; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.reason = reason;
    if (options.retryAfterMs !== undefined) this.retryAfterMs = options.retryAfterMs;
  }
}

export function isKeyAccessError(error: unknown): error is KeyAccessError {
  return error instanceof KeyAccessError;
}

export type ProviderName = "AzureKeyVault" | "Local";

/** How the operator authenticates to the vault; mirrors KeyProtector.spec.identity. */
export interface IdentitySpec {
  type: "Default" | "WorkloadIdentity" | "ManagedIdentity" | "ClientSecret";
  /** The managed identity's or application's client id. */
  clientID?: string;
  /** With federatedClientID: the tenant holding the key (cross-tenant key). With ClientSecret: the app's tenant. */
  tenantID?: string;
  /** A multi-tenant application in `tenantID` trusting our workload identity (cross-tenant key). */
  federatedClientID?: string;
  /** ClientSecret: the Secret (in the reference's namespace) holding the client secret. */
  clientSecretRef?: { name: string; key: string };
}

/** Where a KEK is. */
export interface KeyReference {
  provider: ProviderName;
  /** The namespace of the resource that names the key (Local: where its Secret is; ClientSecret: where the secret is). */
  namespace: string;
  /** AzureKeyVault: base URL of the vault. */
  vaultURL?: string;
  /** AzureKeyVault: the key's name. Local: the Secret's name. */
  keyName: string;
  /** A fixed version; empty follows the vault's current version (R6). */
  keyVersion?: string;
  /** A full key id with version (from an envelope wrap); it pins the version and wins over keyVersion. */
  keyID?: string;
  identity?: IdentitySpec;
}

/** What R8 puts in a KeyProtector's status, for one version of a key. */
export interface KeyDescription {
  /** Full key id, with version. */
  keyID: string;
  version: string;
  /** "RSA", "RSA-HSM", "EC", ... */
  keyType: string;
  /** Modulus size in bits (0 when unknown). */
  keySize: number;
  enabled: boolean;
  notBefore?: Date;
  expiresOn?: Date;
  createdOn?: Date;
  recoveryLevel?: string;
  recoverableDays?: number;
  /** DER SubjectPublicKeyInfo. Empty when the vault withholds a disabled version's key (see publicKeyKnown). */
  publicKeyDer: Buffer;
  /** R3 thumbprint; empty when publicKeyKnown is false. */
  thumbprint: string;
  /** False only when the vault would not show the public key (Azure does not for a disabled version). */
  publicKeyKnown: boolean;
}

export interface WrapResult {
  /** The exact key id (with version) that wrapped: store it in the envelope. */
  keyID: string;
  algorithm: "RSA-OAEP-256";
  wrapped: Buffer;
}

export interface KekProvider {
  readonly name: ProviderName;
  /**
   * The referenced version, or with no version the vault's CURRENT version (what the vault answers
   * for the key without a version), enabled or not (R6): a disabled current version is described
   * with enabled=false, never replaced by an older enabled one.
   */
  describe(ref: KeyReference): Promise<KeyDescription>;
  /** Every version of the key, newest first. */
  listVersions(ref: KeyReference): Promise<KeyDescription[]>;
  /** Wraps a DEK (RSA-OAEP-256) with the referenced version (or the current one: KeyDisabled when it is disabled). */
  wrap(ref: KeyReference, dek: Buffer): Promise<WrapResult>;
  /** Unwraps with the exact version: pass the ref with keyID set (use `refForKeyID`). */
  unwrap(ref: KeyReference, wrapped: Buffer): Promise<Buffer>;
}

/** The reference for the exact version named by an envelope wrap's key id. */
export function refForKeyID(ref: KeyReference, keyID: string): KeyReference {
  return { ...ref, keyID };
}

// ---- observation (metrics and logging wrap the port, R28) ----

export type KmsOperation = "describe" | "list" | "wrap" | "unwrap";
/** "success" or a KeyAccessReason, or "Error" for an unclassified failure: always a bounded set. */
export type KmsOutcome = "success" | KeyAccessReason | "Error";

export interface KmsObservation {
  provider: ProviderName;
  operation: KmsOperation;
  outcome: KmsOutcome;
  seconds: number;
  /** Set when the outcome is not success: the error, for a logger (never a metric label). */
  error?: unknown;
}

export type KmsObserver = (observation: KmsObservation) => void;

/** Wraps a provider so every call, whatever its exit path, is reported to `observe`. */
export function observeProvider(inner: KekProvider, observe: KmsObserver): KekProvider {
  async function timed<T>(operation: KmsOperation, call: () => Promise<T>): Promise<T> {
    const started = process.hrtime.bigint();
    let outcome: KmsOutcome = "success";
    let failure: unknown;
    try {
      return await call();
    } catch (error) {
      outcome = isKeyAccessError(error) ? error.reason : "Error";
      failure = error;
      throw error;
    } finally {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      try {
        observe({
          provider: inner.name,
          operation,
          outcome,
          seconds,
          ...(failure === undefined ? {} : { error: failure }),
        });
      } catch {
        // an observer must never change the result of a KMS call
      }
    }
  }
  return {
    name: inner.name,
    describe: (ref) => timed("describe", () => inner.describe(ref)),
    listVersions: (ref) => timed("list", () => inner.listVersions(ref)),
    wrap: (ref, dek) => timed("wrap", () => inner.wrap(ref, dek)),
    unwrap: (ref, wrapped) => timed("unwrap", () => inner.unwrap(ref, wrapped)),
  };
}

// ---- registry ----

/** Returns the provider for a reference. Providers cache their clients and credentials per vault and identity. */
export interface KmsRegistry {
  providerFor(ref: KeyReference): KekProvider;
}

export interface KmsRegistryOptions {
  local?: KekProvider;
  azure?: KekProvider;
  /** Applied once per provider (not per call): metrics and logging. */
  observe?: KmsObserver;
}

export class DefaultKmsRegistry implements KmsRegistry {
  private readonly providers = new Map<ProviderName, KekProvider>();

  constructor(options: KmsRegistryOptions) {
    for (const provider of [options.local, options.azure]) {
      if (!provider) continue;
      this.providers.set(
        provider.name,
        options.observe ? observeProvider(provider, options.observe) : provider,
      );
    }
  }

  providerFor(ref: KeyReference): KekProvider {
    const provider = this.providers.get(ref.provider);
    if (!provider) {
      throw new Error(`no KMS provider is configured for ${ref.provider}`);
    }
    return provider;
  }
}

/** A short, safe label for a reference in messages (no secrets: names and URLs only). */
export function describeRef(ref: KeyReference): string {
  if (ref.keyID) return ref.keyID;
  const version = ref.keyVersion ? `/${ref.keyVersion}` : "";
  return ref.provider === "Local"
    ? `local key ${ref.namespace}/${ref.keyName}${version}`
    : `${(ref.vaultURL ?? "").replace(/\/+$/, "")}/keys/${ref.keyName}${version}`;
}
