import * as k8s from "@kubernetes/client-node";
import { describe, expect, it } from "vitest";
import { azureTestVault } from "../../harness/azure-test-vault.js";
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

// live against Lowkey Vault when the harness has a jar, else replayed from test/fixtures/azure/smoke/
const vault = azureTestVault("smoke");

describe(`the harness's Key Vault ${vault.label}`, () => {
  it("creates an RSA key and wraps/unwraps 32 bytes with RSA-OAEP-256 through the real SDK", async () => {
    const { CryptographyClient, KeyClient } = await import("@azure/keyvault-keys");
    const credential = await vault.credential();
    const client = new KeyClient(vault.vaultURL, credential, vault.clientOptions);
    const key = await client.createRsaKey(vault.keyName("smoke"), {
      keySize: 2048,
      keyOps: ["encrypt", "decrypt", "wrapKey", "unwrapKey"],
    });
    expect(key.id).toMatch(new RegExp(`^${vault.vaultURL}/keys/${vault.keyName("smoke")}/[0-9a-f]+$`));
    const crypto = new CryptographyClient(key, credential, vault.clientOptions);
    const plain = new Uint8Array(32).map((_, i) => i);
    const wrapped = await crypto.wrapKey("RSA-OAEP-256", plain);
    expect(Buffer.from(wrapped.result)).not.toEqual(Buffer.from(plain));
    const unwrapped = await crypto.unwrapKey("RSA-OAEP-256", wrapped.result);
    expect(Buffer.from(unwrapped.result)).toEqual(Buffer.from(plain));
  });
});
