import * as http from "node:http";
import * as https from "node:https";
import { ApiError } from "./errors.js";
import {
  type ApiCall,
  type ApiObserver,
  type ApiResourceList,
  type KubeClient,
  type ListOptions,
  type ObjectList,
  type PatchOptions,
  PatchType,
  type WatchEvent,
  type WatchHandle,
  type WatchOptions,
  type WriteOptions,
} from "./kube-client.js";
import type { KubeEndpoint } from "./kube-connection.js";
import { collectionPath, type KubeObject, objectPath, type ResourceKind } from "./resource.js";

type Query = Record<string, string | number | boolean | undefined>;

interface RequestSpec {
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  path: string;
  query?: Query;
  body?: unknown;
  contentType?: string;
  call: Omit<ApiCall, "code">;
}

export interface HttpKubeClientOptions {
  /** Told about every request, with its status code. */
  observer?: ApiObserver;
  /** Per-request timeout for non-watch calls. Default 30 s. */
  requestTimeoutMs?: number;
}

/**
 * The real `KubeClient`: plain JSON over HTTPS with one keep-alive agent, authenticated by a
 * `KubeEndpoint` (our `KubeConnection`, or client-node's `KubeConfig`), with the patch content
 * type set explicitly. A watch is one streamed GET read line by line.
 */
export class HttpKubeClient implements KubeClient {
  private agent: http.Agent | undefined;
  private readonly timeoutMs: number;

  constructor(
    private readonly kc: KubeEndpoint,
    private readonly options: HttpKubeClientOptions = {},
  ) {
    this.timeoutMs = options.requestTimeoutMs ?? 30_000;
  }

  get<T extends KubeObject>(
    kind: ResourceKind,
    namespace: string,
    name: string,
    options: { subresource?: string } = {},
  ): Promise<T> {
    return this.request<T>({
      method: "GET",
      path: objectPath(kind, namespace, name, options.subresource),
      call: { verb: "get", resource: kind.plural, namespace, name, ...sub(options) },
    });
  }

  discover(apiVersion: string): Promise<ApiResourceList> {
    const path = apiVersion.includes("/") ? `/apis/${apiVersion}` : `/api/${apiVersion}`;
    return this.request<ApiResourceList>({
      method: "GET",
      path,
      call: { verb: "discover", resource: apiVersion },
    });
  }

  list<T extends KubeObject>(kind: ResourceKind, namespace?: string, options: ListOptions = {}) {
    return this.request<ObjectList<T>>({
      method: "GET",
      path: collectionPath(kind, namespace),
      query: { ...options },
      call: { verb: "list", resource: kind.plural, ...(namespace ? { namespace } : {}) },
    });
  }

  create<T extends KubeObject>(kind: ResourceKind, namespace: string, body: T): Promise<T> {
    return this.request<T>({
      method: "POST",
      path: collectionPath(kind, namespace),
      body,
      call: {
        verb: "create",
        resource: kind.plural,
        namespace,
        ...(body.metadata?.name ? { name: body.metadata.name } : {}),
      },
    });
  }

  replace<T extends KubeObject>(
    kind: ResourceKind,
    namespace: string,
    name: string,
    body: T,
    options: WriteOptions = {},
  ): Promise<T> {
    return this.request<T>({
      method: "PUT",
      path: objectPath(kind, namespace, name, options.subresource),
      query: { fieldManager: options.fieldManager },
      body,
      call: { verb: "update", resource: kind.plural, namespace, name, ...sub(options) },
    });
  }

  patch<T extends KubeObject>(
    kind: ResourceKind,
    namespace: string,
    name: string,
    patch: unknown,
    options: PatchOptions = {},
  ): Promise<T> {
    return this.request<T>({
      method: "PATCH",
      path: objectPath(kind, namespace, name, options.subresource),
      query: { fieldManager: options.fieldManager, force: options.force },
      body: patch,
      contentType: options.type ?? PatchType.Merge,
      call: { verb: "patch", resource: kind.plural, namespace, name, ...sub(options) },
    });
  }

  async delete(
    kind: ResourceKind,
    namespace: string,
    name: string,
    options: {
      propagationPolicy?: "Foreground" | "Background" | "Orphan";
      preconditions?: { uid?: string };
    } = {},
  ): Promise<void> {
    await this.request<unknown>({
      method: "DELETE",
      path: objectPath(kind, namespace, name),
      body: { apiVersion: "v1", kind: "DeleteOptions", ...options },
      call: { verb: "delete", resource: kind.plural, namespace, name },
    });
  }

  async watch(
    kind: ResourceKind,
    namespace: string | undefined,
    options: WatchOptions,
    onEvent: (event: WatchEvent) => void,
    onDone: (err: unknown) => void,
  ): Promise<WatchHandle> {
    const { url, opts } = await this.prepare("GET", collectionPath(kind, namespace), {
      ...options,
      watch: true,
    });
    return streamWatch(url, opts, onEvent, onDone);
  }

