/**
 * The fault-injecting proxy (test/harness/fault-proxy.ts) in front of the harness's real
 * kube-apiserver: each kind of fault is seen by real clients (raw fetch, the Kubernetes client,
 * and the Local KMS provider) as intended, and with rate 0 everything passes through untouched.
 */
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kubeErrorFacts } from "../../../src/kms/kube-errors.js";
import { LocalKeyProvider } from "../../../src/kms/local.js";
import { isKeyAccessError, type KeyReference } from "../../../src/kms/provider.js";
import { FaultProxy, kubeConfigThrough, upstreamFromKubeConfig } from "../../harness/fault-proxy.js";
import { createTestNamespace, testKubeConfig } from "../../harness/kube.js";

let proxy: FaultProxy;
let ns: string;
let direct: k8s.CoreV1Api;
let proxied: k8s.CoreV1Api;
let local: LocalKeyProvider;
const KEY = "proxied-key";
let ref: KeyReference;

beforeAll(async () => {
  const admin = testKubeConfig();
  direct = admin.makeApiClient(k8s.CoreV1Api);
  ns = await createTestNamespace(admin, "fault-proxy");
  proxy = await FaultProxy.start({ upstream: await upstreamFromKubeConfig(admin), seed: 20240611 });
  const through = kubeConfigThrough(proxy);
  proxied = through.makeApiClient(k8s.CoreV1Api);
  local = new LocalKeyProvider(proxied);
  await new LocalKeyProvider(direct).createKey(ns, KEY, { size: 2048 });
  ref = { provider: "Local", namespace: ns, keyName: KEY };
});

afterAll(async () => {
  await proxy?.stop();
});

/** A raw GET of the namespace through the proxy, with a client-side timeout. */
async function rawGet(timeoutMs = 15_000) {
  return fetch(`${proxy.url}/api/v1/namespaces/${ns}`, { signal: AbortSignal.timeout(timeoutMs) });
}

/** What a real client's failure looks like: the Kubernetes client's error, read as the Local provider reads it. */
async function failureOf(call: () => Promise<unknown>) {
  try {
    await call();
  } catch (error) {
    return { error, facts: kubeErrorFacts(error) };
  }
  throw new Error("the call was expected to fail");
}

