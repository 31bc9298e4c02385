/**
 * The Azure Key Vault provider: @azure/keyvault-keys does the RSA-OAEP-256 in the vault, and
 * @azure/identity authenticates. Clients and credentials are cached per (vault, identity).
 * Works against Lowkey Vault with `disableChallengeResourceVerification`.
 */
import { rootCertificates } from "node:tls";
// Types only: the SDKs themselves (about 25 MiB resident) are loaded on the first Azure key.
import type { TokenCredential } from "@azure/identity";
import type { KeyClient, KeyClientOptions, KeyProperties, KeyVaultKey } from "@azure/keyvault-keys";
import { publicKeyDer, rsaKeySize, thumbprintOfDer } from "../crypto/thumbprint.js";
import { type AzureCredentialOptions, makeAzureCredential, type ReadSecret } from "./azure-credentials.js";
import { azureErrorFacts, classifyAzureError } from "./azure-errors.js";
import {
  describeRef,
  type IdentitySpec,
  type KekProvider,
  KeyAccessError,
  type KeyDescription,
  type KeyReference,
  type WrapResult,
} from "./provider.js";

export type { ReadSecret };

export interface AzureKeyVaultProviderOptions {
  /** Reads a client secret (ClientSecret identities). Required for them. */
  readSecret?: ReadSecret;
  /**
   * For emulators and vaults behind custom DNS (not under the cloud's vault domain): accept an
   * authentication challenge whose resource is not the vault's domain.
   */
  disableChallengeResourceVerification?: boolean;
  /** PEM CA certificates trusted besides the public roots (a private CA, an emulator's). */
  caCertificates?: string;
  /** Entra ID's host for a sovereign cloud. */
  authorityHost?: string;
  /** The federated assertion's audience for cross-tenant keys (sovereign clouds). */
  tokenExchangeAudience?: string;
  /** Retries of one call by the SDK pipeline (429 honours Retry-After). Default 2. */
  maxRetries?: number;
  retryDelayMs?: number;
  maxRetryDelayMs?: number;
  /** Time limit of one operation including retries. Default 20 s. */
  timeoutMs?: number;
  /** The projected service-account token (cross-tenant keys with WorkloadIdentity). Default $AZURE_FEDERATED_TOKEN_FILE. */
  federatedTokenFile?: string;
  /** Called for every 429 the vault answers (before retries), to count throttling. */
  onThrottled?: (vaultURL: string, retryAfterMs: number | undefined) => void;
  /** Extra client options (TLS, proxy, ...), merged under ours. */
  clientOptions?: KeyClientOptions;
  /** Replaces how credentials are made (tests). Still cached per identity. */
  credentialFactory?: (
    identity: IdentitySpec,
    namespace: string,
  ) => Promise<TokenCredential> | TokenCredential;
  now?: () => Date;
}

const ALGORITHM = "RSA-OAEP-256" as const;

/** Maps a KeyVaultKey (with its JWK) to the port's description. Pure. */
export function describeVaultKey(key: KeyVaultKey): KeyDescription {
  const p = key.properties;
  const jwk = key.key;
  let der: Buffer = Buffer.alloc(0);
  let size = 0;
  const keyType = key.keyType ?? jwk?.kty ?? "unknown";
  if (jwk?.n && jwk.e && (keyType === "RSA" || keyType === "RSA-HSM")) {
    der = publicKeyDer({ n: jwk.n, e: jwk.e });
    size = rsaKeySize({ n: jwk.n, e: jwk.e });
  }
  return {
    ...fromProperties(p, key.id ?? p.id ?? ""),
    keyType,
    keySize: size,
    publicKeyDer: der,
    thumbprint: der.length > 0 ? thumbprintOfDer(der) : "",
    publicKeyKnown: der.length > 0,
  };
}

