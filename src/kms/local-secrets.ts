/**
 * The Kubernetes Secrets the Local provider keeps its keys in, as the four calls it makes. Two
 * ways to make them: over our own `KubeClient` (the operator: no client-node in memory), or over
 * client-node's `CoreV1Api` (the agent, the CLI and tests), each call cancelled after a timeout.
 */
import type { CoreV1Api } from "@kubernetes/client-node";
import type { KubeClient, KubeObject, ResourceKind } from "../runtime/index.js";

/** A Secret as the Local provider reads and writes it. */
export interface SecretObject {
  apiVersion?: string;
  kind?: string;
  metadata?: {
    name?: string;
    namespace?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  type?: string;
  data?: Record<string, string>;
}

/**
 * Errors carry the HTTP status as a number in `code` or `statusCode`; a call the API server does
 * not answer in time fails with an error named TimeoutError or AbortError.
 */
export interface LocalKeySecrets {
  read(namespace: string, name: string): Promise<SecretObject>;
  create(namespace: string, body: SecretObject): Promise<unknown>;
  replace(namespace: string, name: string, body: SecretObject): Promise<unknown>;
  delete(namespace: string, name: string): Promise<void>;
}

const SECRETS: ResourceKind = { group: "", version: "v1", plural: "secrets", kind: "Secret" };

/** Over our `KubeClient`; its own per-request timeout (HttpKubeClient's requestTimeoutMs) bounds each call. */
export function secretsOverKubeClient(client: KubeClient): LocalKeySecrets {
  return {
    read: (namespace, name) => client.get<KubeObject>(SECRETS, namespace, name) as Promise<SecretObject>,
    create: (namespace, body) => client.create(SECRETS, namespace, body as KubeObject),
    replace: (namespace, name, body) => client.replace(SECRETS, namespace, name, body as KubeObject),
    delete: (namespace, name) => client.delete(SECRETS, namespace, name),
  };
}

export function isCoreV1Api(api: unknown): api is CoreV1Api {
  return typeof (api as { readNamespacedSecret?: unknown })?.readNamespacedSecret === "function";
}

/** Thrown when the API server did not answer in time. */
export class RequestTimeoutError extends Error {
  override readonly name = "TimeoutError";
  readonly code = "ETIMEDOUT";
}

/**
 * Over client-node's `CoreV1Api`, each call aborted (the request and its connection) if it has
 * not completed, body included, within `timeoutMs`. client-node is already loaded by whoever
 * made the `CoreV1Api`, so importing its middleware class here costs nothing.
 */
export function secretsOverCoreV1(core: CoreV1Api, timeoutMs: number): LocalKeySecrets {
  const abortable = async <T>(call: (options: object) => Promise<T>): Promise<T> => {
    const { Observable } = await import("@kubernetes/client-node");
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), timeoutMs);
    const middleware = {
      pre: (request: { setSignal(s: AbortSignal): void }) => {
        request.setSignal(controller.signal);
        return new Observable(Promise.resolve(request));
      },
      post: <R>(response: R) => new Observable(Promise.resolve(response)),
    };
    try {
      return await call({ middleware: [middleware], middlewareMergeStrategy: "append" });
    } catch (error) {
      if (controller.signal.aborted) {
        throw new RequestTimeoutError(`the Kubernetes API did not answer within ${timeoutMs} ms`, {
          cause: error,
        });
      }
      throw error;
    } finally {
      clearTimeout(timer);
    }
  };
  // biome-ignore lint/suspicious/noExplicitAny: client-node's per-call configuration type is generic over its middleware
  type Opts = any;
  return {
    read: (namespace, name) =>
      abortable((o) => core.readNamespacedSecret({ namespace, name }, o as Opts)) as Promise<SecretObject>,
    create: (namespace, body) =>
      abortable((o) => core.createNamespacedSecret({ namespace, body: body as Opts }, o as Opts)),
    replace: (namespace, name, body) =>
      abortable((o) => core.replaceNamespacedSecret({ namespace, name, body: body as Opts }, o as Opts)),
    delete: async (namespace, name) => {
      await abortable((o) => core.deleteNamespacedSecret({ namespace, name }, o as Opts));
    },
  };
}
