/**
 * R7: reading and writing Local KEK Secrets, with the Kubernetes API's failures classified as the
 * vault's (KeyNotFound, PermissionDenied, VaultUnreachable...) and updates retried on conflict.
 * Shared by the provider (reads) and the local vault (admin writes).
 */
import { classifyKubeError, kubeErrorFacts } from "./kube-errors.js";
import { localKeySecret, parseStoredKey, type StoredKey } from "./local-key-format.js";
import type { LocalKeySecrets, SecretObject } from "./local-secrets.js";
import { KeyAccessError } from "./provider.js";

/** Thrown when a key to be created exists already (perhaps soft-deleted); `code` is 409. */
export class LocalKeyExistsError extends Error {
  override readonly name = "LocalKeyExistsError";
  readonly code = 409;
}

export class LocalKeyStore {
  constructor(
    readonly secrets: LocalKeySecrets,
    private readonly conflictRetries = 5,
  ) {}

  /** The Secret, or undefined when there is none. */
  async read(namespace: string, name: string): Promise<SecretObject | undefined> {
    try {
      return await this.secrets.read(namespace, name);
    } catch (error) {
      if (kubeErrorFacts(error).status === 404) return undefined;
      throw accessError(error, `local key ${namespace}/${name}`);
    }
  }

  async create(namespace: string, name: string, stored: StoredKey): Promise<void> {
    try {
      await this.secrets.create(namespace, localKeySecret(namespace, name, stored));
    } catch (error) {
      if (kubeErrorFacts(error).status === 409) {
        throw new LocalKeyExistsError(
          `local key ${namespace}/${name} already exists (perhaps soft-deleted: recover it instead)`,
        );
      }
      throw accessError(error, `local key ${namespace}/${name}`);
    }
  }

  /** Reads, changes and writes back the stored key, again on a conflict. Refuses a deleted key unless asked. */
  async update(
    namespace: string,
    name: string,
    change: (stored: StoredKey) => void,
    options: { includeDeleted?: boolean } = {},
  ): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      const secret = await this.read(namespace, name);
      if (!secret) throw new KeyAccessError("KeyNotFound", `local key ${namespace}/${name} was not found`);
      const stored = parseStoredKey(secret, namespace, name);
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
          localKeySecret(namespace, name, stored, secret.metadata?.resourceVersion),
        );
        return;
      } catch (error) {
        if (kubeErrorFacts(error).status === 409 && attempt < this.conflictRetries) continue;
        throw accessError(error, `local key ${namespace}/${name}`);
      }
    }
  }

  async remove(namespace: string, name: string): Promise<void> {
    try {
      await this.secrets.delete(namespace, name);
    } catch (error) {
      throw accessError(error, `local key ${namespace}/${name}`);
    }
  }
}

/** A Kubernetes API failure as the vault reason it amounts to, with a sentence naming `what`. */
export function accessError(error: unknown, what: string): KeyAccessError {
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