/** A description from properties alone (the vault would not show the key itself). Pure. */
export function describeVaultKeyProperties(p: KeyProperties): KeyDescription {
  return {
    ...fromProperties(p, p.id ?? ""),
    keyType: "unknown",
    keySize: 0,
    publicKeyDer: Buffer.alloc(0),
    thumbprint: "",
    publicKeyKnown: false,
  };
}

function fromProperties(p: KeyProperties, keyID: string) {
  return {
    keyID,
    version: p.version ?? "",
    enabled: p.enabled ?? false,
    ...(p.notBefore ? { notBefore: p.notBefore } : {}),
    ...(p.expiresOn ? { expiresOn: p.expiresOn } : {}),
    ...(p.createdOn ? { createdOn: p.createdOn } : {}),
    ...(p.recoveryLevel ? { recoveryLevel: p.recoveryLevel } : {}),
    ...(p.recoverableDays !== undefined ? { recoverableDays: p.recoverableDays } : {}),
  };
}

/** Newest first by creation time (ties: by version string, so the order is stable). */
export function newestFirst<T extends { createdOn?: Date | undefined; version?: string | undefined }>(
  items: T[],
): T[] {
  return [...items].sort(
    (a, b) =>
      (b.createdOn?.getTime() ?? 0) - (a.createdOn?.getTime() ?? 0) ||
      (b.version ?? "").localeCompare(a.version ?? ""),
  );
}

/**
 * The current version when the vault said it is disabled: among the newest versions (creation
 * times tie within a second), the disabled one; several disabled ties are alike for access, so
 * the greatest version id, for a stable answer. Undefined when no newest version is disabled.
 */
export function disabledCurrentVersion(versions: readonly KeyProperties[]): KeyProperties | undefined {
  const newest = Math.max(...versions.map((v) => v.createdOn?.getTime() ?? 0));
  return newestFirst(
    versions.filter((v) => (v.createdOn?.getTime() ?? 0) === newest && v.enabled === false),
  )[0];
}

/** The cache key of an identity: what makes two credentials different. Pure. */
export function identityCacheKey(identity: IdentitySpec | undefined, namespace: string): string {
  const id = identity ?? { type: "Default" as const };
  const parts = [id.type, id.clientID ?? "", id.tenantID ?? "", id.federatedClientID ?? ""];
  if (id.type === "ClientSecret")
    parts.push(namespace, id.clientSecretRef?.name ?? "", id.clientSecretRef?.key ?? "");
  return parts.join("|");
}

export interface Target {
  vaultURL: string;
  name: string;
  version?: string;
}

export class AzureKeyVaultProvider implements KekProvider {
  readonly name = "AzureKeyVault" as const;
  private readonly credentials = new Map<string, Promise<TokenCredential>>();
  private readonly clients = new Map<string, KeyClient>();
  private readonly options: AzureKeyVaultProviderOptions;

  constructor(options: AzureKeyVaultProviderOptions = {}) {
    this.options = options;
  }

  /** TLS settings of every client: the public roots plus the configured CAs (never verification off). */
  private tlsOptions(): { tlsOptions?: { ca: string[] } } {
    const extra = this.options.caCertificates;
    return extra ? { tlsOptions: { ca: [...rootCertificates, extra] } } : {};
  }

  async describe(ref: KeyReference): Promise<KeyDescription> {
    const target = this.target(ref);
    return this.call(ref, target, async (client, signal) => {
      if (target.version) return this.describeVersion(client, target, signal);
      return this.describeCurrent(client, target, signal);
    });
  }

  async listVersions(ref: KeyReference): Promise<KeyDescription[]> {
    const target = this.target(ref);
    return this.call(ref, target, async (client, signal) => {
      const versions = await this.versionProperties(client, target.name, signal);
      const described: KeyDescription[] = [];
      for (const v of versions) {
        described.push(
          await this.describeVersion(client, { ...target, version: v.version ?? "" }, signal, v),
        );
      }
      return described;
    });
  }

