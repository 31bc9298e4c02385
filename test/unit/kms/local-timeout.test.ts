/**
 * R10: a KMS call of the Local provider that the API server never answers must fail (as
 * VaultUnreachable) after the provider's request timeout, not hang: a hung call would hold the
 * key's probe in flight forever, so the watchdog would never see the key again (neither its loss
 * nor its return).
 */
import * as http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalKeyProvider } from "../../../src/kms/local.js";
import { secretsOverKubeClient } from "../../../src/kms/local-secrets.js";
import { isKeyAccessError } from "../../../src/kms/provider.js";
import { HttpKubeClient } from "../../../src/runtime/http-kube-client.js";

let server: http.Server;
let url: string;
const sockets = new Set<Socket>();
let received = 0;

beforeAll(async () => {
  // an "API server" that reads every request and never answers
  server = http.createServer((req) => {
    received++;
    req.resume();
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise((resolve) => server.close(resolve));
});

function providerFor(options: { requestTimeoutMs?: number } = {}) {
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: "silent", server: url, skipTLSVerify: true }],
    users: [{ name: "nobody" }],
    contexts: [{ name: "silent", cluster: "silent", user: "nobody" }],
    currentContext: "silent",
  });
  return new LocalKeyProvider(kc.makeApiClient(k8s.CoreV1Api), options);
}

const ref = { provider: "Local" as const, namespace: "ns", keyName: "k" };

async function outcome(call: Promise<unknown>, withinMs: number) {
  const started = Date.now();
  const result = await Promise.race([
    call.then(
      () => ({ settled: "resolved" as const }),
      (error: unknown) => ({ settled: "rejected" as const, error }),
    ),
    new Promise<{ settled: "hung" }>((resolve) => setTimeout(() => resolve({ settled: "hung" }), withinMs)),
  ]);
  return { ...result, ms: Date.now() - started };
}

describe("R10 the Local provider's request timeout", () => {
  it("R10 a call the API server never answers fails as VaultUnreachable after the timeout, and the connection is dropped", async () => {
    const before = received;
    const open = sockets.size;
    const r = await outcome(providerFor({ requestTimeoutMs: 300 }).describe(ref), 3_000);
    expect(r.settled).toBe("rejected");
    expect(received).toBe(before + 1);
    const error = (r as { error?: unknown }).error;
    expect(isKeyAccessError(error) && error.reason).toBe("VaultUnreachable");
    expect((error as Error).message).toMatch(/did not answer within 300 ms/);
    expect(r.ms).toBeGreaterThanOrEqual(250);
    // the request was aborted, not left open on the server
    await expect.poll(() => sockets.size).toBeLessThanOrEqual(open);
  });

  it("R10 there is a timeout by default, and every port operation is bounded by it", async () => {
    expect(providerFor().requestTimeoutMs).toBe(LocalKeyProvider.DEFAULT_REQUEST_TIMEOUT_MS);
    expect(LocalKeyProvider.DEFAULT_REQUEST_TIMEOUT_MS).toBeGreaterThan(0);
    expect(LocalKeyProvider.DEFAULT_REQUEST_TIMEOUT_MS).toBeLessThanOrEqual(30_000);
    expect(() => providerFor({ requestTimeoutMs: 0 })).toThrow(/timeout/);
    const quick = providerFor({ requestTimeoutMs: 200 });
    for (const [name, call] of [
      ["describe", () => quick.describe(ref)],
      ["listVersions", () => quick.listVersions(ref)],
      ["wrap", () => quick.wrap(ref, Buffer.alloc(32))],
      ["unwrap", () => quick.unwrap({ ...ref, keyID: "local://ns/k/v1" }, Buffer.alloc(256))],
      ["rotateKey", () => quick.rotateKey("ns", "k", { size: 1024 })],
    ] as const) {
      const r = await outcome(call(), 2_000);
      expect(r.settled, name).toBe("rejected");
      const error = (r as { error?: unknown }).error;
      expect(isKeyAccessError(error) && error.reason, name).toBe("VaultUnreachable");
    }
  });
});

describe("R10 the operator's Local provider (over our own KubeClient, without client-node)", () => {
  const endpoint = (server: string) => ({
    getCurrentCluster: () => ({ server }),
    applyToHTTPSOptions: async () => {},
  });
  const overKubeClient = (server: string, requestTimeoutMs: number) =>
    new LocalKeyProvider(secretsOverKubeClient(new HttpKubeClient(endpoint(server), { requestTimeoutMs })));

  it("R10 a call the API server never answers fails as VaultUnreachable after the client's timeout", async () => {
    const r = await outcome(overKubeClient(url, 300).describe(ref), 3_000);
    expect(r.settled).toBe("rejected");
    const error = (r as { error?: unknown }).error;
    expect(isKeyAccessError(error) && error.reason).toBe("VaultUnreachable");
    expect((error as Error).message).toMatch(/did not answer within 300 ms/);
  });

  it("R10 the API server's answers are classified as they are over CoreV1Api: 404, 403, 429 with Retry-After", async () => {
    const answers: Array<[number, Record<string, string>]> = [
      [404, {}],
      [403, {}],
      [429, { "Retry-After": "7" }],
    ];
    const answering = http.createServer((req, res) => {
      req.resume();
      const [code, headers] = answers.shift()!;
      res.writeHead(code, { "Content-Type": "application/json", ...headers });
      res.end(JSON.stringify({ kind: "Status", code, reason: http.STATUS_CODES[code], message: "no" }));
    });
    await new Promise<void>((resolve) => answering.listen(0, "127.0.0.1", resolve));
    const provider = overKubeClient(`http://127.0.0.1:${(answering.address() as AddressInfo).port}`, 2_000);
    const reasons: unknown[] = [];
    for (let i = 0; i < 3; i++) {
      const error = await provider.describe(ref).catch((e: unknown) => e);
      reasons.push(isKeyAccessError(error) ? [error.reason, error.retryAfterMs] : error);
    }
    await new Promise((resolve) => answering.close(resolve));
    expect(reasons).toEqual([
      ["KeyNotFound", undefined],
      ["PermissionDenied", undefined],
      ["Throttled", 7_000],
    ]);
  });
});
