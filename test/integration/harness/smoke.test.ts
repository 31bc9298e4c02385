import * as k8s from "@kubernetes/client-node";
import { describe, expect, inject, it } from "vitest";
import { createTestNamespace, testKubeConfig } from "../../harness/kube.js";

const group = "smoke.tde.dev";

describe("the harness's real control plane", () => {
  it("serves a CRD that becomes Established, and objects of it that can be created and watched", async () => {
    const kc = testKubeConfig();
    const ext = kc.makeApiClient(k8s.ApiextensionsV1Api);
    const name = `widgets.${group}`;
    await ext.createCustomResourceDefinition({
      body: {
        metadata: { name },
        spec: {
          group,
          scope: "Namespaced",
          names: { plural: "widgets", singular: "widget", kind: "Widget", listKind: "WidgetList" },
          versions: [
            {
              name: "v1",
              served: true,
              storage: true,
              schema: {
                openAPIV3Schema: {
                  type: "object",
                  properties: { spec: { type: "object", properties: { size: { type: "integer" } } } },
                },
              },
            },
          ],
        },
      },
    });
    await expect
      .poll(
        async () => {
          const crd = await ext.readCustomResourceDefinition({ name });
          return crd.status?.conditions?.find((c) => c.type === "Established")?.status;
        },
        { timeout: 30_000, interval: 200 },
      )
      .toBe("True");

    const namespace = await createTestNamespace(kc, "smoke");
    const objects = kc.makeApiClient(k8s.CustomObjectsApi);
    // Established can come a moment before the new resource is served by every handler: list first.
    await expect
      .poll(
        async () =>
          (await objects.listNamespacedCustomObject({
            group,
            version: "v1",
            namespace,
            plural: "widgets",
          })) !== undefined,
        { timeout: 30_000, interval: 200 },
      )
      .toBe(true);
    const seen: string[] = [];
    const watch = new k8s.Watch(kc);
    let settle: (error?: unknown) => void = () => {};
    const seenPromise = new Promise<void>((resolve, reject) => {
      settle = (error) => (error ? reject(error) : resolve());
    });
    const req = await watch.watch(
      `/apis/${group}/v1/namespaces/${namespace}/widgets`,
      {},
      (phase, obj: k8s.KubernetesObject) => {
        seen.push(`${phase} ${obj.metadata?.name}`);
        settle();
      },
      (error) => settle(error ?? new Error("the watch ended before any event")),
    );
    await objects.createNamespacedCustomObject({
      group,
      version: "v1",
      namespace,
      plural: "widgets",
      body: { apiVersion: `${group}/v1`, kind: "Widget", metadata: { name: "w1" }, spec: { size: 3 } },
    });
    await seenPromise;
    req.abort();
    expect(seen).toContain("ADDED w1");
  });
});

describe("the harness's Lowkey Vault", () => {
  const vault = inject("lowkeyVault");
  it.skipIf(!vault.available)(
    `creates an RSA key and wraps/unwraps 32 bytes with RSA-OAEP-256${vault.available ? "" : ` (skipped: ${vault.reason})`}`,
    async () => {
      if (!vault.available) return;
      const { ManagedIdentityCredential } = await import("@azure/identity");
      const { CryptographyClient, KeyClient } = await import("@azure/keyvault-keys");
      process.env.IDENTITY_ENDPOINT = vault.identityEndpoint;
      process.env.IDENTITY_HEADER = "header";
      const credential = new ManagedIdentityCredential();
      const client = new KeyClient(`${vault.baseURL}`, credential, {
        disableChallengeResourceVerification: true,
      });
      const key = await client.createRsaKey("smoke", { keySize: 2048 });
      const crypto = new CryptographyClient(key, credential, { disableChallengeResourceVerification: true });
      const plain = new Uint8Array(32).map((_, i) => i);
      const wrapped = await crypto.wrapKey("RSA-OAEP-256", plain);
      const unwrapped = await crypto.unwrapKey("RSA-OAEP-256", wrapped.result);
      expect(Buffer.from(unwrapped.result)).toEqual(Buffer.from(plain));
    },
  );
});
