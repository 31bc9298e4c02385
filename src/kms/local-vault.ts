/**
 * R7: the admin side of the Local provider, with a vault's semantics: create, import, rotate (a
 * new version), enable/disable, activation and expiry dates, soft delete, recover and purge. The
 * operator, `kubectl tde local-key`, tests and the demo all go through it.
 */
import { createPrivateKey, generateKeyPair, type KeyObject } from "node:crypto";
import { promisify } from "node:util";
import { kubeErrorFacts } from "./kube-errors.js";
import {
  loadVersion,
  parseStoredKey,
  SERVICE_MANAGED_KEY_NAME,
  type StoredKey,
  type StoredVersion,
  storedVersion,
  type VersionOptions,
} from "./local-key-format.js";
import type { LocalKeyStore } from "./local-key-store.js";
import { KeyAccessError, type KeyDescription, type KeyReference } from "./provider.js";

const generateKeyPairAsync = promisify(generateKeyPair);

export interface CreateLocalKeyOptions extends VersionOptions {
  /** RSA modulus bits; default 3072. */
  size?: number;
}

/** A Local key as a person lists it: every version, newest (current) first. */
export interface LocalKeyInfo {
  namespace: string;
  name: string;
  /** set while soft-deleted */
  deletedAt?: string;
  versions: KeyDescription[];
}

export const DEFAULT_LOCAL_KEY_SIZE = 3072;

export class LocalVault {
  /** Told after every change, so a reader's cache of the key is dropped. */
  onChange: (namespace: string, name: string) => void = () => {};

  constructor(
    private readonly store: LocalKeyStore,
    private readonly now: () => Date = () => new Date(),
  ) {}

  /** Creates a key with one version. Fails if the key exists, even soft-deleted (recover it instead). */
  async createKey(
    namespace: string,
    name: string,
    options: CreateLocalKeyOptions = {},
  ): Promise<KeyDescription> {
    const version = await this.newVersion(options.size ?? DEFAULT_LOCAL_KEY_SIZE, options);
    await this.store.create(namespace, name, { versions: [version] });
    this.onChange(namespace, name);
    return loadVersion(namespace, name, version).description;
  }

  /** Imports existing key material (PKCS#8 or PKCS#1 PEM) as a new key, or as a new version of an existing one. */
  async importKey(
    namespace: string,
    name: string,
    privateKeyPem: string,
    options: VersionOptions = {},
  ): Promise<KeyDescription> {
    let privateKey: KeyObject;
    try {
      privateKey = createPrivateKey(privateKeyPem);
    } catch {
      // never echo the input: it is key material
      throw new Error("the key to import is not a PEM private key (PKCS#8 or PKCS#1)");
    }
    if (privateKey.asymmetricKeyType !== "rsa") throw new Error("only RSA keys can be imported");
    const version = storedVersion(privateKey, options, this.now());
    if (!(await this.store.read(namespace, name))) {
      await this.store.create(namespace, name, { versions: [version] });
    } else {
      await this.store.update(namespace, name, (stored) => {
        stored.versions.push(version);
      });
    }
    this.onChange(namespace, name);
    return loadVersion(namespace, name, version).description;
  }

  /** Adds a new version (a rotation, R6), of the current version's size unless told otherwise. */
  async rotateKey(
    namespace: string,
    name: string,
    options: CreateLocalKeyOptions = {},
  ): Promise<KeyDescription> {
    const current = (await this.show(namespace, name)).versions[0];
    if (!current) throw new KeyAccessError("KeyNotFound", `local key ${namespace}/${name} has no version`);
    const version = await this.newVersion(
      options.size ?? (current.keySize || DEFAULT_LOCAL_KEY_SIZE),
      options,
    );
    await this.change(namespace, name, (stored) => {
      stored.versions.push(version);
    });
    return loadVersion(namespace, name, version).description;
  }

  /** Enables or disables one version (default: the newest, the current one). */
  async setEnabled(namespace: string, name: string, enabled: boolean, version?: string): Promise<void> {
    await this.changeVersion(namespace, name, version, (v) => {
      v.enabled = enabled;
    });
  }

  /** Sets or clears (null) the expiry of one version (default: the newest). */
  async setExpiry(namespace: string, name: string, expiresOn: Date | null, version?: string): Promise<void> {
    await this.changeVersion(namespace, name, version, (v) => {
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
    await this.changeVersion(namespace, name, version, (v) => {
      if (notBefore) v.notBefore = notBefore.toISOString();
      else delete v.notBefore;
    });
  }

  /** Soft-deletes the key: it is "not found" until recovered, and purgeable after that. */
  async deleteKey(namespace: string, name: string): Promise<void> {
    await this.change(namespace, name, (stored) => {
      if (stored.deletedAt) return;
      stored.deletedAt = this.now().toISOString();
    });
  }

  /** Recovers a soft-deleted key with all its versions. */
  async recoverKey(namespace: string, name: string): Promise<void> {
    await this.change(
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
    const key = await this.show(namespace, name);
    if (!key.deletedAt) throw new Error(`local key ${namespace}/${name} must be deleted before it is purged`);
    await this.store.remove(namespace, name);
    this.onChange(namespace, name);
  }

  /** The key and every version, newest first, deleted or not; KeyNotFound when there is none. */
  async show(namespace: string, name: string): Promise<LocalKeyInfo> {
    const secret = await this.store.read(namespace, name);
    if (!secret) throw new KeyAccessError("KeyNotFound", `local key ${namespace}/${name} was not found`);
    return describeStoredKey(namespace, name, parseStoredKey(secret, namespace, name));
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
    const existing = await this.store.read(namespace, name);
    if (existing) {
      if (parseStoredKey(existing, namespace, name).deletedAt) await this.recoverKey(namespace, name);
      return ref;
    }
    try {
      await this.createKey(namespace, name, { size: DEFAULT_LOCAL_KEY_SIZE });
    } catch (error) {
      if (kubeErrorFacts(error).status !== 409) throw error;
    }
    return ref;
  }

  private async change(
    namespace: string,
    name: string,
    change: (stored: StoredKey) => void,
    options: { includeDeleted?: boolean } = {},
  ): Promise<void> {
    await this.store.update(namespace, name, change, options);
    this.onChange(namespace, name);
  }

  private async changeVersion(
    namespace: string,
    name: string,
    version: string | undefined,
    change: (v: StoredVersion) => void,
  ): Promise<void> {
    await this.change(namespace, name, (stored) => {
      const target = version ? stored.versions.find((v) => v.version === version) : stored.versions.at(-1);
      if (!target)
        throw new KeyAccessError("KeyNotFound", `local key ${namespace}/${name} has no version ${version}`);
      change(target);
    });
  }

  private async newVersion(size: number, options: VersionOptions): Promise<StoredVersion> {
    if (!Number.isInteger(size) || size < 1024 || size > 8192)
      throw new Error(`an RSA key size of ${size} bits is not supported`);
    const { privateKey } = await generateKeyPairAsync("rsa", { modulusLength: size });
    return storedVersion(privateKey, options, this.now());
  }
}

/** Every version of a stored key, newest first, as a vault describes them (no key material). */
export function describeStoredKey(namespace: string, name: string, stored: StoredKey): LocalKeyInfo {
  return {
    namespace,
    name,
    ...(stored.deletedAt ? { deletedAt: stored.deletedAt } : {}),
    versions: [...stored.versions].reverse().map((v) => loadVersion(namespace, name, v).description),
  };
}