describe("the fault proxy in front of the real API server", () => {
  it("rate 0: every request passes through, credentials added upstream; the Local provider works through it", async () => {
    await proxy.heal();
    proxy.resetCounts();
    const res = await rawGet();
    expect(res.status).toBe(200);
    expect(((await res.json()) as { metadata: { name: string } }).metadata.name).toBe(ns);
    const read = await proxied.readNamespace({ name: ns });
    expect(read.metadata?.name).toBe(ns);
    // writes (with a body) pass too
    await proxied.createNamespacedConfigMap({
      namespace: ns,
      body: { metadata: { name: "through-proxy" }, data: { a: "b" } },
    });
    expect((await direct.readNamespacedConfigMap({ namespace: ns, name: "through-proxy" })).data).toEqual({
      a: "b",
    });
    // a real KMS round trip of the Local provider, every call through the proxy
    const probe = Buffer.alloc(32, 7);
    const wrapped = await local.wrap(ref, probe);
    expect(await local.unwrap({ ...ref, keyID: wrapped.keyID }, wrapped.wrapped)).toEqual(probe);
    const c = proxy.snapshot();
    expect(c.requests).toBe(5);
    expect(c.forwarded).toBe(5);
    expect(Object.values(c.faults).reduce((a, b) => a + b, 0)).toBe(0);
  });

  it("throttle: a 429 with Retry-After reaches the client, and the Local provider reports Throttled with the wait", async () => {
    await proxy.setFaults({ rate: 1, mix: { throttle: 1 }, retryAfterSeconds: 7 });
    proxy.resetCounts();
    const res = await rawGet();
    expect(res.status).toBe(429);
    expect(res.headers.get("retry-after")).toBe("7");
    const { facts } = await failureOf(() => proxied.readNamespace({ name: ns }));
    expect(facts).toMatchObject({ status: 429, retryAfterMs: 7_000 });
    const kms = await failureOf(() => local.describe(ref));
    expect(isKeyAccessError(kms.error) && kms.error.reason).toBe("Throttled");
    expect(isKeyAccessError(kms.error) && kms.error.retryAfterMs).toBe(7_000);
    expect(proxy.snapshot()).toMatchObject({ requests: 3, forwarded: 0, faults: { throttle: 3 } });
  });

  it("error500 and error503: the status reaches the client; the Local provider reports VaultUnreachable", async () => {
    for (const [kind, status] of [
      ["error500", 500],
      ["error503", 503],
    ] as const) {
      await proxy.setFaults({ rate: 1, mix: { [kind]: 1 } });
      proxy.resetCounts();
      expect((await rawGet()).status).toBe(status);
      const { facts } = await failureOf(() => proxied.readNamespace({ name: ns }));
      expect(facts.status).toBe(status);
      const kms = await failureOf(() => local.describe(ref));
      expect(isKeyAccessError(kms.error) && kms.error.reason).toBe("VaultUnreachable");
      expect(proxy.snapshot().faults[kind]).toBe(3);
    }
  });

  it("reset: the connection is dropped without an answer, a network failure to the client", async () => {
    await proxy.setFaults({ rate: 1, mix: { reset: 1 } });
    proxy.resetCounts();
    await expect(rawGet()).rejects.toThrow();
    const { facts } = await failureOf(() => proxied.readNamespace({ name: ns }));
    expect(facts.status).toBeUndefined();
    expect(facts.network).toBe(true);
    const kms = await failureOf(() => local.describe(ref));
    expect(isKeyAccessError(kms.error) && kms.error.reason).toBe("VaultUnreachable");
    expect(proxy.snapshot()).toMatchObject({ forwarded: 0, faults: { reset: 3 } });
  });

  it("timeout: a held request is never answered until the client gives up; with holdMs it gets a 504", async () => {
    await proxy.setFaults({ rate: 1, mix: { timeout: 1 } });
    proxy.resetCounts();
    const started = Date.now();
    const gaveUp = await rawGet(1_500).then(
      () => "answered",
      (error: Error) => error.name,
    );
    expect(gaveUp).toBe("TimeoutError");
    expect(Date.now() - started).toBeGreaterThanOrEqual(1_400);
    await expect.poll(() => proxy.counts.clientGaveUp).toBe(1);

    await proxy.setFaults({ rate: 1, mix: { timeout: 1 }, holdMs: 1_000 });
    const t0 = Date.now();
    const res = await rawGet();
    expect(res.status).toBe(504);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(950);
    expect(proxy.snapshot()).toMatchObject({ forwarded: 0, clientGaveUp: 1, faults: { timeout: 2 } });
  });

  it("slow: the answer is right, only late", async () => {
    await proxy.setFaults({ rate: 1, mix: { slow: 1 }, slowMs: 1_200 });
    proxy.resetCounts();
    const t0 = Date.now();
    const read = await proxied.readNamespace({ name: ns });
    expect(read.metadata?.name).toBe(ns);
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1_150);
    expect(proxy.snapshot()).toMatchObject({ requests: 1, forwarded: 1, faults: { slow: 1 } });
  });

  it("late: the write takes effect at once; its own client hears of it only after lateMs", async () => {
    await proxy.setFaults({ rate: 1, mix: { late: 1 }, lateMs: 1_500 });
    proxy.resetCounts();
    const name = "late-write";
    const t0 = Date.now();
    const answered = proxied.createNamespacedConfigMap({
      namespace: ns,
      body: { metadata: { name }, data: { written: "yes" } },
    });
    // read past the proxy: the ConfigMap is there while its writer still waits for the answer
    await expect
      .poll(() =>
        direct.readNamespacedConfigMap({ namespace: ns, name }).then(
          (c) => c.data?.written,
          () => "absent",
        ),
      )
      .toBe("yes");
    expect(Date.now() - t0).toBeLessThan(1_400);
    const created = await answered;
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1_450);
    expect(created.data?.written).toBe("yes");
    expect(proxy.snapshot()).toMatchObject({ requests: 1, forwarded: 1, faults: { late: 1 } });
    await proxy.heal();
  });

  it("total loss: every request reset, held (a black hole), or connections refused; healing brings everything back on the same URL", async () => {
    const url = proxy.url;
    await proxy.heal();
    // a kept-alive connection is open before the loss: it must not keep working
    expect((await rawGet()).status).toBe(200);
    await proxy.loss("reset");
    proxy.resetCounts();
    for (let i = 0; i < 3; i++) await expect(rawGet()).rejects.toThrow();
    // (a request on a connection already closed by the loss fails before the proxy sees it)
    const lost = proxy.snapshot();
    expect(lost.requests).toBeGreaterThan(0);
    expect(lost).toMatchObject({ forwarded: 0, faults: { loss: lost.requests } });

    await proxy.loss("hold");
    const gaveUp = await rawGet(1_000).then(
      () => "answered",
      (e: Error) => e.name,
    );
    expect(gaveUp).toBe("TimeoutError");
    await expect.poll(() => proxy.counts.clientGaveUp).toBe(1);
    expect(proxy.snapshot()).toMatchObject({ forwarded: 0, faults: { loss: lost.requests + 1 } });

    await proxy.loss("refuse");
    const { facts, error } = await failureOf(() => proxied.readNamespace({ name: ns }));
    expect(facts.network).toBe(true);
    expect(JSON.stringify(error, Object.getOwnPropertyNames(error))).toMatch(/ECONNREFUSED/);
    expect(proxy.snapshot().requests).toBe(lost.requests + 1);

    await proxy.heal();
    expect(proxy.url).toBe(url);
    expect((await proxied.readNamespace({ name: ns })).metadata?.name).toBe(ns);
    expect(proxy.snapshot().forwarded).toBe(1);
  });

  it("a 30% mixed rate faults about 30% of requests, each kind drawn, and the rest pass", async () => {
    await proxy.setFaults({
      rate: 0.3,
      mix: { throttle: 1, error500: 1, error503: 1, reset: 1, slow: 1, timeout: 1 },
      holdMs: 200,
      slowMs: 50,
    });
    proxy.resetCounts();
    const outcomes: Record<string, number> = {};
    for (let i = 0; i < 300; i++) {
      const outcome = await rawGet().then(
        (r) => String(r.status),
        () => "network",
      );
      outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
    }
    const c = proxy.snapshot();
    const faulted = Object.values(c.faults).reduce((a, b) => a + b, 0);
    console.log(`fault proxy, 300 requests at 30%: seed ${proxy.seed}`, c, outcomes);
    expect(c.requests).toBe(300);
    // the draws are seeded: these bounds are about 4.5 standard deviations wide
    expect(faulted).toBeGreaterThanOrEqual(55);
    expect(faulted).toBeLessThanOrEqual(125);
    for (const kind of ["throttle", "error500", "error503", "reset", "slow", "timeout"] as const)
      expect(c.faults[kind], kind).toBeGreaterThan(0);
    // what the client saw matches what was injected: slow ones are answered normally
    expect(outcomes["200"]).toBe(300 - faulted + c.faults.slow);
    expect(outcomes["429"]).toBe(c.faults.throttle);
    expect(outcomes["500"]).toBe(c.faults.error500);
    expect(outcomes["503"]).toBe(c.faults.error503);
    expect(outcomes["504"]).toBe(c.faults.timeout);
    expect(outcomes.network).toBe(c.faults.reset);
    await proxy.heal();
  });
});
