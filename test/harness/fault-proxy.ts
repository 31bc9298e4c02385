/**
 * A fault-injecting HTTP proxy of our own, for the reliability suite (issue 11: "KMS faults
 * through a fault-injecting proxy").
 *
 * It listens on plain http://127.0.0.1:<random port> and forwards every request, as it is, to
 * one upstream HTTPS (or HTTP) server, authenticating upstream itself (a CA to trust, and
 * optionally a client certificate and key). Clients therefore talk to the proxy without TLS and
 * without credentials. Nothing in the proxy knows what the upstream is: today it sits between the
 * Local KMS provider and the harness's kube-apiserver (the Local provider keeps its KEKs in
 * Secrets, so every KMS call is an HTTP request to the API server: see `upstreamFromKubeConfig`
 * and `kubeConfigThrough`); pointed at Lowkey Vault (the Azure Key Vault emulator: its HTTPS
 * base URL and CA) it injects the same faults in front of the Azure provider, unchanged.
 *
 * Faults are chosen per request at runtime: with probability `rate` (0..1) a request is faulted,
 * its kind drawn from a weighted `mix`:
 *
 * - `throttle`: 429 Too Many Requests with `Retry-After: <retryAfterSeconds>`;
 * - `error500`, `error503`: a 500 / 503 with a small JSON body (503 also has a Retry-After);
 * - `timeout`: the request is held and never answered, until the client gives up (closes the
 *   connection), or for `holdMs` after which it is answered 504 Gateway Timeout;
 * - `slow`: the request waits `slowMs`, then is forwarded and answered normally;
 * - `late`: the request is forwarded at once (a write takes effect), and its answer is held back
 *   for `lateMs`: the client hears of its own write after whatever happened meanwhile;
 * - `reset`: the client's socket is destroyed without an answer (ECONNRESET / "socket hang up").
 *
 * `loss()` is total loss: every request is reset (`"reset"`), or held unanswered until the client
 * gives up (`"hold"`: a black hole, the vault that accepts connections and never answers), or the
 * proxy stops listening so connections are refused (`"refuse"`, ECONNREFUSED; it listens again
 * on the same port when healed). `heal()` passes everything through again. Every request and every fault is counted by
 * kind (`counts`). The random draws are seeded (`seed`), so a run can be replayed.
 */
import { randomInt } from "node:crypto";
import * as http from "node:http";
import * as https from "node:https";
import type { AddressInfo, Socket } from "node:net";
import * as k8s from "@kubernetes/client-node";

export type FaultKind = "throttle" | "error500" | "error503" | "timeout" | "slow" | "reset" | "late";
export const FAULT_KINDS: readonly FaultKind[] = [
  "throttle",
  "error500",
  "error503",
  "timeout",
  "slow",
  "reset",
  "late",
];

/** Relative weights of the fault kinds (missing or 0: never drawn). */
export type FaultMix = Partial<Record<FaultKind, number>>;

export interface FaultSettings {
  /** probability (0..1) that a request is faulted */
  rate: number;
  /** weights of the kinds a faulted request gets; default: every kind alike */
  mix?: FaultMix;
  /** the Retry-After of a 429 (and 503), seconds; default 1 */
  retryAfterSeconds?: number;
  /** `timeout`: answer 504 after this long; default: hold until the client gives up */
  holdMs?: number;
  /** `slow`: delay before forwarding; default 2000 */
  slowMs?: number;
  /** `late`: how long the upstream's answer is held back; default 2000 */
  lateMs?: number;
  /** only requests for which this is true may be faulted (default: all) */
  applies?: (method: string, path: string) => boolean;
  /** at most this many faults from these settings on (e.g. 1: one 429, then everything passes) */
  limit?: number;
}

export interface UpstreamOptions {
  /** the upstream's base URL, e.g. https://127.0.0.1:6443 */
  url: string;
  /** CA (PEM) the upstream's serving certificate is checked against */
  ca?: string | Buffer;
  /** client certificate and key (PEM) the proxy authenticates upstream with */
  cert?: string | Buffer;
  key?: string | Buffer;
  /** an Authorization header the proxy adds upstream (when the client sends none) */
  authorization?: string;
  /**
   * Send the client's Host header upstream (default: the upstream's own). Lowkey Vault (with
   * relaxed ports) then names the proxy in the key ids it answers, so that calls made with
   * those ids go through the proxy too.
   */
  preserveHost?: boolean;
}

