import * as k8s from "@kubernetes/client-node";
import type { ResourceKind } from "../../../src/runtime/index.js";

/** A tiny namespaced test kind with a status subresource, served by the real API server. */
export const GadgetKind: ResourceKind = {
  group: "runtime.tde.dev",
  version: "v1",
  plural: "gadgets",
  kind: "Gadget",
};

// client-node serialises its camel-cased model names, so the extension is spelled this way here.
const open = { type: "object", x_kubernetes_preserve_unknown_fields: true } as const;

/** Creates the Gadget CRD if no other test file has, and waits until it is Established. */
export async function ensureGadgetCrd(kc: k8s.KubeConfig): Promise<void> {
  const ext = kc.makeApiClient(k8s.ApiextensionsV1Api);
  const name = `${GadgetKind.plural}.${GadgetKind.group}`;
  try {
    await ext.createCustomResourceDefinition({
      body: {
        metadata: { name },
        spec: {
          group: GadgetKind.group,
          scope: "Namespaced",
          names: { plural: "gadgets", singular: "gadget", kind: "Gadget", listKind: "GadgetList" },
          versions: [
            {
              name: "v1",
              served: true,
              storage: true,
              subresources: { status: {} },
              schema: {
                openAPIV3Schema: { type: "object", properties: { spec: open, status: open } },
              },
            },
          ],
        },
      },
    });
  } catch (err) {
    if ((err as { code?: number }).code !== 409) throw err;
  }
  await until(async () => {
    const crd = await ext.readCustomResourceDefinition({ name });
    return crd.status?.conditions?.find((c) => c.type === "Established")?.status === "True";
  });
  // Established can precede the REST endpoint by a moment.
  const objects = kc.makeApiClient(k8s.CustomObjectsApi);
  await until(() =>
    objects
      .listClusterCustomObject({ group: GadgetKind.group, version: "v1", plural: "gadgets" })
      .then(() => true)
      .catch(() => false),
  );
}

async function until(check: () => Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error("timed out waiting for the Gadget CRD");
    await new Promise((r) => setTimeout(r, 200));
  }
}

export function gadget(name: string, spec: Record<string, unknown> = {}) {
  return { apiVersion: `${GadgetKind.group}/v1`, kind: "Gadget", metadata: { name }, spec };
}
