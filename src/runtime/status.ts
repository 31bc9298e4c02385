import { retryOnConflict } from "./conflict.js";
import { clone, deepEqual } from "./deep-equal.js";
import { isConflict } from "./errors.js";
import type { KubeClient } from "./kube-client.js";
import { apiVersionOf, type KubeObject, type ResourceKind } from "./resource.js";

export interface StatusWriteResult<T> {
  /** False when the status was already as wanted and nothing was sent. */
  written: boolean;
  /** The object as the server returned it (or the input, when nothing was written). */
  object: T;
}

/** What `StatusWriter.write` did: written (or already so), or refused by a 409 with the newer object. */
export type StatusWriteOutcome<T> =
  | (StatusWriteResult<T> & { conflict?: false })
  | {
      conflict: true;
      written: false;
      /** the object as the API server holds it now (re-read after the 409) */
      object: T;
    };

export interface StatusWriterOptions {
  fieldManager?: string;
  maxConflictRetries?: number;
}

/**
 * Writes `.status` through the status subresource, only when it changed. Writes are PUTs carrying
 * the read's resourceVersion; on 409 Conflict the object is re-read and the mutation applied
 * again to the fresh status (so a mutation must be a function of the status it is given).
 */
export class StatusWriter {
  constructor(
    private readonly client: KubeClient,
    private readonly options: StatusWriterOptions = {},
  ) {}

  /**
   * Applies `mutate` to a copy of `current.status` (it may edit in place or return a new
   * status); writes if the result differs from the status it started from.
   */
  async mutate<T extends KubeObject, S = Record<string, unknown>>(
    kind: ResourceKind,
    current: T,
    // biome-ignore lint/suspicious/noConfusingVoidType: a mutation may edit in place and return nothing
    mutate: (status: S, object: T) => S | undefined | void,
  ): Promise<StatusWriteResult<T>> {
    const namespace = current.metadata?.namespace ?? "";
    const name = current.metadata?.name ?? "";
    let base = current;
    return retryOnConflict(async (attempt) => {
      if (attempt > 0) base = await this.client.get<T>(kind, namespace, name);
      const draft = (clone(base.status) ?? {}) as S;
      const next = mutate(draft, base) ?? draft;
      if (deepEqual(base.status ?? {}, next)) return { written: false, object: base };
      const body = { apiVersion: apiVersionOf(kind), kind: kind.kind, ...base, status: next } as T;
      const object = await this.client.replace<T>(kind, namespace, name, body, {
        subresource: "status",
        ...(this.options.fieldManager ? { fieldManager: this.options.fieldManager } : {}),
      });
      return { written: true, object };
    }, this.options.maxConflictRetries ?? 5);
  }

  /**
   * Sets `.status` to `status` (a status decided from `current`) unless it already is exactly
   * that. On 409 Conflict nothing is retried: the status was decided from an object that is no
   * longer the latest, so the object is re-read and returned with `conflict: true` for the
   * caller to decide again from it (observe and plan again) instead of overwriting.
   */
  async write<T extends KubeObject, S>(
    kind: ResourceKind,
    current: T,
    status: S,
  ): Promise<StatusWriteOutcome<T>> {
    const namespace = current.metadata?.namespace ?? "";
    const name = current.metadata?.name ?? "";
    if (deepEqual(current.status ?? {}, status ?? {})) return { written: false, object: current };
    try {
      const body = {
        apiVersion: apiVersionOf(kind),
        kind: kind.kind,
        ...current,
        status: clone(status),
      } as T;
      const object = await this.client.replace<T>(kind, namespace, name, body, {
        subresource: "status",
        ...(this.options.fieldManager ? { fieldManager: this.options.fieldManager } : {}),
      });
      return { written: true, object };
    } catch (error) {
      if (!isConflict(error)) throw error;
      return { conflict: true, written: false, object: await this.client.get<T>(kind, namespace, name) };
    }
  }

  /** Sets `.status` to `status` unless it already is exactly that. */
  set<T extends KubeObject, S>(kind: ResourceKind, current: T, status: S): Promise<StatusWriteResult<T>> {
    return this.mutate<T, S>(kind, current, () => clone(status));
  }
}
