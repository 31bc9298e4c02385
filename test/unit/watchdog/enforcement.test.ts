import { describe, expect, it } from "vitest";
import { ApiError, type KubeClient, type KubeObject, type ResourceKind } from "../../../src/runtime/index.js";
import {
  ENFORCED_BY_ANNOTATION,
  type EnforcedServer,
  type EnforcementRecord,
  Enforcer,
  networkPolicyName,
  PREVIOUS_REPLICAS_ANNOTATION,
} from "../../../src/watchdog/enforcement.js";

/**
 * An in-memory API for the calls enforcement makes: discovery, get (and /scale), JSON merge
 * patch (and of /scale), create, delete. Kinds: apps/v1 StatefulSet and Deployment, and a
 * test group's Engine (serves /scale, refuses fewer than `minReplicas`) and Widget (no /scale).
 */
class FakeApi {
  readonly objects = new Map<string, KubeObject & { spec?: Record<string, unknown> }>();
  readonly calls: string[] = [];
  minReplicas = 0;
  private id = (kind: ResourceKind, ns: string, name: string) => `${kind.plural}/${ns}/${name}`;

  client(): KubeClient {
    const api = {
      discover: async (apiVersion: string) => {
        const lists: Record<string, { name: string; kind: string; namespaced: boolean }[]> = {
          "apps/v1": [
            { name: "statefulsets", kind: "StatefulSet", namespaced: true },
            { name: "statefulsets/scale", kind: "Scale", namespaced: true },
            { name: "deployments", kind: "Deployment", namespaced: true },
            { name: "deployments/scale", kind: "Scale", namespaced: true },
          ],
          "test.tde.dev/v1": [
            { name: "engines", kind: "Engine", namespaced: true },
            { name: "engines/scale", kind: "Scale", namespaced: true },
            { name: "widgets", kind: "Widget", namespaced: true },
          ],
        };
        const resources = lists[apiVersion];
        if (!resources)
          throw new ApiError(404, "NotFound", "the server could not find the requested resource");
        return { groupVersion: apiVersion, resources };
      },
      get: async (kind: ResourceKind, ns: string, name: string, options: { subresource?: string } = {}) => {
        const o = this.objects.get(this.id(kind, ns, name));
        if (!o) throw new ApiError(404, "NotFound", `${name} not found`);
        if (options.subresource === "scale") {
          return {
            // like autoscaling/v1, replicas: 0 is left out (omitempty)
            spec: o.spec?.replicas ? { replicas: o.spec.replicas } : {},
            status: { selector: (o.status as { selector?: string } | undefined)?.selector },
          };
        }
        return structuredClone(o);
      },
      patch: async (
        kind: ResourceKind,
        ns: string,
        name: string,
        body: Record<string, unknown>,
        options: { subresource?: string } = {},
      ) => {
        this.calls.push(`patch ${kind.plural}/${name}${options.subresource ? "/scale" : ""}`);
        const id = this.id(kind, ns, name);
        const o = this.objects.get(id);
        if (!o) throw new ApiError(404, "NotFound", `${name} not found`);
        if (options.subresource === "scale") {
          const replicas = (body.spec as { replicas: number }).replicas;
          if (replicas < this.minReplicas)
            throw new ApiError(
              422,
              "Invalid",
              `spec.replicas: Invalid value: ${replicas}: must be >= ${this.minReplicas}`,
            );
          o.spec = { ...o.spec, replicas };
          return o;
        }
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

  statefulSet(name: string, replicas: number, controller?: { kind: string; name: string }) {
    this.objects.set(`statefulsets/ns/${name}`, {
      metadata: {
        name,
        namespace: "ns",
        ...(controller
          ? {
              ownerReferences: [
                { apiVersion: "test.tde.dev/v1", ...controller, uid: "o1", controller: true },
              ],
            }
          : {}),
      },
      spec: { replicas, selector: { matchLabels: { app: name } } },
    });
  }

  custom(plural: "engines" | "widgets", name: string, spec: Record<string, unknown>, status = {}) {
    this.objects.set(`${plural}/ns/${name}`, { metadata: { name, namespace: "ns" }, spec, status });
  }

  object(plural: string, name: string) {
    return this.objects.get(`${plural}/ns/${name}`) as {
      metadata: { annotations?: Record<string, string>; labels?: Record<string, string> };
      spec: Record<string, unknown> & { replicas: number };
    };
  }

  workload(name: string) {
    return this.object("statefulsets", name);
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
type Spec = EnforcedServer["spec"];
const ref = { kind: "StatefulSet", name: "engine" };
const server = (spec: Partial<Spec>, enforcement: EnforcementRecord = {}): EnforcedServer => ({
  metadata: { namespace: "ns", name: "srv" },
  spec: { enforcement: "ScaleToZero", workloadRef: ref, ...spec } as Spec,
  status: { enforcement },
});
const scaleToZero = server({});

describe("R10 R11 enforcement on the workload", () => {
  it("R10 ScaleToZero keeps the replica count in an annotation; enforcing twice keeps the first count and writes nothing", async () => {
    const api = new FakeApi();
    api.statefulSet("engine", 3);
    const enforcer = new Enforcer(api.client());
    const first = await enforcer.enforce(scaleToZero, owner);
    expect(first.record).toEqual({ previousReplicas: 3, target: "StatefulSet.apps/engine" });
    expect(first.enforced).toMatchObject({ status: "True", reason: "ScaledToZero" });
    expect(first.target).toMatchObject({ status: "True", reason: "WorkloadResolved" });
    expect(api.workload("engine").spec.replicas).toBe(0);
    expect(api.workload("engine").metadata.annotations).toEqual({
      [PREVIOUS_REPLICAS_ANNOTATION]: "3",
      [ENFORCED_BY_ANNOTATION]: "srv",
    });
    expect(api.calls).toEqual(["patch statefulsets/engine", "patch statefulsets/engine/scale"]);
    const patches = api.calls.length;
    expect((await enforcer.enforce(scaleToZero, owner)).record).toEqual(first.record);
    expect(api.calls.length).toBe(patches);
  });

  it("R11 restore gives back the kept count and removes the annotations; restoring twice is harmless", async () => {
    const api = new FakeApi();
    api.statefulSet("engine", 5);
    const enforcer = new Enforcer(api.client());
    const { record } = await enforcer.enforce(scaleToZero, owner);
    await enforcer.restore(scaleToZero, record);
    expect(api.workload("engine").spec.replicas).toBe(5);
    expect(api.workload("engine").metadata.annotations ?? {}).toEqual({});
    await enforcer.restore(scaleToZero, record);
    expect(api.workload("engine").spec.replicas).toBe(5);
  });

  it("R10 someone scaling the workload up while Inaccessible is undone, and the original count still comes back", async () => {
    const api = new FakeApi();
    api.statefulSet("engine", 3);
    const enforcer = new Enforcer(api.client());
    await enforcer.enforce(scaleToZero, owner);
    api.workload("engine").spec.replicas = 1;
    expect((await enforcer.enforce(scaleToZero, owner)).record.previousReplicas).toBe(3);
    expect(api.workload("engine").spec.replicas).toBe(0);
    await enforcer.restore(scaleToZero, {});
    expect(api.workload("engine").spec.replicas).toBe(3);
  });

  it("R10 a count removed from the workload's annotation is taken from the server's status, not from the 0 it holds", async () => {
    const api = new FakeApi();
    api.statefulSet("engine", 0);
    const enforcer = new Enforcer(api.client());
    const held = server({}, { previousReplicas: 4 });
    expect((await enforcer.enforce(held, owner)).record.previousReplicas).toBe(4);
    await enforcer.restore(held, { previousReplicas: 4 });
    expect(api.workload("engine").spec.replicas).toBe(4);
  });

  it("R10 a workload owned by a controller is enforced on its owner through /scale, never behind its back; the condition names the owner", async () => {
    const api = new FakeApi();
    api.custom("engines", "pg", { replicas: 3 });
    api.statefulSet("engine", 3, { kind: "Engine", name: "pg" });
    const enforcer = new Enforcer(api.client());
    const outcome = await enforcer.enforce(scaleToZero, owner);
    expect(outcome.enforced).toMatchObject({ status: "True", reason: "ScaledToZero" });
    expect(outcome.target).toMatchObject({ status: "True", reason: "OwnerTargeted" });
    expect(outcome.target?.message).toContain(
      "StatefulSet.apps/engine is controlled by Engine.test.tde.dev/pg: ScaleToZero (through /scale) acts on Engine.test.tde.dev/pg",
    );
    expect(outcome.target?.message).toContain("{apiVersion: test.tde.dev/v1, kind: Engine, name: pg}");
    expect(api.object("engines", "pg").spec.replicas).toBe(0);
    expect(api.workload("engine").spec.replicas).toBe(3);
    expect(api.object("engines", "pg").metadata.annotations?.[PREVIOUS_REPLICAS_ANNOTATION]).toBe("3");
    await enforcer.restore(scaleToZero, outcome.record);
    expect(api.object("engines", "pg").spec.replicas).toBe(3);
    expect(api.object("engines", "pg").metadata.annotations ?? {}).toEqual({});
  });

  it("R10 an owner without /scale is not scaled at all: ScaleNotServed says to use Patch or NetworkIsolation", async () => {
    const api = new FakeApi();
    api.custom("widgets", "w", { size: 3 });
    const enforcer = new Enforcer(api.client());
    const outcome = await enforcer.enforce(
      server({ workloadRef: { apiVersion: "test.tde.dev/v1", kind: "Widget", name: "w" } }),
      owner,
    );
    expect(outcome.enforced).toMatchObject({ status: "False", reason: "ScaleNotServed" });
    expect(outcome.enforced.message).toContain("enforcement: Patch");
    expect(api.calls).toEqual([]);
  });

  it("R10 an owner that refuses 0 replicas reports ScaleRefused with the API server's answer", async () => {
    const api = new FakeApi();
    api.minReplicas = 1;
    api.custom("engines", "pg", { replicas: 2 });
    const enforcer = new Enforcer(api.client());
    const pg = server({ workloadRef: { apiVersion: "test.tde.dev/v1", kind: "Engine", name: "pg" } });
    const outcome = await enforcer.enforce(pg, owner);
    expect(outcome.enforced).toMatchObject({ status: "False", reason: "ScaleRefused" });
    expect(outcome.enforced.message).toContain("must be >= 1");
    expect(outcome.enforced.message).toContain("cnpg.io/hibernation");
  });

  it("R10 R11 Patch holds the declared patch, records what it replaced, and gives back exactly that", async () => {
    const api = new FakeApi();
    api.custom("engines", "pg", { replicas: 2, pause: false });
    api.object("engines", "pg").metadata.annotations = { keep: "me", "cnpg.io/hibernation": "off" };
    const enforcer = new Enforcer(api.client());
    const pg = server({
      enforcement: "Patch",
      workloadRef: { apiVersion: "test.tde.dev/v1", kind: "Engine", name: "pg" },
      enforcementPatch: {
        metadata: { annotations: { "cnpg.io/hibernation": "on" }, labels: { "tde.dev/locked": "yes" } },
        spec: { pause: true },
      },
    });
    const outcome = await enforcer.enforce(pg, owner);
    expect(outcome.enforced).toMatchObject({ status: "True", reason: "Patched" });
    const patched = api.object("engines", "pg");
    expect(patched.metadata.annotations?.["cnpg.io/hibernation"]).toBe("on");
    expect(patched.metadata.labels).toEqual({ "tde.dev/locked": "yes" });
    expect(patched.spec.pause).toBe(true);
    // a GitOps sync puts the field back: enforcing again takes it away, keeping the first record
    patched.spec.pause = false;
    await enforcer.enforce(pg, owner);
    expect(api.object("engines", "pg").spec.pause).toBe(true);
    await enforcer.restore(pg, outcome.record);
    const back = api.object("engines", "pg");
    expect(back.metadata.annotations).toEqual({ keep: "me", "cnpg.io/hibernation": "off" });
    expect(back.metadata.labels ?? {}).toEqual({});
    expect(back.spec).toEqual({ replicas: 2, pause: false });
  });

  it("R10 NetworkIsolation creates one deny-all-ingress NetworkPolicy for the workload's pods, owned by the server", async () => {
    const api = new FakeApi();
    api.statefulSet("engine", 3);
    const enforcer = new Enforcer(api.client());
    const isolate = server({ enforcement: "NetworkIsolation" });
    const { record } = await enforcer.enforce(isolate, owner);
    expect(record).toEqual({ networkPolicyName: networkPolicyName("srv") });
    expect((await enforcer.enforce(isolate, owner)).record).toEqual(record);
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
    await enforcer.restore(isolate, record);
    expect(api.objects.has(`networkpolicies/ns/${networkPolicyName("srv")}`)).toBe(false);
  });

  it("R10 NetworkIsolation of a kind without spec.selector uses the label selector its /scale reports", async () => {
    const api = new FakeApi();
    api.custom("engines", "pg", { replicas: 2 }, { selector: "cnpg.io/cluster=pg,role=db" });
    const enforcer = new Enforcer(api.client());
    const isolate = server({
      enforcement: "NetworkIsolation",
      workloadRef: { apiVersion: "test.tde.dev/v1", kind: "Engine", name: "pg" },
    });
    await enforcer.enforce(isolate, owner);
    const policy = api.objects.get(`networkpolicies/ns/${networkPolicyName("srv")}`) as KubeObject & {
      spec: { podSelector: unknown };
    };
    expect(policy.spec.podSelector).toEqual({ matchLabels: { "cnpg.io/cluster": "pg", role: "db" } });
  });

  it("R10 None, or no workloadRef, only reports: nothing is touched", async () => {
    const api = new FakeApi();
    api.statefulSet("engine", 3);
    const enforcer = new Enforcer(api.client());
    expect((await enforcer.enforce(server({ enforcement: "None" }), owner)).enforced.reason).toBe(
      "EnforcementDisabled",
    );
    expect((await enforcer.enforce(server({ workloadRef: undefined }), owner)).enforced.reason).toBe(
      "NotEnforced",
    );
    expect(await enforcer.inspect(server({ enforcement: "None" }))).toBeUndefined();
    expect(api.calls).toEqual([]);
  });

  it("R10 a workload or kind that does not exist is reported, naming what to fix", async () => {
    const api = new FakeApi();
    const enforcer = new Enforcer(api.client());
    expect(await enforcer.inspect(scaleToZero)).toMatchObject({
      status: "False",
      reason: "WorkloadNotFound",
    });
    const unknown = server({
      workloadRef: { apiVersion: "nope.example.com/v1", kind: "Cluster", name: "x" },
    });
    const inspected = await enforcer.inspect(unknown);
    expect(inspected).toMatchObject({ status: "False", reason: "KindNotServed" });
    expect(inspected?.message).toContain("install the CRD");
  });

  it("R11 restore copes with a workload deleted meanwhile", async () => {
    const api = new FakeApi();
    const enforcer = new Enforcer(api.client());
    await expect(enforcer.restore(scaleToZero, { previousReplicas: 2 })).resolves.toBeUndefined();
  });
});
