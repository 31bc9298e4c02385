import { existsSync, readFileSync } from "node:fs";
import type * as https from "node:https";
import { homedir } from "node:os";
import { dirname, isAbsolute, join, resolve } from "node:path";
import { parse } from "yaml";

/**
 * What `HttpKubeClient` needs to reach an API server: its address, and the TLS and credentials
 * of one request. client-node's `KubeConfig` has this shape too (tests and the CLI pass one);
 * the operator uses `KubeConnection`, which does not load client-node's generated API (about
 * 70 MiB of resident memory) unless a kubeconfig needs an exec or auth-provider plugin.
 */
export interface KubeEndpoint {
  getCurrentCluster(): { server: string; proxyUrl?: string | undefined } | null;
  applyToHTTPSOptions(opts: https.RequestOptions): Promise<void>;
}

const SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";
/** A bound ServiceAccount token is replaced by the kubelet well before it expires; read it again this often. */
const TOKEN_REREAD_MS = 60_000;

interface Credentials {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  token?: string;
  tokenFile?: string;
  insecureSkipTLSVerify?: boolean;
  tlsServerName?: string;
}

/** An API server address and credentials, from the pod's ServiceAccount or a kubeconfig file. */
export class KubeConnection implements KubeEndpoint {
  private token: { value: string; readAt: number } | undefined;

  private constructor(
    readonly server: string,
    private readonly creds: Credentials,
    /** where it came from, for logs and errors */
    readonly source: string,
  ) {}

  /**
   * `path` (a kubeconfig file) when given; else the pod's ServiceAccount when running in a
   * cluster; else `$KUBECONFIG` or `~/.kube/config`. A kubeconfig whose user runs an exec or
   * auth-provider plugin, sets a proxy, or a `$KUBECONFIG` list of several files, is handed
   * to client-node's `KubeConfig`, loaded only then.
   */
  static async load(path?: string, env: NodeJS.ProcessEnv = process.env): Promise<KubeEndpoint> {
    if (path) return KubeConnection.fromFile(path);
    const host = env.KUBERNETES_SERVICE_HOST;
    if (host && existsSync(join(SA_DIR, "token"))) {
      const port = env.KUBERNETES_SERVICE_PORT ?? "443";
      const h = host.includes(":") ? `[${host}]` : host;
      return new KubeConnection(
        `https://${h}:${port}`,
        { ca: readFileSync(join(SA_DIR, "ca.crt")), tokenFile: join(SA_DIR, "token") },
        "in-cluster ServiceAccount",
      );
    }
    const list = (env.KUBECONFIG ?? "").split(":").filter(Boolean);
    if (list.length > 1) return clientNodeConfig(undefined);
    return KubeConnection.fromFile(list[0] ?? join(homedir(), ".kube", "config"));
  }

  static async fromFile(path: string): Promise<KubeEndpoint> {
    let text: string;
    try {
      text = readFileSync(path, "utf8");
    } catch (error) {
      throw new Error(`cannot read the kubeconfig ${path}: ${(error as Error).message}`);
    }
    const parsed = KubeConnection.parse(text, dirname(resolve(path)), path);
    return parsed === "plugin" ? clientNodeConfig(path) : parsed;
  }

  /** A kubeconfig's current context, or "plugin" when only client-node can authenticate it. */
  static parse(text: string, baseDir: string, source: string): KubeConnection | "plugin" {
    const doc = (parse(text) ?? {}) as KubeconfigFile;
    const contextName = doc["current-context"];
    const named = <T>(
      list: Array<{ name: string } & T> | undefined,
      name: string | undefined,
      what: string,
    ) => {
      const found = list?.find((e) => e.name === name);
      if (!found) throw new Error(`the kubeconfig ${source} has no ${what} named "${name ?? ""}"`);
      return found;
    };
    const context = named(doc.contexts, contextName, "context (current-context)").context ?? {};
    const cluster = named(doc.clusters, context.cluster, "cluster").cluster ?? {};
    const user = context.user ? (named(doc.users, context.user, "user").user ?? {}) : {};
    if (user.exec || user["auth-provider"] || cluster["proxy-url"] || user.username) return "plugin";
    if (!cluster.server)
      throw new Error(`the kubeconfig ${source}: cluster "${context.cluster}" has no server`);
    const file = (p: string) => readFileSync(isAbsolute(p) ? p : join(baseDir, p));
    const pick = (data: string | undefined, path: string | undefined) =>
      data ? Buffer.from(data, "base64") : path ? file(path) : undefined;
    const creds: Credentials = {};
    const ca = pick(cluster["certificate-authority-data"], cluster["certificate-authority"]);
    if (ca) creds.ca = ca;
    const cert = pick(user["client-certificate-data"], user["client-certificate"]);
    if (cert) creds.cert = cert;
    const key = pick(user["client-key-data"], user["client-key"]);
    if (key) creds.key = key;
    if (user.token) creds.token = user.token;
    if (user.tokenFile)
      creds.tokenFile = isAbsolute(user.tokenFile) ? user.tokenFile : join(baseDir, user.tokenFile);
    if (cluster["insecure-skip-tls-verify"]) creds.insecureSkipTLSVerify = true;
    if (cluster["tls-server-name"]) creds.tlsServerName = cluster["tls-server-name"];
    return new KubeConnection(cluster.server.replace(/\/+$/, ""), creds, source);
  }

  getCurrentCluster(): { server: string } {
    return { server: this.server };
  }

  async applyToHTTPSOptions(opts: https.RequestOptions): Promise<void> {
    const c = this.creds;
    if (c.ca) opts.ca = c.ca;
    if (c.cert) opts.cert = c.cert;
    if (c.key) opts.key = c.key;
    if (c.insecureSkipTLSVerify) opts.rejectUnauthorized = false;
    if (c.tlsServerName) opts.servername = c.tlsServerName;
    const token = this.bearerToken();
    if (token)
      opts.headers = { ...(opts.headers as Record<string, string>), Authorization: `Bearer ${token}` };
  }

  private bearerToken(): string | undefined {
    if (!this.creds.tokenFile) return this.creds.token;
    const now = Date.now();
    if (!this.token || now - this.token.readAt > TOKEN_REREAD_MS) {
      // read again, not cached for ever: the kubelet swaps a projected token's symlink for a new token
      this.token = { value: readFileSync(this.creds.tokenFile, "utf8").trim(), readAt: now };
    }
    return this.token.value;
  }
}

async function clientNodeConfig(path: string | undefined): Promise<KubeEndpoint> {
  const { KubeConfig } = await import("@kubernetes/client-node");
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromDefault();
  return kc;
}

interface KubeconfigFile {
  "current-context"?: string;
  contexts?: Array<{ name: string; context?: { cluster?: string; user?: string } }>;
  clusters?: Array<{
    name: string;
    cluster?: {
      server?: string;
      "certificate-authority"?: string;
      "certificate-authority-data"?: string;
      "insecure-skip-tls-verify"?: boolean;
      "tls-server-name"?: string;
      "proxy-url"?: string;
    };
  }>;
  users?: Array<{
    name: string;
    user?: {
      "client-certificate"?: string;
      "client-certificate-data"?: string;
      "client-key"?: string;
      "client-key-data"?: string;
      token?: string;
      tokenFile?: string;
      username?: string;
      exec?: unknown;
      "auth-provider"?: unknown;
    };
  }>;
}
