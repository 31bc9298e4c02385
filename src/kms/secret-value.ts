import type { KubeClient, KubeObject, ResourceKind } from "../runtime/index.js";

const SECRETS: ResourceKind = { group: "", version: "v1", plural: "secrets", kind: "Secret" };

/**
 * One value of a Secret, read when it is needed (an Azure client secret, R8): never cached, so a
 * rotated credential is used at once. The error names the Secret and the missing key, never a value.
 */
export function secretValueReader(client: KubeClient) {
  return async (namespace: string, name: string, key: string): Promise<string> => {
    const secret = await client.get<KubeObject & { data?: Record<string, string> }>(SECRETS, namespace, name);
    const value = secret.data?.[key];
    if (value === undefined) throw new Error(`Secret ${namespace}/${name} has no key ${key}`);
    return Buffer.from(value, "base64").toString("utf8");
  };
}