export interface FaultProxyOptions {
  upstream: UpstreamOptions;
  /**
   * Listen with TLS (a certificate and key, PEM) instead of plain HTTP: for clients that insist
   * on https, as the Azure SDK does before it sends a bearer token. The client must trust the
   * certificate's CA (never turn verification off).
   */
  tls?: { cert: string | Buffer; key: string | Buffer };
  /** seed of the fault draws; default random (read it back from `seed`) */
  seed?: number;
}

export type LossMode = "reset" | "hold" | "refuse";

export interface FaultCounts {
  /** every request received (not counting connections refused while in `refuse` loss) */
  requests: number;
  /** requests forwarded upstream (including `slow` ones) */
  forwarded: number;
  /** faults injected, by kind (a request lost to `loss()` is counted as `loss`, whatever the mode) */
  faults: Record<FaultKind | "loss", number>;
  /** held requests (`timeout`, `loss("hold")`) the client gave up on before the proxy answered */
  clientGaveUp: number;
  /** upstream failures answered 502 (not injected: the upstream itself failed) */
  upstreamErrors: number;
}

const emptyCounts = (): FaultCounts => ({
  requests: 0,
  forwarded: 0,
  faults: { throttle: 0, error500: 0, error503: 0, timeout: 0, slow: 0, reset: 0, late: 0, loss: 0 },
  clientGaveUp: 0,
  upstreamErrors: 0,
});

/** mulberry32: a small seeded PRNG, so a run's draws can be replayed from its seed. */
function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "host",
]);

export class FaultProxy {
  readonly counts: FaultCounts = emptyCounts();
  readonly seed: number;
  private settings: FaultSettings = { rate: 0 };
  /** faults drawn since the settings were last set (for `limit`) */
  private drawn = 0;
  private lossMode: LossMode | undefined;
  private readonly random: () => number;
  private readonly server: http.Server | https.Server;
  private readonly sockets = new Set<Socket>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly upstreamURL: URL;
  private readonly agent: http.Agent;
  private readonly held = new Set<http.ServerResponse>();
  private port = 0;
  private listening = false;

  private constructor(private readonly options: FaultProxyOptions) {
    this.seed = options.seed ?? randomInt(2 ** 31);
    this.random = seededRandom(this.seed);
    this.upstreamURL = new URL(options.upstream.url);
    const tls = this.upstreamURL.protocol === "https:";
    this.agent = tls
      ? new https.Agent({
          keepAlive: true,
          ...(options.upstream.ca ? { ca: options.upstream.ca } : {}),
          ...(options.upstream.cert ? { cert: options.upstream.cert } : {}),
          ...(options.upstream.key ? { key: options.upstream.key } : {}),
        })
      : new http.Agent({ keepAlive: true });
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => this.handle(req, res);
    this.server = options.tls
      ? https.createServer({ cert: options.tls.cert, key: options.tls.key }, handler)
      : http.createServer(handler);
    this.server.on("connection", (socket: Socket) => {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
    });
  }

  /** Starts a proxy on 127.0.0.1 (a random free port) in front of `options.upstream`. */
  static async start(options: FaultProxyOptions): Promise<FaultProxy> {
    const proxy = new FaultProxy(options);
    await proxy.listen();
    return proxy;
  }

  /** http(s)://127.0.0.1:<port>: what clients use instead of the upstream's URL. */
  get url(): string {
    return `${this.options.tls ? "https" : "http"}://127.0.0.1:${this.port}`;
  }

  /** Injects faults from now on (rate 0: pass everything through). Ends a total loss. */
  async setFaults(settings: FaultSettings): Promise<void> {
    if (!(settings.rate >= 0 && settings.rate <= 1))
      throw new Error(`a fault rate is 0..1, got ${settings.rate}`);
    const weights = Object.values(settings.mix ?? {});
    if (settings.mix && !weights.some((w) => (w ?? 0) > 0))
      throw new Error("a fault mix needs a kind with weight > 0");
    this.settings = { ...settings };
    this.drawn = 0;
    await this.endLoss();
  }

