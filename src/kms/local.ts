/**
 * The Local provider (R7): an RSA KEK held in a Kubernetes Secret, with versions, enabled,
 * activation and expiry dates, soft deletion and recovery behaving as a vault does. It is the
 * embedded default and the operator's service-managed key. Node's crypto does RSA-OAEP-256.
 *
 * The private keys live only in the Secret's data; no message, error or description built here
 * contains them.
 */
import {
  constants,
  createPrivateKey,
  createPublicKey,
  generateKeyPair,
  type KeyObject,
  privateDecrypt,
  publicEncrypt,
  randomBytes,
} from "node:crypto";
import { promisify } from "node:util";
import type { CoreV1Api } from "@kubernetes/client-node";
import { publicKeyDer, rsaKeySize, thumbprintOfDer } from "../crypto/thumbprint.js";
import { classifyKubeError, kubeErrorFacts } from "./kube-errors.js";
import { isCoreV1Api, type LocalKeySecrets, type SecretObject, secretsOverCoreV1 } from "./local-secrets.js";
import {
  describeRef,
  type KekProvider,
  KeyAccessError,
  type KeyDescription,
  type KeyReference,
  type WrapResult,
} from "./provider.js";

const generateKeyPairAsync = promisify(generateKeyPair);

export const LOCAL_KEY_SECRET_TYPE = "tde.dev/local-key";
export const LOCAL_KEY_DATA_KEY = "key.json";
export const LOCAL_RECOVERY_LEVEL = "Recoverable";
export const LOCAL_RECOVERABLE_DAYS = 90;
export const SERVICE_MANAGED_KEY_NAME = "tde-service-managed-key";
export const DELETED_AT_ANNOTATION = "tde.dev/deleted-at";
const MANAGED_BY = { "app.kubernetes.io/managed-by": "tde-operator", "tde.dev/local-key": "true" };

/** One stored version. */
interface StoredVersion {
  version: string;
  createdOn: string;
  enabled: boolean;
  notBefore?: string;
  expiresOn?: string;
  privateKeyPem: string;
}

interface StoredKey {
  versions: StoredVersion[];
  deletedAt?: string;
}

interface LoadedVersion {
  stored: StoredVersion;
  privateKey: KeyObject;
  description: KeyDescription;
}

interface LoadedKey {
  resourceVersion: string;
  deletedAt?: string;
  /** oldest first */
  versions: LoadedVersion[];
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

export interface CreateLocalKeyOptions {
  /** RSA modulus bits; default 3072. */
  size?: number;
  notBefore?: Date;
  expiresOn?: Date;
  enabled?: boolean;
}

export interface LocalKeyProviderOptions {
  /** Conflict retries for admin updates; default 5. */
  conflictRetries?: number;
  /**
   * How long one call to the Kubernetes API may take before it is aborted and reported as
   * VaultUnreachable; default DEFAULT_REQUEST_TIMEOUT_MS. Without it a call the API server (or
   * anything between) never answers would hang for ever, and with it the key's probe (R10).
   */
  requestTimeoutMs?: number;
  now?: () => Date;
}

export class LocalKeyProvider implements KekProvider {
  /** The Azure provider's per-call timeout too. */
  static readonly DEFAULT_REQUEST_TIMEOUT_MS = 20_000;
  readonly name = "Local" as const;
  readonly requestTimeoutMs: number;
  private readonly cache = new Map<string, LoadedKey>();
  private readonly now: () => Date;
  private readonly conflictRetries: number;

  private readonly secrets: LocalKeySecrets;

  /**
   * `secrets`: the Secrets API, as our own port (the operator) or client-node's CoreV1Api, whose
   * calls are then cancelled after `requestTimeoutMs`.
   */
  constructor(secrets: LocalKeySecrets | CoreV1Api, options: LocalKeyProviderOptions = {}) {
    this.now = options.now ?? (() => new Date());
    this.conflictRetries = options.conflictRetries ?? 5;
    const timeout = options.requestTimeoutMs ?? LocalKeyProvider.DEFAULT_REQUEST_TIMEOUT_MS;
    if (!(Number.isFinite(timeout) && timeout > 0))
      throw new Error(`a request timeout must be a number of milliseconds > 0, got ${timeout}`);
    this.requestTimeoutMs = timeout;
    this.secrets = isCoreV1Api(secrets) ? secretsOverCoreV1(secrets, timeout) : secrets;
  }

  // ---- the port ----

  async describe(ref: KeyReference): Promise<KeyDescription> {
    const { key, version } = await this.resolve(ref);
    return key.versions.find((v) => v.stored.version === version)!.description;
  }

  async listVersions(ref: KeyReference): Promise<KeyDescription[]> {
    const { namespace, name } = this.location(ref);
    const key = await this.loadLive(namespace, name, ref);
    return [...key.versions].reverse().map((v) => v.description);
  }

