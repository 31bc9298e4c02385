/**
 * The Local provider (R7): the KekProvider port over RSA KEKs kept in Kubernetes Secrets. The
 * admin operations (create, import, rotate, enable/disable, dates, delete, recover, purge) are
 * the local vault's (local-vault.ts); the Secret format is local-key-format.ts. Node's crypto does
 * RSA-OAEP-256.
 *
 * The private keys live only in the Secret's data; no message, error or description built here
 * contains them.
 */
import { constants, privateDecrypt, publicEncrypt } from "node:crypto";
import type { CoreV1Api } from "@kubernetes/client-node";
import { type LoadedVersion, loadVersion, parseLocalKeyID, parseStoredKey } from "./local-key-format.js";
import { LocalKeyStore } from "./local-key-store.js";
import { isCoreV1Api, type LocalKeySecrets, type SecretObject, secretsOverCoreV1 } from "./local-secrets.js";
import { type CreateLocalKeyOptions, LocalVault } from "./local-vault.js";
import {
  describeRef,
  type KekProvider,
  KeyAccessError,
  type KeyDescription,
  type KeyReference,
  type WrapResult,
} from "./provider.js";

export {
  DELETED_AT_ANNOTATION,
  LOCAL_KEY_DATA_KEY,
  LOCAL_KEY_SECRET_TYPE,
  LOCAL_RECOVERABLE_DAYS,
  LOCAL_RECOVERY_LEVEL,
  localKeyID,
  parseLocalKeyID,
  SERVICE_MANAGED_KEY_NAME,
} from "./local-key-format.js";
export { LocalKeyExistsError } from "./local-key-store.js";
export { type CreateLocalKeyOptions, type LocalKeyInfo, LocalVault } from "./local-vault.js";

interface LoadedKey {
  resourceVersion: string;
  deletedAt?: string;
  /** oldest first */
  versions: LoadedVersion[];
}

/**
 * Where the port's wrap and unwrap look for a key Secret before asking the API server: the
 * operator's informer of Local KEK Secrets (labelled tde.dev/local-key=true). `get` answers
 * undefined when it does not know (not cached, not synced, its watch not open): the provider then
 * reads the Secret from the API server, as it does for every describe and list (the probe's and
 * the KeyProtector's view of the key stay live).
 *
 * R16 revocation: a version disabled, expired, deleted or purged stops working for wraps and
 * unwraps when the informer's watch delivers the change (milliseconds); while the watch is not
 * open the cache is not used at all.
 */
export interface LocalKeyCache {
  get(namespace: string, name: string): SecretObject | undefined;
}

export interface LocalKeyProviderOptions {
  /** See LocalKeyCache; default none (every call reads the Secret). */
  keyCache?: LocalKeyCache;
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
  /** the admin operations on the same Secrets */
  readonly vault: LocalVault;
  private readonly cache = new Map<string, LoadedKey>();
  private readonly now: () => Date;
  private readonly store: LocalKeyStore;
  private keyCache: LocalKeyCache | undefined;

  /**
   * `secrets`: the Secrets API, as our own port (the operator) or client-node's CoreV1Api, whose
   * calls are then cancelled after `requestTimeoutMs`.
   */
  constructor(secrets: LocalKeySecrets | CoreV1Api, options: LocalKeyProviderOptions = {}) {
    this.now = options.now ?? (() => new Date());
    const timeout = options.requestTimeoutMs ?? LocalKeyProvider.DEFAULT_REQUEST_TIMEOUT_MS;
    if (!(Number.isFinite(timeout) && timeout > 0))
      throw new Error(`a request timeout must be a number of milliseconds > 0, got ${timeout}`);
    this.requestTimeoutMs = timeout;
    this.store = new LocalKeyStore(
      isCoreV1Api(secrets) ? secretsOverCoreV1(secrets, timeout) : secrets,
      options.conflictRetries ?? 5,
    );
    this.keyCache = options.keyCache;
    this.vault = new LocalVault(this.store, this.now);
    this.vault.onChange = (namespace, name) => this.cache.delete(`${namespace}/${name}`);
  }

  /** Lets wraps and unwraps read key Secrets from `cache` first (see LocalKeyCache). */
  useKeyCache(cache: LocalKeyCache | undefined): void {
    this.keyCache = cache;
  }

  // ---- the port ----

  async describe(ref: KeyReference): Promise<KeyDescription> {
    const { loaded } = await this.resolve(ref, "live");
    return loaded.description;
  }

  async listVersions(ref: KeyReference): Promise<KeyDescription[]> {
    const { namespace, name } = this.location(ref);
    const key = await this.loadLive(namespace, name, ref);
    return [...key.versions].reverse().map((v) => v.description);
  }