  /** Answers 429 with `Retry-After: seconds` to every request, or to the next `limit` ones only. */
  throttle(seconds: number, limit?: number): Promise<void> {
    return this.setFaults({
      rate: 1,
      mix: { throttle: 1 },
      retryAfterSeconds: seconds,
      ...(limit === undefined ? {} : { limit }),
    });
  }

  /** Total loss: every request is reset, held (`"hold"`), or connections are refused (`"refuse"`). */
  async loss(mode: LossMode = "reset"): Promise<void> {
    const was = this.lossMode;
    this.lossMode = mode;
    if (mode === "refuse") await this.unlisten();
    else if (was === "refuse") await this.listen();
    // connections kept alive by clients (and requests held so far) would otherwise still be served
    this.held.clear();
    for (const socket of this.sockets) socket.destroy();
  }

  /** Everything passes through again. */
  async heal(): Promise<void> {
    await this.setFaults({ rate: 0 });
  }

  /** A copy of the counts, for figures. */
  snapshot(): FaultCounts {
    return { ...this.counts, faults: { ...this.counts.faults } };
  }

  resetCounts(): void {
    Object.assign(this.counts, emptyCounts());
  }

  async stop(): Promise<void> {
    this.held.clear();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const socket of this.sockets) socket.destroy();
    await this.unlisten();
    this.agent.destroy();
  }

  // ---- internals ----

  private listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once("error", reject);
      this.server.listen(this.port, "127.0.0.1", () => {
        this.server.off("error", reject);
        this.port = (this.server.address() as AddressInfo).port;
        this.listening = true;
        resolve();
      });
    });
  }

  private unlisten(): Promise<void> {
    if (!this.listening) return Promise.resolve();
    this.listening = false;
    return new Promise((resolve) => {
      this.server.close(() => resolve());
      for (const socket of this.sockets) socket.destroy();
    });
  }

  private async endLoss(): Promise<void> {
    const was = this.lossMode;
    this.lossMode = undefined;
    if (was === "refuse") await this.listen();
  }

  private draw(method: string, path: string): FaultKind | undefined {
    const s = this.settings;
    if (s.rate <= 0) return undefined;
    if (s.applies && !s.applies(method, path)) return undefined;
    if (s.limit !== undefined && this.drawn >= s.limit) return undefined;
    if (this.random() >= s.rate) return undefined;
    this.drawn++;
    const mix = s.mix ?? Object.fromEntries(FAULT_KINDS.map((k) => [k, 1]));
    const entries = FAULT_KINDS.map((k) => [k, Math.max(0, mix[k] ?? 0)] as const).filter(([, w]) => w > 0);
    const total = entries.reduce((sum, [, w]) => sum + w, 0);
    let pick = this.random() * total;
    for (const [kind, weight] of entries) {
      pick -= weight;
      if (pick < 0) return kind;
    }
    return entries.at(-1)![0];
  }

  private later(ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      fn();
    }, ms);
    this.timers.add(timer);
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse): void {
    this.counts.requests++;
    if (this.lossMode) {
      this.counts.faults.loss++;
      if (this.lossMode === "hold") this.hold(req, res, undefined);
      else req.socket.destroy();
      return;
    }
    const method = req.method ?? "GET";
    const path = req.url ?? "/";
    const kind = this.draw(method, path);
    if (kind) this.counts.faults[kind]++;
    const retryAfter = String(this.settings.retryAfterSeconds ?? 1);
    const answer = (status: number, headers: Record<string, string> = {}) => {
      const body = JSON.stringify({
        kind: "Status",
        code: status,
        message: `injected by the fault proxy: ${status}`,
      });
      res.writeHead(status, { "content-type": "application/json", ...headers });
      res.end(body);
    };
    switch (kind) {
      case "throttle":
        req.resume();
        answer(429, { "retry-after": retryAfter });
        return;
      case "error500":
        req.resume();
        answer(500);
        return;
      case "error503":
        req.resume();
        answer(503, { "retry-after": retryAfter });
        return;
      case "reset":
        req.socket.destroy();
        return;
      case "timeout":
        this.hold(req, res, this.settings.holdMs === undefined ? undefined : () => answer(504));
        return;
      case "slow":
        this.later(this.settings.slowMs ?? 2_000, () => this.forward(req, res));
        return;
      case "late":
        this.forward(req, res, this.settings.lateMs ?? 2_000);
        return;
      default:
        this.forward(req, res);
    }
  }

  /** Answers nothing (until `after`, if any, is called after holdMs); counts a client that gives up. */
  private hold(req: http.IncomingMessage, res: http.ServerResponse, after: (() => void) | undefined): void {
    req.resume();
    this.held.add(res);
    // closed while still held, and not by the proxy itself: the client gave up
    res.on("close", () => {
      if (this.held.delete(res)) this.counts.clientGaveUp++;
    });
    if (after) {
      this.later(this.settings.holdMs ?? 0, () => {
        if (!this.held.delete(res) || res.destroyed) return;
        after();
      });
    }
  }

  /** Forwards the request upstream; its answer starts back after `answerAfterMs` (the body still streams). */
  private forward(req: http.IncomingMessage, res: http.ServerResponse, answerAfterMs = 0): void {
    if (res.destroyed) return;
    this.counts.forwarded++;
    const up = this.upstreamURL;
    const headers: http.OutgoingHttpHeaders = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (!HOP_BY_HOP.has(name.toLowerCase()) && value !== undefined) headers[name] = value;
    }
    headers.host = this.options.upstream.preserveHost ? (req.headers.host ?? up.host) : up.host;
    if (this.options.upstream.authorization && !headers.authorization)
      headers.authorization = this.options.upstream.authorization;
    const basePath = up.pathname.replace(/\/+$/, "");
    const request = (up.protocol === "https:" ? https : http).request(
      {
        protocol: up.protocol,
        hostname: up.hostname,
        port: up.port,
        method: req.method,
        path: `${basePath}${req.url ?? "/"}`,
        headers,
        agent: this.agent,
      },
      (upstream) => {
        const out: http.OutgoingHttpHeaders = {};
        for (const [name, value] of Object.entries(upstream.headers)) {
          if (!HOP_BY_HOP.has(name.toLowerCase()) && value !== undefined) out[name] = value;
        }
        const answer = () => {
          if (res.destroyed) return upstream.destroy();
          res.writeHead(upstream.statusCode ?? 502, out);
          upstream.pipe(res);
        };
        if (answerAfterMs > 0) {
          upstream.pause();
          this.later(answerAfterMs, answer);
        } else answer();
      },
    );
    request.on("error", () => {
      this.counts.upstreamErrors++;
      if (!res.headersSent && !res.destroyed) {
        res.writeHead(502, { "content-type": "text/plain" });
        res.end("the fault proxy could not reach its upstream");
      } else res.destroy();
    });
    // the client gave up: stop the upstream call too
    res.on("close", () => {
      if (!res.writableFinished) request.destroy();
    });
    req.pipe(request);
  }
}