  async wrap(ref: KeyReference, dek: Buffer): Promise<WrapResult> {
    const { key, version, namespace, name } = await this.resolve(ref);
    const loaded = key.versions.find((v) => v.stored.version === version)!;
    this.assertUsable(loaded, ref);
    const wrapped = publicEncrypt(
      {
        key: createPublicKey(loaded.privateKey),
        padding: constants.RSA_PKCS1_OAEP_PADDING,
        oaepHash: "sha256",
      },
      dek,
    );
    return { keyID: localKeyID(namespace, name, version), algorithm: "RSA-OAEP-256", wrapped };
  }

  async unwrap(ref: KeyReference, wrapped: Buffer): Promise<Buffer> {
    const { key, version } = await this.resolve(ref);
    const loaded = key.versions.find((v) => v.stored.version === version)!;
    this.assertUsable(loaded, ref);
    try {
      return privateDecrypt(
        { key: loaded.privateKey, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" },
        wrapped,
      );
    } catch {
      // The vault answers 400 BadParameter to ciphertext it cannot decrypt; so do we, without details.
      throw new Error(
        `the wrapped key could not be unwrapped with ${loaded.description.keyID}: it was wrapped by another key or is corrupt`,
      );
    }
  }

  // ---- admin (tests, demo, operator) ----

  /** Creates a key with one version. Fails if the key exists, even soft-deleted (recover it instead). */
  async createKey(
    namespace: string,
    name: string,
    options: CreateLocalKeyOptions = {},
  ): Promise<KeyDescription> {
    const version = await this.newVersion(options.size ?? 3072, options);
    await this.createSecret(namespace, name, { versions: [version] });
    return this.describe({ provider: "Local", namespace, keyName: name, keyVersion: version.version });
  }

  /** Imports existing key material (PKCS#8 or PKCS#1 PEM) as a new key, or as a new version of an existing one. */
  async importKey(
    namespace: string,
    name: string,
    privateKeyPem: string,
    options: Omit<CreateLocalKeyOptions, "size"> = {},
  ): Promise<KeyDescription> {
    const privateKey = createPrivateKey(privateKeyPem);
    if (privateKey.asymmetricKeyType !== "rsa") throw new Error("only RSA keys can be imported");
    const version = this.versionFrom(privateKey, options);
    const existing = await this.readSecret(namespace, name);
    if (!existing) {
      await this.createSecret(namespace, name, { versions: [version] });
    } else {
      await this.update(namespace, name, (stored) => {
        stored.versions.push(version);
      });
    }
    return this.describe({ provider: "Local", namespace, keyName: name, keyVersion: version.version });
  }

  /** Adds a new version (a rotation, R6). */
  async rotateKey(
    namespace: string,
    name: string,
    options: CreateLocalKeyOptions = {},
  ): Promise<KeyDescription> {
    const current = await this.describe({ provider: "Local", namespace, keyName: name });
    const version = await this.newVersion(options.size ?? (current.keySize || 3072), options);
    await this.update(namespace, name, (stored) => {
      stored.versions.push(version);
    });
    return this.describe({ provider: "Local", namespace, keyName: name, keyVersion: version.version });
  }

  /** Enables or disables one version (default: the newest). */
  async setEnabled(namespace: string, name: string, enabled: boolean, version?: string): Promise<void> {
    await this.updateVersion(namespace, name, version, (v) => {
      v.enabled = enabled;
    });
  }

  /** Sets or clears (null) the expiry of one version (default: the newest). */
  async setExpiry(namespace: string, name: string, expiresOn: Date | null, version?: string): Promise<void> {
    await this.updateVersion(namespace, name, version, (v) => {
      if (expiresOn) v.expiresOn = expiresOn.toISOString();
      else delete v.expiresOn;
    });
  }

  /** Sets or clears (null) the activation date of one version (default: the newest). */
  async setNotBefore(
    namespace: string,
    name: string,
    notBefore: Date | null,
    version?: string,
  ): Promise<void> {
    await this.updateVersion(namespace, name, version, (v) => {
      if (notBefore) v.notBefore = notBefore.toISOString();
      else delete v.notBefore;
    });
  }

  /** Soft-deletes the key: it is "not found" until recovered, and purgeable after 90 days. */
  async deleteKey(namespace: string, name: string): Promise<void> {
    await this.update(namespace, name, (stored) => {
      if (stored.deletedAt) return;
      stored.deletedAt = this.now().toISOString();
    });
  }

  /** Recovers a soft-deleted key with all its versions. */
  async recoverKey(namespace: string, name: string): Promise<void> {
    await this.update(
      namespace,
      name,
      (stored) => {
        if (!stored.deletedAt)
          throw new KeyAccessError(
            "KeyNotFound",
            `local key ${namespace}/${name} is not deleted: nothing to recover`,
          );
        delete stored.deletedAt;
      },
      { includeDeleted: true },
    );
  }

  /** Removes a soft-deleted key for good. Refused for a key that is not deleted. */
  async purgeKey(namespace: string, name: string): Promise<void> {
    const key = await this.loadLive(namespace, name, undefined, { includeDeleted: true });
    if (!key.deletedAt) throw new Error(`local key ${namespace}/${name} must be deleted before it is purged`);
    await this.secrets.delete(namespace, name);
    this.cache.delete(`${namespace}/${name}`);
  }

  /**
   * R7: the operator's own KEK in its namespace, created on first use (3072 bits). Safe when two
   * replicas race: the loser reads the winner's key. A soft-deleted key is recovered.
   */
  async ensureServiceManagedKey(
    namespace: string,
    name: string = SERVICE_MANAGED_KEY_NAME,
  ): Promise<KeyReference> {
    const ref: KeyReference = { provider: "Local", namespace, keyName: name };
    const existing = await this.readSecret(namespace, name);
    if (existing) {
      if (this.parseStored(existing, namespace, name).deletedAt) await this.recoverKey(namespace, name);
      return ref;
    }
    try {
      await this.createKey(namespace, name, { size: 3072 });
    } catch (error) {
      if (kubeErrorFacts(error).status !== 409) throw error;
    }
    return ref;
  }

  // ---- internals ----

  private location(ref: KeyReference): { namespace: string; name: string; version?: string } {
    if (ref.keyID) {
      const parsed = parseLocalKeyID(ref.keyID);
      if (!parsed)
        throw new KeyAccessError(
          "KeyNotFound",
          `${ref.keyID} is not a local key id (local://NAMESPACE/NAME/VERSION)`,
        );
      if (parsed.namespace !== ref.namespace) {
        // R31: a reference resolves in its own namespace only.
        throw new KeyAccessError(
          "PermissionDenied",
          `local key ${ref.keyID} is not in namespace ${ref.namespace}`,
        );
      }
      return parsed;
    }
    return {
      namespace: ref.namespace,
      name: ref.keyName,
      ...(ref.keyVersion ? { version: ref.keyVersion } : {}),
    };
  }

  private async resolve(ref: KeyReference) {
    const { namespace, name, version } = this.location(ref);
    const key = await this.loadLive(namespace, name, ref);
    if (version) {
      if (!key.versions.some((v) => v.stored.version === version)) {
        throw new KeyAccessError("KeyNotFound", `${describeRef(ref)} has no version ${version}`);
      }
      return { key, version, namespace, name };
    }
    // R6: the current version is the newest, enabled or not. A disabled current version is a
    // loss of access (KeyDisabled), never a reason to fall back to an older version.
    return { key, version: key.versions.at(-1)!.stored.version, namespace, name };
  }

  private assertUsable(loaded: LoadedVersion, ref: KeyReference): void {
    const d = loaded.description;
    const now = this.now().getTime();
    if (!d.enabled) throw new KeyAccessError("KeyDisabled", `${d.keyID} is disabled`);
    if (d.notBefore && d.notBefore.getTime() > now) {
      throw new KeyAccessError(
        "KeyNotYetActive",
        `${d.keyID} cannot be used before ${d.notBefore.toISOString()}`,
      );
    }
    if (d.expiresOn && d.expiresOn.getTime() <= now) {
      throw new KeyAccessError("KeyExpired", `${d.keyID} expired at ${d.expiresOn.toISOString()}`);
    }
    void ref;
  }

  private async readSecret(namespace: string, name: string): Promise<SecretObject | undefined> {
    try {
      return await this.secrets.read(namespace, name);
    } catch (error) {
      const facts = kubeErrorFacts(error);
      if (facts.status === 404) return undefined;
      throw this.accessError(error, `local key ${namespace}/${name}`);
    }
  }

  private accessError(error: unknown, what: string): KeyAccessError {
    const facts = kubeErrorFacts(error);
    const reason = classifyKubeError(facts);
    const detail =
      facts.status !== undefined
        ? `the Kubernetes API answered ${facts.status}`
        : (error as Error | undefined)?.name === "TimeoutError"
          ? (error as Error).message
          : "the Kubernetes API could not be reached";
    const messages: Record<string, string> = {
      AuthenticationFailed: `${what}: ${detail}; the operator's credentials were not accepted`,
      PermissionDenied: `${what}: ${detail}; grant the operator get/update on Secrets in this namespace`,
      KeyNotFound: `${what} was not found`,
      Throttled: `${what}: ${detail}; retrying later`,
      VaultUnreachable: `${what}: ${detail}`,
    };
    return new KeyAccessError(reason, messages[reason] ?? `${what}: ${detail}`, {
      ...(facts.retryAfterMs === undefined ? {} : { retryAfterMs: facts.retryAfterMs }),
    });
  }

  private parseStored(secret: SecretObject, namespace: string, name: string): StoredKey {
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

  private async loadLive(
    namespace: string,
    name: string,
    ref?: KeyReference,
    options: { includeDeleted?: boolean } = {},
  ): Promise<LoadedKey> {
    const secret = await this.readSecret(namespace, name);
    const what = ref ? describeRef(ref) : `local key ${namespace}/${name}`;
    if (!secret) throw new KeyAccessError("KeyNotFound", `${what} was not found`);
    const cacheKey = `${namespace}/${name}`;
    const rv = secret.metadata?.resourceVersion ?? "";
    let loaded = this.cache.get(cacheKey);
    if (!loaded || loaded.resourceVersion !== rv || rv === "") {
      const stored = this.parseStored(secret, namespace, name);
      loaded = {
        resourceVersion: rv,
        ...(stored.deletedAt ? { deletedAt: stored.deletedAt } : {}),
        versions: stored.versions.map((v) => this.loadVersion(namespace, name, v)),
      };
      this.cache.set(cacheKey, loaded);
    }
    if (loaded.deletedAt && !options.includeDeleted) {
      throw new KeyAccessError(
        "KeyNotFound",
        `${what} was deleted at ${loaded.deletedAt}; recover it to use it again`,
      );
    }
    return loaded;
  }

  private loadVersion(namespace: string, name: string, stored: StoredVersion): LoadedVersion {
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
    return { stored, privateKey, description };
  }

  private async newVersion(size: number, options: CreateLocalKeyOptions): Promise<StoredVersion> {
    if (!Number.isInteger(size) || size < 1024 || size > 8192)
      throw new Error(`an RSA key size of ${size} bits is not supported`);
    const { privateKey } = await generateKeyPairAsync("rsa", { modulusLength: size });
    return this.versionFrom(privateKey, options);
  }

  private versionFrom(privateKey: KeyObject, options: Omit<CreateLocalKeyOptions, "size">): StoredVersion {
    return {
      version: randomBytes(16).toString("hex"),
      createdOn: this.now().toISOString(),
      enabled: options.enabled ?? true,
      ...(options.notBefore ? { notBefore: options.notBefore.toISOString() } : {}),
      ...(options.expiresOn ? { expiresOn: options.expiresOn.toISOString() } : {}),
      privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
    };
  }

  private secretBody(
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
        labels: { ...MANAGED_BY },
        ...(stored.deletedAt ? { annotations: { [DELETED_AT_ANNOTATION]: stored.deletedAt } } : {}),
        ...(resourceVersion ? { resourceVersion } : {}),
      },
      data: { [LOCAL_KEY_DATA_KEY]: Buffer.from(JSON.stringify(stored), "utf8").toString("base64") },
    };
  }

