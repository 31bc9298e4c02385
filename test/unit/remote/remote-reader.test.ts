import { describe, expect, it } from "vitest";
import { clusterSettings } from "../../../src/config.js";
import { Metrics } from "../../../src/observability/metrics.js";
import { clusterSecretName, endpointFromSecret } from "../../../src/remote/cluster-secret.js";
import { failure, RemoteClusters } from "../../../src/remote/remote-reader.js";
import { ApiError, type KubeClient, type KubeObject } from "../../../src/runtime/index.js";

const kubeconfig = (server: string) =>
  Buffer.from(
    [
      "apiVersion: v1",
      "kind: Config",
      "clusters:",
      "- name: c",
      "  cluster:",
      `    server: ${server}`,
      "users:",
      "- name: u",
      "  user:",
      "    token: t0ken",
      "contexts:",
      "- name: c",
      "  context: {cluster: c, user: u}",
      "current-context: c",
    ].join("\n"),
  ).toString("base64");

const secret = (value: string | undefined, resourceVersion = "1") =>
  ({
    metadata: { name: "west-kubeconfig", namespace: "tde-system", resourceVersion },
    data: value ? { value } : {},
  }) as KubeObject;

/** A KubeClient answering `get` only: the reader never calls anything else. */
function client(get: (kind: string, ns: string, name: string) => Promise<KubeObject>): KubeClient {
  return {
    get: (kind: { kind: string }, ns: string, name: string) => get(kind.kind, ns, name),
  } as unknown as KubeClient;
}

function reader(o: {
  secret?: KubeObject;
  remote: (kind: string, ns: string, name: string) => Promise<KubeObject>;
}) {
  let now = 1_000_000;
  const calls = { local: 0, remote: 0, clients: [] as string[] };
  const metrics = new Metrics({ defaultMetrics: false });
  const r = new RemoteClusters({
    local: client(async () => {
      calls.local++;
      if (!o.secret) throw new ApiError(404, "NotFound", "secrets not found");
      return o.secret;
    }),
    operatorNamespace: "tde-system",
    ttlMs: 1_000,
    metrics,
    now: () => now,
    clientFor: (endpoint) => {
      calls.clients.push(endpoint.getCurrentCluster()?.server ?? "");
      return client(async (kind, ns, name) => {
        calls.remote++;
        return o.remote(kind, ns, name);
      });
    },
  });
  const up = async () =>
    (await metrics.registry.getSingleMetricAsString("tde_remote_cluster_up")).split("\n").pop();
  return { r, calls, up, advance: (ms: number) => (now += ms), metrics };
}

const db = { metadata: { name: "orders", namespace: "prod" } } as KubeObject;

describe("R19 the cluster Secret (Cluster API's convention)", () => {
  it("is <cluster>-kubeconfig, key value", () => {
    expect(clusterSecretName("west")).toBe("west-kubeconfig");
    const e = endpointFromSecret("west", "tde-system", {
      data: { value: kubeconfig("https://10.0.0.1:6443/") },
    });
    expect(e.ok && e.endpoint.getCurrentCluster()?.server).toBe("https://10.0.0.1:6443");
  });

  it.each([
    ["no value key", {}, 'has no key "value"'],
    [
      "an exec plugin",
      {
        value: Buffer.from(
          "clusters: [{name: c, cluster: {server: https://x}}]\nusers: [{name: u, user: {exec: {command: aws}}}]\ncontexts: [{name: c, context: {cluster: c, user: u}}]\ncurrent-context: c\n",
        ).toString("base64"),
      },
      "exec or auth-provider plugin",
    ],
    ["no current context", { value: Buffer.from("clusters: []\n").toString("base64") }, "no context"],
    [
      "invalid YAML, without quoting the line (it may hold the token)",
      { value: Buffer.from("users:\n- name: u\n  user:\n    token: t0ken: x\n").toString("base64") },
      "is not valid YAML at line 4, column 12",
    ],
  ])("refuses %s, naming the Secret and the fix", (_n, data, words) => {
    const e = endpointFromSecret("west", "tde-system", { data });
    expect(e.ok).toBe(false);
    if (!e.ok) {
      expect(e.message).toContain("Secret tde-system/west-kubeconfig");
      expect(e.message).toContain(words);
      expect(e.message).not.toContain("t0ken");
    }
  });
});

