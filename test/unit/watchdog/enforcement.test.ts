import { describe, expect, it } from "vitest";
import { ApiError, type KubeClient, type KubeObject, type ResourceKind } from "../../../src/runtime/index.js";
import {
  ENFORCED_BY_ANNOTATION,
  Enforcer,
  networkPolicyName,
  PREVIOUS_REPLICAS_ANNOTATION,
} from "../../../src/watchdog/enforcement.js";

/** An in-memory API for the few calls enforcement makes: get, JSON merge patch, create, delete. */
class FakeApi {
  readonly objects = new Map<string, KubeObject & { spec?: Record<string, unknown> }>();
  readonly calls: string[] = [];
  private id = (kind: ResourceKind, ns: string, name: string) => `${kind.plural}/${ns}/${name}`;

  client(): KubeClient {
    const api = {
      get: async (kind: ResourceKind, ns: string, name: string) => {
        const o = this.objects.get(this.id(kind, ns, name));
        if (!o) throw new ApiError(404, "NotFound", `${name} not found`);
        return structuredClone(o);
      },
      patch: async (kind: ResourceKind, ns: string, name: string, body: Record<string, unknown>) => {
        this.calls.push(`patch ${kind.plural}/${name}`);
        const id = this.id(kind, ns, name);
        const o = this.objects.get(id);
        if (!o) throw new ApiError(404, "NotFound", `${name} not found`);
        const merged = mergePatch(o, body) as KubeObject;
        this.objects.set(id, merged);
        return merged;
      },
      create: async (kind: ResourceKind, ns: string, body: KubeObject) => {
        this.calls.push(`create ${kind.plural}/${body.metadata?.name}`);
        const id = this.id(kind, ns, body.metadata?.name ?? "");
        if (this.objects.has(id)) throw new ApiError(409, "AlreadyExists", "exists");
        this.objects.set(id, structuredClone(body));
        return body;
      },
      delete: async (kind: ResourceKind, ns: string, name: string) => {
        this.calls.push(`delete ${kind.plural}/${name}`);
        if (!this.objects.delete(this.id(kind, ns, name))) throw new ApiError(404, "NotFound", "gone");
      },
    };
    return api as unknown as KubeClient;
  }

  statefulSet(name: string, replicas: number) {
    this.objects.set(`statefulsets/ns/${name}`, {
      metadata: { name, namespace: "ns" },
      spec: { replicas, selector: { matchLabels: { app: name } } },
    });
  }

  workload(name: string) {
    return this.objects.get(`statefulsets/ns/${name}`) as {
      metadata: { annotations?: Record<string, string> };
      spec: { replicas: number };
    };
  }
}

function mergePatch(target: unknown, patch: unknown): unknown {
  if (typeof patch !== "object" || patch === null || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> =
    typeof target === "object" && target !== null && !Array.isArray(target)
      ? { ...(target as Record<string, unknown>) }
      : {};
  for (const [k, v] of Object.entries(patch)) {
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

const owner = {
  apiVersion: "tde.dev/v1alpha1",
  kind: "EncryptedServer",
  name: "srv",
  uid: "u1",
  controller: true,
};
const ref = { kind: "StatefulSet" as const, name: "engine" };

describe("R10 R11 enforcement on the workload", () => {
  it("R10 ScaleToZero keeps the replica count in an annotation; applying twice keeps the first count", async () => {
    const api = new FakeApi();
    api.statefulSet("engine", 3);
    const enforcer = new Enforcer(api.client());
    expect(await enforcer.apply("ns", "srv", "ScaleToZero", ref, owner)).toEqual({ previousReplicas: 3 });
    expect(api.workload("engine").spec.replicas).toBe(0);
    expect(api.workload("engine").metadata.annotations).toEqual({
      [PREVIOUS_REPLICAS_ANNOTATION]: "3",
      [ENFORCED_BY_ANNOTATION]: "srv",
    });
    const patches = api.calls.length;
    expect(await enforcer.apply("ns", "srv", "ScaleToZero", ref, owner)).toEqual({ previousReplicas: 3 });
    expect(api.calls.length).toBe(patches);
  });

  it("R11 release gives back the kept count and removes the annotations; releasing twice is harmless", async () => {
    const api = new FakeApi();
    api.statefulSet("engine", 5);
    const enforcer = new Enforcer(api.client());
    const record = await enforcer.apply("ns", "srv", "ScaleToZero", ref, owner);
    await enforcer.release("ns", "srv", ref, record);
    expect(api.workload("engine").spec.replicas).toBe(5);
    expect(api.workload("engine").metadata.annotations ?? {}).toEqual({});
    await enforcer.release("ns", "srv", ref, record);
    expect(api.workload("engine").spec.replicas).toBe(5);
  });

  it("R10 someone scaling the workload up while Inaccessible is undone, and the original count still comes back", async () => {
    const api = new FakeApi();
    api.statefulSet("engine", 3);
    const enforcer = new Enforcer(api.client());
    await enforcer.apply("ns", "srv", "ScaleToZero", ref, owner);
    api.workload("engine").spec.replicas = 1;
    expect(await enforcer.apply("ns", "srv", "ScaleToZero", ref, owner)).toEqual({ previousReplicas: 3 });
    expect(api.workload("engine").spec.replicas).toBe(0);
    await enforcer.release("ns", "srv", ref, {});
    expect(api.workload("engine").spec.replicas).toBe(3);
  });

  it("R10 NetworkIsolation creates one deny-all-ingress NetworkPolicy for the workload's pods, owned by the server", async () => {
    const api = new FakeApi();
    api.statefulSet("engine", 3);
    const enforcer = new Enforcer(api.client());
    const record = await enforcer.apply("ns", "srv", "NetworkIsolation", ref, owner);
    expect(record).toEqual({ networkPolicyName: networkPolicyName("srv") });
    expect(await enforcer.apply("ns", "srv", "NetworkIsolation", ref, owner)).toEqual(record);
    const policy = api.objects.get(`networkpolicies/ns/${networkPolicyName("srv")}`) as KubeObject & {
      spec: Record<string, unknown>;
    };
    expect(policy.spec).toEqual({
      podSelector: { matchLabels: { app: "engine" } },
      policyTypes: ["Ingress"],
      ingress: [],
    });
    expect(policy.metadata?.ownerReferences).toEqual([owner]);
    expect(api.workload("engine").spec.replicas).toBe(3);
    await enforcer.release("ns", "srv", ref, record);
    expect(api.objects.has(`networkpolicies/ns/${networkPolicyName("srv")}`)).toBe(false);
  });

  it("R10 None, or no workloadRef, only reports: nothing is touched", async () => {
    const api = new FakeApi();
    api.statefulSet("engine", 3);
    const enforcer = new Enforcer(api.client());
    expect(await enforcer.apply("ns", "srv", "None", ref, owner)).toEqual({});
    expect(await enforcer.apply("ns", "srv", "ScaleToZero", undefined, owner)).toEqual({});
    expect(api.calls).toEqual([]);
  });

  it("R11 release copes with a workload deleted meanwhile", async () => {
    const api = new FakeApi();
    const enforcer = new Enforcer(api.client());
    await expect(enforcer.release("ns", "srv", ref, { previousReplicas: 2 })).resolves.toBeUndefined();
  });
});
