import * as http from "node:http";
import * as https from "node:https";
import { type KubeConfig, Watch } from "@kubernetes/client-node";
import { ApiError } from "./errors.js";
import {
  type ApiCall,
  type ApiObserver,
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
 * The real `KubeClient`: plain JSON over HTTPS, authenticated by client-node's KubeConfig
 * (certificates, tokens, exec plugins), with the patch content type set explicitly. Watches use
 * client-node's `Watch`.
 */
export class HttpKubeClient implements KubeClient {
  private agent: http.Agent | undefined;
  private readonly timeoutMs: number;

  constructor(
    private readonly kc: KubeConfig,
    private readonly options: HttpKubeClientOptions = {},
  ) {
    this.timeoutMs = options.requestTimeoutMs ?? 30_000;
  }

  get<T extends KubeObject>(kind: ResourceKind, namespace: string, name: string): Promise<T> {
    return this.request<T>({
      method: "GET",
      path: objectPath(kind, namespace, name),
      call: { verb: "get", resource: kind.plural, namespace, name },
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
      call: { verb: "create", resource: kind.plural, namespace },
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
    const query: Query = { ...options };
    const controller = await new Watch(this.kc).watch(
      collectionPath(kind, namespace),
      query,
      (type, object) => onEvent({ type: type as WatchEvent["type"], object: object as KubeObject }),
      onDone,
    );
    return { stop: () => controller.abort() };
  }

  private async request<T>(spec: RequestSpec): Promise<T> {
    const cluster = this.kc.getCurrentCluster();
    if (!cluster) throw new Error("the KubeConfig has no current cluster");
    const url = new URL(cluster.server + spec.path);
    for (const [k, v] of Object.entries(spec.query ?? {})) {
      if (v !== undefined && v !== "") url.searchParams.set(k, String(v));
    }
    const opts: https.RequestOptions = { method: spec.method, headers: { Accept: "application/json" } };
    await this.kc.applyToHTTPSOptions(opts);
    // client-node builds a fresh agent per call; without a proxy, keep one keep-alive agent.
    if (url.protocol === "https:" && !cluster.proxyUrl) {
      this.agent ??= new https.Agent({
        keepAlive: true,
        ca: opts.ca,
        cert: opts.cert,
        key: opts.key,
        ...(opts.rejectUnauthorized !== undefined ? { rejectUnauthorized: opts.rejectUnauthorized } : {}),
        ...(opts.servername ? { servername: opts.servername } : {}),
      });
      opts.agent = this.agent;
    }
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
      const { code, text } = await send(url, opts, payload, this.timeoutMs);
      status = code;
      const parsed = text ? safeParse(text) : undefined;
      if (code < 200 || code >= 300) {
        const st = (parsed ?? {}) as { reason?: string; message?: string };
        throw new ApiError(
          code,
          st.reason ?? http.STATUS_CODES[code] ?? "Unknown",
          st.message ?? text,
          parsed,
        );
      }
      return parsed as T;
    } finally {
      report(status);
    }
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
): Promise<{ code: number; text: string }> {
  const transport = url.protocol === "http:" ? http : https;
  return new Promise((resolve, reject) => {
    const req = transport.request(url, opts, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({ code: res.statusCode ?? 0, text: Buffer.concat(chunks).toString("utf8") }),
      );
      res.on("error", reject);
    });
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`request timed out after ${timeoutMs} ms`)));
    req.on("error", reject);
    if (payload !== undefined) req.write(payload);
    req.end();
  });
}