  async wrap(ref: KeyReference, dek: Buffer): Promise<WrapResult> {
    const target = await this.pinned(ref);
    return this.call(
      ref,
      target,
      async (client, signal) => {
        const crypto = client.getCryptographyClient(target.name, { keyVersion: target.version! });
        const result = await crypto.wrapKey(ALGORITHM, dek, { abortSignal: signal });
        return {
          keyID: result.keyID ?? `${target.vaultURL}/keys/${target.name}/${target.version}`,
          algorithm: ALGORITHM,
          wrapped: Buffer.from(result.result),
        };
      },
      { confirm: true },
    );
  }

  async unwrap(ref: KeyReference, wrapped: Buffer): Promise<Buffer> {
    const target = await this.pinned(ref);
    return this.call(
      ref,
      target,
      async (client, signal) => {
        const crypto = client.getCryptographyClient(target.name, { keyVersion: target.version! });
        const result = await crypto.unwrapKey(ALGORITHM, wrapped, { abortSignal: signal });
        return Buffer.from(result.result);
      },
      { confirm: true },
    );
  }

  // ---- internals ----

  private target(ref: KeyReference): Target {
    if (ref.keyID) {
      const parsed = parseKeyID(ref.keyID);
      if (!parsed) {
        throw new KeyAccessError(
          "KeyNotFound",
          `${ref.keyID} is not a Key Vault key id (https://VAULT/keys/NAME/VERSION)`,
        );
      }
      return parsed;
    }
    if (!ref.vaultURL)
      throw new KeyAccessError("KeyNotFound", `the reference to key ${ref.keyName} has no vault URL`);
    return {
      vaultURL: trimSlash(ref.vaultURL),
      name: ref.keyName,
      ...(ref.keyVersion ? { version: ref.keyVersion } : {}),
    };
  }

  /** The target with a version: the one named, or the vault's current one. */
  private async pinned(ref: KeyReference): Promise<Target> {
    const target = this.target(ref);
    if (target.version) return target;
    const description = await this.describe(ref);
    return { ...target, version: description.version };
  }

  private async versionProperties(
    client: KeyClient,
    name: string,
    signal: AbortSignal,
  ): Promise<KeyProperties[]> {
    const all: KeyProperties[] = [];
    for await (const p of client.listPropertiesOfKeyVersions(name, { abortSignal: signal })) all.push(p);
    return newestFirst(all);
  }

  /**
   * R6: the vault's current version is what it answers for the key without a version. Creation
   * times have one-second resolution, so no ordering of the versions can stand in for that
   * answer. The vault will not show a disabled current version (Azure 403, Lowkey Vault 404,
   * both saying "disabled"): then the current version is the newest one, and disabled.
   */
  private async describeCurrent(client: KeyClient, target: Target, signal: AbortSignal) {
    try {
      return describeVaultKey(await client.getKey(target.name, { abortSignal: signal }));
    } catch (error) {
      if (classifyAzureError(azureErrorFacts(error))?.reason !== "KeyDisabled") throw error;
      const current = disabledCurrentVersion(await this.versionProperties(client, target.name, signal));
      if (!current) throw error;
      return describeVaultKeyProperties(current);
    }
  }

  private async describeVersion(
    client: KeyClient,
    target: Target,
    signal: AbortSignal,
    known?: KeyProperties,
  ): Promise<KeyDescription> {
    try {
      return describeVaultKey(
        await client.getKey(target.name, { version: target.version ?? "", abortSignal: signal }),
      );
    } catch (error) {
      // Azure refuses `get` on a disabled version (403): describe it from its properties instead.
      const classified = classifyAzureError(azureErrorFacts(error));
      if (classified && (classified.reason === "KeyDisabled" || classified.reason === "PermissionDenied")) {
        const props =
          known ??
          (await this.versionProperties(client, target.name, signal)).find(
            (p) => p.version === target.version,
          );
        if (props && props.enabled === false) return describeVaultKeyProperties(props);
      }
      throw error;
    }
  }

