import { mkdtempSync, writeFileSync } from "node:fs";
import type * as https from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { KubeConnection } from "../../../src/runtime/kube-connection.js";

const b64 = (s: string) => Buffer.from(s).toString("base64");

function kubeconfig(user: Record<string, unknown>, cluster: Record<string, unknown> = {}): string {
  return JSON.stringify({
    apiVersion: "v1",
    kind: "Config",
    "current-context": "dev",
    contexts: [
      { name: "other", context: { cluster: "nowhere", user: "nobody" } },
      { name: "dev", context: { cluster: "local", user: "admin" } },
    ],
    clusters: [{ name: "local", cluster: { server: "https://127.0.0.1:6443/", ...cluster } }],
    users: [{ name: "admin", user }],
  });
}

async function optionsOf(conn: KubeConnection): Promise<https.RequestOptions> {
  const opts: https.RequestOptions = { headers: { Accept: "application/json" } };
  await conn.applyToHTTPSOptions(opts);
  return opts;
}

describe("KubeConnection (the operator's kubeconfig reader)", () => {
  it("reads the current context's server, CA and client certificate from inline data", async () => {
    const conn = KubeConnection.parse(
      kubeconfig(
        { "client-certificate-data": b64("CERT"), "client-key-data": b64("KEY") },
        { "certificate-authority-data": b64("CA"), "tls-server-name": "kubernetes" },
      ),
      "/nowhere",
      "test",
    ) as KubeConnection;
    expect(conn.getCurrentCluster()).toEqual({ server: "https://127.0.0.1:6443" });
    const opts = await optionsOf(conn);
    expect(opts.ca?.toString()).toBe("CA");
    expect(opts.cert?.toString()).toBe("CERT");
    expect(opts.key?.toString()).toBe("KEY");
    expect(opts.servername).toBe("kubernetes");
    expect(opts.headers).toEqual({ Accept: "application/json" });
  });

  it("reads certificate files relative to the kubeconfig's folder, and a bearer token", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tde-kc-"));
    writeFileSync(join(dir, "ca.crt"), "CA-FILE");
    const conn = KubeConnection.parse(
      kubeconfig({ token: "t0ken" }, { "certificate-authority": "ca.crt" }),
      dir,
      "test",
    ) as KubeConnection;
    const opts = await optionsOf(conn);
    expect(opts.ca?.toString()).toBe("CA-FILE");
    expect(opts.headers).toEqual({ Accept: "application/json", Authorization: "Bearer t0ken" });
  });

  it("reads a token file (a ServiceAccount's) rather than keeping the first token for ever", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tde-kc-"));
    writeFileSync(join(dir, "token"), "first\n");
    const conn = KubeConnection.parse(kubeconfig({ tokenFile: "token" }), dir, "test") as KubeConnection;
    expect((await optionsOf(conn)).headers).toMatchObject({ Authorization: "Bearer first" });
  });

  it("hands a user with an exec or auth-provider plugin to client-node", () => {
    expect(KubeConnection.parse(kubeconfig({ exec: { command: "kubelogin" } }), "/", "test")).toBe("plugin");
    expect(KubeConnection.parse(kubeconfig({ "auth-provider": { name: "oidc" } }), "/", "test")).toBe(
      "plugin",
    );
  });

  it("says which name is missing when the current context points nowhere", () => {
    const text = kubeconfig({}).replace('"current-context":"dev"', '"current-context":"prod"');
    expect(() => KubeConnection.parse(text, "/", "/home/me/.kube/config")).toThrow(
      'the kubeconfig /home/me/.kube/config has no context (current-context) named "prod"',
    );
  });

  it("says which file it could not read", async () => {
    await expect(KubeConnection.fromFile("/nonexistent/kubeconfig")).rejects.toThrow(
      "cannot read the kubeconfig /nonexistent/kubeconfig",
    );
  });
});