  async wrap(ref: KeyReference, dek: Buffer): Promise<WrapResult> {
    const { loaded } = await this.resolve(ref, "cached");
    this.assertUsable(loaded);
    const wrapped = publicEncrypt(
      {
        key: loaded.publicKey,
        padding: constants.RSA_PKCS1_OAEP_PADDING,
        oaepHash: "sha256",
      },
      dek,
    );
    return { keyID: loaded.description.keyID, algorithm: "RSA-OAEP-256", wrapped };
  }

  async unwrap(ref: KeyReference, wrapped: Buffer): Promise<Buffer> {
    const { loaded } = await this.resolve(ref, "cached");
    this.assertUsable(loaded);
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

  // ---- admin: the local vault's, here for the callers that hold the provider ----

  createKey(namespace: string, name: string, options?: CreateLocalKeyOptions): Promise<KeyDescription> {
    return this.vault.createKey(namespace, name, options);
  }

  importKey(
    namespace: string,
    name: string,
    privateKeyPem: string,
    options?: Omit<CreateLocalKeyOptions, "size">,
  ): Promise<KeyDescription> {
    return this.vault.importKey(namespace, name, privateKeyPem, options);
  }

  rotateKey(namespace: string, name: string, options?: CreateLocalKeyOptions): Promise<KeyDescription> {
    return this.vault.rotateKey(namespace, name, options);
  }

  setEnabled(namespace: string, name: string, enabled: boolean, version?: string): Promise<void> {
    return this.vault.setEnabled(namespace, name, enabled, version);
  }

  setExpiry(namespace: string, name: string, expiresOn: Date | null, version?: string): Promise<void> {
    return this.vault.setExpiry(namespace, name, expiresOn, version);
  }

  setNotBefore(namespace: string, name: string, notBefore: Date | null, version?: string): Promise<void> {
    return this.vault.setNotBefore(namespace, name, notBefore, version);
  }

  deleteKey(namespace: string, name: string): Promise<void> {
    return this.vault.deleteKey(namespace, name);
  }

  recoverKey(namespace: string, name: string): Promise<void> {
    return this.vault.recoverKey(namespace, name);
  }

  purgeKey(namespace: string, name: string): Promise<void> {
    return this.vault.purgeKey(namespace, name);
  }

  ensureServiceManagedKey(namespace: string, name?: string): Promise<KeyReference> {
    return this.vault.ensureServiceManagedKey(namespace, name);
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

  /**
   * The version a reference names. `cached`: from the key cache when it holds the Secret and the
   * version (a version newer than the cache, a key the cache lacks: read live).
   */
  private async resolve(ref: KeyReference, source: "live" | "cached"): Promise<{ loaded: LoadedVersion }> {
    const { namespace, name, version } = this.location(ref);
    const cached = source === "cached" ? this.keyCache?.get(namespace, name) : undefined;
    let key = cached ? this.load(cached, namespace, name, ref) : await this.loadLive(namespace, name, ref);
    if (version) {
      let loaded = key.versions.find((v) => v.stored.version === version);
      if (!loaded && cached) {
        key = await this.loadLive(namespace, name, ref);
        loaded = key.versions.find((v) => v.stored.version === version);
      }
      if (!loaded) throw new KeyAccessError("KeyNotFound", `${describeRef(ref)} has no version ${version}`);
      return { loaded };
    }
    // R6: the current version is the newest, enabled or not. A disabled current version is a
    // loss of access (KeyDisabled), never a reason to fall back to an older version.
    return { loaded: key.versions.at(-1) as LoadedVersion };
  }

  private assertUsable(loaded: LoadedVersion): void {
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
  }

  private async loadLive(namespace: string, name: string, ref: KeyReference): Promise<LoadedKey> {
    const secret = await this.store.read(namespace, name);
    if (!secret) throw new KeyAccessError("KeyNotFound", `${describeRef(ref)} was not found`);
    return this.load(secret, namespace, name, ref);
  }

  /** The Secret's key, parsed once per resourceVersion; a soft-deleted key is KeyNotFound. */
  private load(secret: SecretObject, namespace: string, name: string, ref: KeyReference): LoadedKey {
    const what = describeRef(ref);
    const cacheKey = `${namespace}/${name}`;
    const rv = secret.metadata?.resourceVersion ?? "";
    let loaded = this.cache.get(cacheKey);
    if (!loaded || loaded.resourceVersion !== rv || rv === "") {
      const stored = parseStoredKey(secret, namespace, name);
      loaded = {
        resourceVersion: rv,
        ...(stored.deletedAt ? { deletedAt: stored.deletedAt } : {}),
        versions: stored.versions.map((v) => loadVersion(namespace, name, v)),
      };
      this.cache.set(cacheKey, loaded);
    }
    if (loaded.deletedAt) {
      throw new KeyAccessError(
        "KeyNotFound",
        `${what} was deleted at ${loaded.deletedAt}; recover it to use it again`,
      );
    }
    return loaded;
  }
}