  /** Runs one operation with a time limit and turns its failure into a KeyAccessError. */
  private async call<T>(
    ref: KeyReference,
    target: Target,
    op: (client: KeyClient, signal: AbortSignal) => Promise<T>,
    options: { confirm?: boolean } = {},
  ): Promise<T> {
    const identityKey = identityCacheKey(ref.identity, ref.namespace);
    const signal = AbortSignal.timeout(this.options.timeoutMs ?? 20_000);
    let client: KeyClient;
    try {
      client = await this.client(target.vaultURL, ref, identityKey);
    } catch (error) {
      throw this.toAccessError(error, ref, undefined);
    }
    try {
      return await op(client, signal);
    } catch (error) {
      if (error instanceof KeyAccessError) throw error;
      const classified = classifyAzureError(
        azureErrorFacts(error, (this.options.now?.() ?? new Date()).getTime()),
      );
      if (classified?.reason === "AuthenticationFailed") {
        // A rotated client secret or a fixed federation: make the credential again next time.
        this.credentials.delete(identityKey);
        for (const key of [...this.clients.keys()])
          if (key.endsWith(`#${identityKey}`)) this.clients.delete(key);
      }
      if (classified?.confirmByDescribe && options.confirm && target.version) {
        const confirmed = await this.confirm(client, target);
        if (confirmed)
          throw new KeyAccessError(
            confirmed,
            `${describeRef({ ...ref, keyID: `${target.vaultURL}/keys/${target.name}/${target.version}` })}: ${reasonText(confirmed)}`,
          );
      }
      throw this.toAccessError(error, ref, classified);
    }
  }

  /** Describes the version to tell a disabled/expired/not-yet-active key from a permission problem. */
  private async confirm(client: KeyClient, target: Target): Promise<KeyAccessError["reason"] | undefined> {
    try {
      const d = await this.describeVersion(
        client,
        target,
        AbortSignal.timeout(this.options.timeoutMs ?? 20_000),
      );
      const now = (this.options.now?.() ?? new Date()).getTime();
      if (!d.enabled) return "KeyDisabled";
      if (d.expiresOn && d.expiresOn.getTime() <= now) return "KeyExpired";
      if (d.notBefore && d.notBefore.getTime() > now) return "KeyNotYetActive";
      return undefined;
    } catch (error) {
      return classifyAzureError(azureErrorFacts(error))?.reason;
    }
  }

  private toAccessError(
    error: unknown,
    ref: KeyReference,
    classified = classifyAzureError(azureErrorFacts(error)),
  ): Error {
    if (error instanceof KeyAccessError) return error;
    if (!classified) return error instanceof Error ? error : new Error(String(error));
    const facts = azureErrorFacts(error);
    const status =
      facts.statusCode !== undefined
        ? ` (HTTP ${facts.statusCode}${facts.code ? ` ${facts.code}` : ""})`
        : "";
    return new KeyAccessError(
      classified.reason,
      `${describeRef(ref)}: ${classified.advice ?? reasonText(classified.reason)}${status}`,
      {
        ...(classified.retryAfterMs === undefined ? {} : { retryAfterMs: classified.retryAfterMs }),
        cause: error,
      },
    );
  }

