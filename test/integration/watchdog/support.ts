/** Fixtures for the key-access watchdog scenarios (R10-R12, R23): faults, workloads, timelines, events, metrics. */
import * as k8s from "@kubernetes/client-node";
import { type KekProvider, KeyAccessError, type KeyAccessReason } from "../../../src/kms/provider.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export { sleep };

/**
 * Wraps the operator's Local provider so a test can make one key fail the way a real vault
 * does (VaultUnreachable, PermissionDenied, AuthenticationFailed, Throttled: the classified
 * errors of the Azure provider), or route one key through another provider (an identity RBAC
 * can revoke). Other keys go to the real Local provider untouched.
 */
export class KeyFaults {
  private readonly faults = new Map<string, KeyAccessReason>();
  private readonly routes = new Map<string, KekProvider>();

  fail(namespace: string, keyName: string, reason: KeyAccessReason): void {
    this.faults.set(`${namespace}/${keyName}`, reason);
  }

  heal(namespace: string, keyName: string): void {
    this.faults.delete(`${namespace}/${keyName}`);
  }

  route(namespace: string, keyName: string, provider: KekProvider): void {
    this.routes.set(`${namespace}/${keyName}`, provider);
  }

  readonly wrap = (local: KekProvider): KekProvider => {
    const pick = (ref: { namespace: string; keyName: string }): KekProvider => {
      const id = `${ref.namespace}/${ref.keyName}`;
      const reason = this.faults.get(id);
      if (reason) throw new KeyAccessError(reason, `injected: ${reason} for ${id}`);
      return this.routes.get(id) ?? local;
    };
    return {
      name: local.name,
      describe: async (r) => pick(r).describe(r),
      listVersions: async (r) => pick(r).listVersions(r),
      wrap: async (r, d) => pick(r).wrap(r, d),
      unwrap: async (r, w) => pick(r).unwrap(r, w),
    };
  };
}

export function workloadApis(kc: k8s.KubeConfig) {
  return {
    apps: kc.makeApiClient(k8s.AppsV1Api),
    net: kc.makeApiClient(k8s.NetworkingV1Api),
    rbac: kc.makeApiClient(k8s.RbacAuthorizationV1Api),
  };
}
export type WorkloadApis = ReturnType<typeof workloadApis>;

/** A StatefulSet or Deployment with `replicas` (no controller-manager runs: it stays a plain object). */
export async function createWorkload(
  w: WorkloadApis,
  namespace: string,
  kind: "StatefulSet" | "Deployment",
  name: string,
  replicas: number,
): Promise<void> {
  const labels = { app: name };
  const template = {
    metadata: { labels },
    spec: { containers: [{ name: "db", image: "mariadb:11" }] },
  };
  if (kind === "StatefulSet") {
    await w.apps.createNamespacedStatefulSet({
      namespace,
      body: {
        metadata: { name },
        spec: { replicas, serviceName: name, selector: { matchLabels: labels }, template },
      },
    });
  } else {
    await w.apps.createNamespacedDeployment({
      namespace,
      body: { metadata: { name }, spec: { replicas, selector: { matchLabels: labels }, template } },
    });
  }
}

export async function readWorkload(
  w: WorkloadApis,
  namespace: string,
  kind: "StatefulSet" | "Deployment",
  name: string,
): Promise<{ replicas: number | undefined; annotations: Record<string, string> }> {
  const o =
    kind === "StatefulSet"
      ? await w.apps.readNamespacedStatefulSet({ namespace, name })
      : await w.apps.readNamespacedDeployment({ namespace, name });
  return { replicas: o.spec?.replicas, annotations: o.metadata?.annotations ?? {} };
}

export async function readNetworkPolicy(w: WorkloadApis, namespace: string, name: string) {
  try {
    return await w.net.readNamespacedNetworkPolicy({ namespace, name });
  } catch (error) {
    if ((error as { code?: number }).code === 404) return undefined;
    throw error;
  }
}

/** core/v1 Events about one object, oldest first. */
export async function eventsFor(core: k8s.CoreV1Api, namespace: string, kind: string, name: string) {
  const list = await core.listNamespacedEvent({
    namespace,
    fieldSelector: `involvedObject.kind=${kind},involvedObject.name=${name}`,
  });
  return list.items.map((e) => ({ type: e.type, reason: e.reason, message: e.message ?? "" }));
}

export interface Observation {
  /** when the read started and ended (ms since epoch) */
  start: number;
  end: number;
  state: string | undefined;
  keyAccessible: string | undefined;
}

/** Polls an object's state every ~100 ms, so a test can say what it was just before a deadline. */
export function recordTimeline(
  read: () => Promise<{ status?: { state?: string; conditions?: { type: string; status: string }[] } }>,
) {
  const observations: Observation[] = [];
  let stopped = false;
  const loop = (async () => {
    while (!stopped) {
      const start = Date.now();
      try {
        const o = await read();
        observations.push({
          start,
          end: Date.now(),
          state: o.status?.state,
          keyAccessible: o.status?.conditions?.find((c) => c.type === "KeyAccessible")?.status,
        });
      } catch {
        // a failed read says nothing
      }
      await sleep(100);
    }
  })();
  return {
    observations,
    async stop() {
      stopped = true;
      await loop;
      return observations;
    },
  };
}

/** The value of one labelled series of a counter or gauge (0 when absent). */
export async function metricValue(
  metric: { get(): Promise<{ values: { labels: object; value: number }[] }> },
  labels: Record<string, string>,
): Promise<number> {
  const { values } = await metric.get();
  const hit = values.find((v) =>
    Object.entries(labels).every(([k, val]) => (v.labels as Record<string, unknown>)[k] === val),
  );
  return hit?.value ?? 0;
}

/** Sum over every series of a counter. */
export async function metricSum(metric: {
  get(): Promise<{ values: { value: number }[] }>;
}): Promise<number> {
  const { values } = await metric.get();
  return values.reduce((sum, v) => sum + v.value, 0);
}