  private async createSecret(namespace: string, name: string, stored: StoredKey): Promise<void> {
    try {
      await this.secrets.create(namespace, this.secretBody(namespace, name, stored));
    } catch (error) {
      if (kubeErrorFacts(error).status === 409) {
        const conflict = new Error(
          `local key ${namespace}/${name} already exists (perhaps soft-deleted: recover it instead)`,
        );
        (conflict as Error & { code: number }).code = 409;
        throw conflict;
      }
      throw this.accessError(error, `local key ${namespace}/${name}`);
    }
  }

  private async update(
    namespace: string,
    name: string,
    change: (stored: StoredKey) => void,
    options: { includeDeleted?: boolean } = {},
  ): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const secret = await this.readSecret(namespace, name);
      if (!secret) throw new KeyAccessError("KeyNotFound", `local key ${namespace}/${name} was not found`);
      const stored = this.parseStored(secret, namespace, name);
      if (stored.deletedAt && !options.includeDeleted) {
        throw new KeyAccessError(
          "KeyNotFound",
          `local key ${namespace}/${name} is deleted; recover it first`,
        );
      }
      change(stored);
      try {
        await this.secrets.replace(
          namespace,
          name,
          this.secretBody(namespace, name, stored, secret.metadata?.resourceVersion),
        );
        this.cache.delete(`${namespace}/${name}`);
        return;
      } catch (error) {
        if (kubeErrorFacts(error).status === 409 && attempt < this.conflictRetries) continue;
        throw this.accessError(error, `local key ${namespace}/${name}`);
      }
    }
  }

  private async updateVersion(
    namespace: string,
    name: string,
    version: string | undefined,
    change: (v: StoredVersion) => void,
  ): Promise<void> {
    await this.update(namespace, name, (stored) => {
      const target = version ? stored.versions.find((v) => v.version === version) : stored.versions.at(-1);
      if (!target)
        throw new KeyAccessError("KeyNotFound", `local key ${namespace}/${name} has no version ${version}`);
      change(target);
    });
  }
}