  private async prepare(method: RequestSpec["method"], path: string, query: Query = {}) {
    const cluster = this.kc.getCurrentCluster();
    if (!cluster) throw new Error("the KubeConfig has no current cluster");
    const url = new URL(cluster.server + path);
    for (const [k, v] of Object.entries(query)) {
      if (v !== undefined && v !== "") url.searchParams.set(k, String(v));
    }
    const opts: https.RequestOptions = { method, headers: { Accept: "application/json" } };
    await this.kc.applyToHTTPSOptions(opts);
    // one keep-alive agent for every call and watch (a proxy is client-node's to handle)
    if (url.protocol === "https:" && !cluster.proxyUrl) {
      this.agent ??= new OneServerAgent({
        keepAlive: true,
        ca: opts.ca,
        cert: opts.cert,
        key: opts.key,
        ...(opts.rejectUnauthorized !== undefined ? { rejectUnauthorized: opts.rejectUnauthorized } : {}),
        ...(opts.servername ? { servername: opts.servername } : {}),
      });
      opts.agent = this.agent;
    }
    return { url, opts };
  }

  private async request<T>(spec: RequestSpec): Promise<T> {
    const { url, opts } = await this.prepare(spec.method, spec.path, spec.query);
    const payload = spec.body === undefined ? undefined : JSON.stringify(spec.body);
    if (payload !== undefined) {
      opts.headers = {
        ...opts.headers,
        "Content-Type": spec.contentType ?? "application/json",
        "Content-Length": Buffer.byteLength(payload),
      };
    }
    const report = (code: number) => this.options.observer?.({ ...spec.call, code });
    let status = 0;
    try {
      const { code, text, retryAfter } = await send(url, opts, payload, this.timeoutMs);
      status = code;
      const parsed = text ? safeParse(text) : undefined;
      if (code < 200 || code >= 300) {
        const st = (parsed ?? {}) as { reason?: string; message?: string };
        throw new ApiError(
          code,
          st.reason ?? http.STATUS_CODES[code] ?? "Unknown",
          st.message ?? text,
          parsed,
          retryAfter,
          spec.call,
        );
      }
      return parsed as T;
    } finally {
      report(status);
    }
  }
}

/**
 * The agent of one API server and one set of credentials. Node names an agent's socket pools by
 * every TLS option of a request, the CA, certificate and key included: a string of several KB
 * built for every request. This agent has one pool, so its name is the address alone.
 */
class OneServerAgent extends https.Agent {
  override getName(options: https.RequestOptions = {}): string {
    return `${options.host ?? ""}:${options.port ?? ""}:${options.servername ?? ""}`;
  }
}

function sub(options: WriteOptions): { subresource?: string } {
  return options.subresource ? { subresource: options.subresource } : {};
}

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function send(
  url: URL,
  opts: https.RequestOptions,
  payload: string | undefined,
  timeoutMs: number,
): Promise<{ code: number; text: string; retryAfter?: string }> {
  const transport = url.protocol === "http:" ? http : https;
  return new Promise((resolve, reject) => {
    const req = transport.request(url, opts, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const retryAfter = res.headers["retry-after"];
        resolve({
          code: res.statusCode ?? 0,
          text: Buffer.concat(chunks).toString("utf8"),
          ...(retryAfter ? { retryAfter } : {}),
        });
      });
      res.on("error", reject);
    });
    req.setTimeout(timeoutMs, () =>
      req.destroy(new RequestTimedOut(`the API server did not answer within ${timeoutMs} ms`)),
    );
    req.on("error", reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}

/** A request the API server did not answer in time (classified as unreachable, like ETIMEDOUT). */
class RequestTimedOut extends Error {
  override readonly name = "TimeoutError";
  readonly code = "ETIMEDOUT";
}

/** Named so the informer tells a watch it stopped from one that failed. */
class WatchStopped extends Error {
  override readonly name = "AbortError";
}

/**
 * One watch: resolves with its handle once the API server answers 200 (rejects with the
 * ApiError of any other answer, e.g. 410 Gone), then hands each line's event to `onEvent`, and
 * calls `onDone` once: null when the server ends the stream, the error when it breaks, an
 * AbortError after `stop()`.
 */
function streamWatch(
  url: URL,
  opts: https.RequestOptions,
  onEvent: (event: WatchEvent) => void,
  onDone: (err: unknown) => void,
): Promise<WatchHandle> {
  const transport = url.protocol === "http:" ? http : https;
  return new Promise((resolve, reject) => {
    let started = false;
    let done = false;
    const finish = (err: unknown) => {
      if (done) return;
      done = true;
      onDone(err ?? null);
    };
    const req = transport.request(url, opts, (res) => {
      const code = res.statusCode ?? 0;
      if (code !== 200) {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          const st = (safeParse(text) ?? {}) as { reason?: string; message?: string };
          reject(new ApiError(code, st.reason ?? http.STATUS_CODES[code] ?? "Unknown", st.message ?? text));
        });
        return;
      }
      started = true;
      resolve({
        stop: () => {
          finish(new WatchStopped("watch stopped"));
          req.destroy();
        },
      });
      res.setEncoding("utf8");
      let pending = "";
      res.on("data", (chunk: string) => {
        pending += chunk;
        for (let nl = pending.indexOf("\n"); nl >= 0; nl = pending.indexOf("\n")) {
          const line = pending.slice(0, nl).trim();
          pending = pending.slice(nl + 1);
          if (!line) continue;
          const event = safeParse(line) as WatchEvent | undefined;
          if (!event?.type) {
            req.destroy(new Error(`the watch sent a line that is not an event: ${line.slice(0, 80)}`));
            return;
          }
          onEvent(event);
        }
      });
      res.on("end", () => finish(null));
      res.on("error", finish);
      res.on("aborted", () => finish(new Error("the watch stream was cut")));
    });
    req.on("error", (err) => (started ? finish(err) : reject(err)));
    req.end();
  });
}
