import { KubeConnection, type KubeEndpoint } from "../runtime/kube-connection.js";

/**
 * R19: how another cluster is named, after Cluster API's convention: the Secret
 * `<cluster>-kubeconfig` in the operator's namespace holds a kubeconfig under the key `value`
 * (what `clusterctl get kubeconfig` prints). The label `cluster.x-k8s.io/cluster-name` is
 * not required; the name alone finds the Secret.
 */
export const CLUSTER_SECRET_SUFFIX = "-kubeconfig";
export const CLUSTER_SECRET_KEY = "value";

export function clusterSecretName(cluster: string): string {
  return `${cluster}${CLUSTER_SECRET_SUFFIX}`;
}

/**
 * The endpoint a cluster Secret names, or why it cannot be used. Only self-contained kubeconfigs
 * (inline certificates, a token): a kubeconfig read from a Secret has no files beside it, and an
 * exec plugin would run a program the Secret's writer chose.
 */
export function endpointFromSecret(
  cluster: string,
  operatorNamespace: string,
  secret: { data?: Record<string, string> | undefined },
): { ok: true; endpoint: KubeEndpoint } | { ok: false; message: string } {
  const where = `Secret ${operatorNamespace}/${clusterSecretName(cluster)}`;
  const value = secret.data?.[CLUSTER_SECRET_KEY];
  if (!value)
    return {
      ok: false,
      message: `${where} has no key "${CLUSTER_SECRET_KEY}": put the cluster's kubeconfig under data.${CLUSTER_SECRET_KEY} (Cluster API's convention)`,
    };
  const text = Buffer.from(value, "base64").toString("utf8");
  try {
    const parsed = KubeConnection.parse(text, "/nonexistent", where);
    if (parsed === "plugin")
      return {
        ok: false,
        message: `${where}: its kubeconfig needs an exec or auth-provider plugin, a proxy or a username; give it a token or a client certificate inline`,
      };
    return { ok: true, endpoint: parsed };
  } catch (error) {
    // a YAML error quotes the offending line, which may hold a token: say where, never what
    const e = error as Error & { linePos?: { line: number; col: number }[] };
    if (e.name === "YAMLParseError" || e.name === "YAMLWarning") {
      const at = e.linePos?.[0] ? ` at line ${e.linePos[0].line}, column ${e.linePos[0].col}` : "";
      return { ok: false, message: `${where}: its kubeconfig is not valid YAML${at}` };
    }
    // our own messages name the context, cluster or file at fault, never a credential
    return { ok: false, message: `${where}: ${e.message}` };
  }
}