describe("R19-R21 RemoteClusters: cached, read-only reads of another cluster", () => {
  it("reuses a read for its ttl, then reads again; link health as metrics", async () => {
    const t = reader({ secret: secret(kubeconfig("https://10.0.0.1:6443")), remote: async () => db });
    const [a, b] = await Promise.all([
      t.r.read("west", "EncryptedDatabase", "prod", "orders"),
      t.r.read("west", "EncryptedDatabase", "prod", "orders"),
    ]);
    expect(a).toEqual({ ok: true, object: db });
    expect(b).toBe(a);
    expect(t.calls.remote).toBe(1);
    expect(await t.up()).toBe('tde_remote_cluster_up{cluster="west"} 1');
    t.advance(1_001);
    await t.r.read("west", "EncryptedDatabase", "prod", "orders");
    expect(t.calls.remote).toBe(2);
    expect(t.calls.clients).toHaveLength(1); // the Secret did not change: the same client
  });

  it("a missing object is an answer, not a failure", async () => {
    const t = reader({
      secret: secret(kubeconfig("https://x")),
      remote: async () => {
        throw new ApiError(404, "NotFound", "not found");
      },
    });
    expect(await t.r.read("west", "Secret", "prod", "x")).toEqual({ ok: true, object: undefined });
    expect(await t.up()).toBe('tde_remote_cluster_up{cluster="west"} 1');
  });

  it("an unreachable cluster is down, with its reason, and recovers by itself", async () => {
    let down = true;
    const t = reader({
      secret: secret(kubeconfig("https://x")),
      remote: async () => {
        if (down)
          throw Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:1"), { code: "ECONNREFUSED" });
        return db;
      },
    });
    expect(await t.r.read("west", "EncryptedDatabase", "prod", "orders")).toMatchObject({
      ok: false,
      cluster: "west",
      reason: "Unreachable",
    });
    expect(await t.up()).toBe('tde_remote_cluster_up{cluster="west"} 0');
    down = false;
    t.advance(1_001);
    expect((await t.r.read("west", "EncryptedDatabase", "prod", "orders")).ok).toBe(true);
    expect(await t.up()).toBe('tde_remote_cluster_up{cluster="west"} 1');
  });

  it("no cluster Secret: NoKubeconfig, saying which Secret to create", async () => {
    const t = reader({ remote: async () => db });
    const r = await t.r.read("west", "EncryptedDatabase", "prod", "orders");
    expect(r).toMatchObject({ ok: false, reason: "NoKubeconfig" });
    expect(!r.ok && r.message).toContain("tde-system/west-kubeconfig");
  });

  it("a changed Secret builds a new client", async () => {
    const s = { current: secret(kubeconfig("https://one")) };
    const t = reader({
      get secret() {
        return s.current;
      },
      remote: async () => db,
    });
    await t.r.read("west", "EncryptedDatabase", "prod", "orders");
    s.current = secret(kubeconfig("https://two"), "2");
    t.advance(1_001);
    await t.r.read("west", "EncryptedDatabase", "prod", "orders");
    expect(t.calls.clients).toEqual(["https://one", "https://two"]);
  });

  it.each([
    [new ApiError(403, "Forbidden", "no"), "Forbidden", "remote-reader role"],
    [new ApiError(401, "Unauthorized", "no"), "Forbidden", "remote-reader role"],
    [new ApiError(503, "ServiceUnavailable", "busy"), "ServerError", "answered 503"],
    [new Error("the API server did not answer within 5000 ms"), "Unreachable", "unreachable"],
  ])("classifies %s", (error, reason, words) => {
    const f = failure("west", error);
    expect(f.reason).toBe(reason);
    expect(f.message).toContain(words);
  });
});

describe("R19 --cluster-name and --remote-read-ttl", () => {
  it("takes a DNS label and a duration", () => {
    expect(clusterSettings("west-1", "2s")).toEqual({ clusterName: "west-1", remoteReadTtlMs: 2_000 });
    expect(clusterSettings(undefined, undefined)).toEqual({ remoteReadTtlMs: 10_000 });
  });

  it("refuses a name other clusters could not list, with the fix", () => {
    expect(() => clusterSettings("West_1", undefined)).toThrow(
      /--cluster-name: "West_1" is not a cluster name/,
    );
  });
});