  private async client(vaultURL: string, ref: KeyReference, identityKey: string): Promise<KeyClient> {
    const cacheKey = `${vaultURL}#${identityKey}`;
    const cached = this.clients.get(cacheKey);
    if (cached) return cached;
    const credential = await this.credential(ref, identityKey);
    const onThrottled = this.options.onThrottled;
    const { KeyClient } = await import("@azure/keyvault-keys");
    const client = new KeyClient(vaultURL, credential, {
      ...this.tlsOptions(),
      ...this.options.clientOptions,
      disableChallengeResourceVerification: this.options.disableChallengeResourceVerification ?? false,
      retryOptions: {
        maxRetries: this.options.maxRetries ?? 2,
        retryDelayInMs: this.options.retryDelayMs ?? 500,
        maxRetryDelayInMs: this.options.maxRetryDelayMs ?? 8_000,
      },
      additionalPolicies: [
        ...(this.options.clientOptions?.additionalPolicies ?? []),
        ...(onThrottled
          ? [
              {
                position: "perRetry" as const,
                policy: {
                  name: "tdeThrottleCounter",
                  sendRequest: async (request, next) => {
                    const response = await next(request);
                    if (response.status === 429) {
                      const facts = azureErrorFacts({ response });
                      onThrottled(vaultURL, facts.retryAfterMs);
                    }
                    return response;
                  },
                } satisfies NonNullable<KeyClientOptions["additionalPolicies"]>[number]["policy"],
              },
            ]
          : []),
      ],
    });
    this.clients.set(cacheKey, client);
    return client;
  }

  private credentialOptions(): AzureCredentialOptions {
    const o = this.options;
    return {
      ...(o.readSecret ? { readSecret: o.readSecret } : {}),
      ...(o.federatedTokenFile ? { federatedTokenFile: o.federatedTokenFile } : {}),
      ...(o.authorityHost ? { authorityHost: o.authorityHost } : {}),
      ...(o.tokenExchangeAudience ? { tokenExchangeAudience: o.tokenExchangeAudience } : {}),
      clientOptions: {
        ...this.tlsOptions(),
        ...(o.clientOptions?.proxyOptions ? { proxyOptions: o.clientOptions.proxyOptions } : {}),
      },
    };
  }

  private credential(ref: KeyReference, identityKey: string): Promise<TokenCredential> {
    let credential = this.credentials.get(identityKey);
    if (!credential) {
      const identity = ref.identity ?? { type: "Default" as const };
      credential = Promise.resolve(
        this.options.credentialFactory
          ? this.options.credentialFactory(identity, ref.namespace)
          : makeAzureCredential(identity, ref.namespace, this.credentialOptions()),
      );
      credential.catch(() => this.credentials.delete(identityKey));
      this.credentials.set(identityKey, credential);
    }
    return credential;
  }
}

/** `https://VAULT/keys/NAME[/VERSION]` into its parts; undefined for anything else. */
export function parseKeyID(id: string): Target | undefined {
  let url: URL;
  try {
    url = new URL(id);
  } catch {
    return undefined;
  }
  const parts = url.pathname.split("/").filter(Boolean);
  if (
    !["https:", "http:"].includes(url.protocol) ||
    parts[0] !== "keys" ||
    parts.length < 2 ||
    parts.length > 3
  )
    return undefined;
  return {
    vaultURL: trimSlash(url.origin),
    name: decodeURIComponent(parts[1]!),
    ...(parts[2] ? { version: decodeURIComponent(parts[2]) } : {}),
  };
}

function trimSlash(url: string): string {
  return url.replace(/\/+$/, "");
}

function reasonText(reason: KeyAccessError["reason"]): string {
  switch (reason) {
    case "KeyDisabled":
      return "the key is disabled; enable it in the vault or choose an enabled version";
    case "KeyExpired":
      return "the key has expired; extend its expiry or rotate to a new version";
    case "KeyNotYetActive":
      return "the key is not active yet (nbf in the future)";
    case "KeyNotFound":
      return "the key was not found (deleted keys can be recovered while soft-deleted)";
    case "PermissionDenied":
      return "the identity lacks permission; grant get, wrapKey and unwrapKey on the key";
    case "AuthenticationFailed":
      return "the identity could not authenticate; check its client id, tenant and federation";
    case "Throttled":
      return "the vault is throttling requests; retrying later";
    case "VaultUnreachable":
      return "the vault could not be reached";
  }
}