/** The upstream of a kubeconfig's current context: its server, CA and client certificate (or token). */
export async function upstreamFromKubeConfig(kc: k8s.KubeConfig): Promise<UpstreamOptions> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error("the kubeconfig has no current cluster");
  const opts: https.RequestOptions = {};
  await kc.applyToHTTPSOptions(opts);
  const auth = (opts.headers as Record<string, string> | undefined)?.Authorization;
  return {
    url: cluster.server,
    ...(opts.ca ? { ca: opts.ca as string | Buffer } : {}),
    ...(opts.cert ? { cert: opts.cert as string | Buffer } : {}),
    ...(opts.key ? { key: opts.key as string | Buffer } : {}),
    ...(auth ? { authorization: auth } : {}),
  };
}

/** A kubeconfig whose every request goes through the proxy, in plain HTTP and with no credentials. */
export function kubeConfigThrough(proxy: { url: string }): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions({
    // plain HTTP to the proxy: the client library insists on skipTLSVerify for an http:// server
    clusters: [{ name: "fault-proxy", server: proxy.url, skipTLSVerify: true }],
    users: [{ name: "through-proxy" }],
    contexts: [{ name: "fault-proxy", cluster: "fault-proxy", user: "through-proxy" }],
    currentContext: "fault-proxy",
  });
  return kc;
}
