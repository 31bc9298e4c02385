import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { argoHealth } from "../../harness/health-tools.js";
import { find, parseManifests, repoRoot } from "./support.js";

const gitops = join(repoRoot, "deploy", "gitops");
const KINDS = ["KeyProtector", "EncryptedServer", "EncryptedDatabase"];
const healthLua = readFileSync(join(gitops, "argocd", "health.lua"), "utf8");

/** health.lua as Argo CD runs it (gopher-lua in Argo CD's Lua environment: test/harness/health-tools.ts). */
async function health(obj: unknown): Promise<{ status: string; message: string }> {
  const [hs] = await argoHealth(join(gitops, "argocd", "health.lua"), [obj]);
  return hs as { status: string; message: string };
}

const cond = (type: string, status: string, reason: string, message = "", observedGeneration = 1) => ({
  type,
  status,
  reason,
  message,
  lastTransitionTime: "2025-01-01T00:00:00Z",
  observedGeneration,
});
const resource = (kind: string, status?: Record<string, unknown>, generation = 1) => ({
  apiVersion: "tde.dev/v1alpha1",
  kind,
  metadata: { name: "x", namespace: "y", generation },
  spec: {},
  ...(status ? { status } : {}),
});

describe("R27 Argo CD health checks for our kinds", () => {
  it("argocd-cm carries health.lua for each of the three kinds", () => {
    const cm = find(
      parseManifests(readFileSync(join(gitops, "argocd", "argocd-cm.yaml"), "utf8")),
      "ConfigMap",
    ) as {
      data?: Record<string, string>;
    };
    for (const kind of KINDS)
      expect(cm.data?.[`resource.customizations.health.tde.dev_${kind}`]).toBe(healthLua);
  });

  it("the Application installs an overlay that exists, with server-side apply", () => {
    const apps = parseManifests(readFileSync(join(gitops, "argocd", "application.yaml"), "utf8"));
    for (const app of apps) {
      const spec = app.spec as { source: { path: string }; syncPolicy: { syncOptions: string[] } };
      expect(existsSync(join(repoRoot, spec.source.path)), spec.source.path).toBe(true);
      expect(spec.syncPolicy.syncOptions).toContain("ServerSideApply=true");
    }
  });

  describe("health.lua, run by gopher-lua as Argo CD runs it", () => {
    it.each(KINDS)("%s: Progressing before the operator reports status", async (kind) => {
      expect((await health(resource(kind))).status).toBe("Progressing");
    });

    it.each(KINDS)("%s: Healthy when Ready is True for the current generation", async (kind) => {
      const hs = await health(
        resource(kind, {
          state: "Available",
          conditions: [cond("Ready", "True", "Available", "DEK protected")],
        }),
      );
      expect(hs).toEqual({ status: "Healthy", message: "Available: DEK protected" });
    });

    it("Progressing while Ready was computed for an older generation", async () => {
      const hs = await health(
        resource(
          "EncryptedServer",
          { conditions: [cond("Ready", "True", "Available", "", 1)], observedGeneration: 1 },
          2,
        ),
      );
      expect(hs.status).toBe("Progressing");
      expect(hs.message).toContain("generation 2");
    });

    it.each(["EncryptedServer", "EncryptedDatabase"])(
      "%s: Degraded when Inaccessible, with the reason",
      async (kind) => {
        const hs = await health(
          resource(kind, {
            state: "Inaccessible",
            conditions: [
              cond("Ready", "False", "Inaccessible", "enforced"),
              cond(
                "KeyAccessible",
                "False",
                "KeyDisabled",
                "the key is disabled: enable it, then revalidate",
              ),
            ],
          }),
        );
        expect(hs).toEqual({ status: "Degraded", message: "Inaccessible: enforced" });
      },
    );

    it("KeyProtector: Degraded when its key is not accessible", async () => {
      const hs = await health(
        resource("KeyProtector", {
          conditions: [
            cond("Ready", "False", "KeyNotAccessible"),
            cond("Accessible", "False", "PermissionDenied", "grant wrapKey"),
          ],
        }),
      );
      expect(hs).toEqual({ status: "Degraded", message: "PermissionDenied: grant wrapKey" });
    });

    it("Progressing (not Degraded) while provisioning or revalidating", async () => {
      for (const state of ["Provisioning", "Revalidating"]) {
        const hs = await health(
          resource("EncryptedDatabase", { state, conditions: [cond("Ready", "False", state, "working")] }),
        );
        expect(hs).toEqual({ status: "Progressing", message: `${state}: working` });
      }
    });
  });
});

describe("R27 Flux examples", () => {
  it("install deploy/overlays/default and health-check the CRDs, the Deployment and our kinds", () => {
    const docs = parseManifests(readFileSync(join(gitops, "flux", "kustomization.yaml"), "utf8"));
    const source = find(
      parseManifests(readFileSync(join(gitops, "flux", "gitrepository.yaml"), "utf8")),
      "GitRepository",
    );
    const operator = find(docs, "Kustomization", "tde-operator") as unknown as {
      spec: Record<string, unknown>;
    };
    expect(operator.spec.sourceRef).toEqual({ kind: "GitRepository", name: source.metadata.name });
    expect(existsSync(join(repoRoot, String(operator.spec.path)))).toBe(true);
    const checks = (operator.spec.healthChecks as { kind: string; name: string }[]).map(
      (c) => `${c.kind}/${c.name}`,
    );
    expect(checks).toEqual(
      expect.arrayContaining(["Deployment/tde-operator", "CustomResourceDefinition/keyprotectors.tde.dev"]),
    );
    const tenant = docs.find((d) => d.metadata.name !== "tde-operator") as unknown as {
      spec: Record<string, unknown>;
    };
    expect(tenant.spec.dependsOn).toEqual([{ name: "tde-operator" }]);
    // wait: true (healthChecks would be ignored) with a documented timeout, and CEL health for each kind
    expect(tenant.spec.wait).toBe(true);
    expect(tenant.spec.timeout).toBe("5m");
    expect(tenant.spec.healthChecks).toBeUndefined();
    expect((tenant.spec.healthCheckExprs as { kind: string }[]).map((e) => e.kind)).toEqual(KINDS);
  });
});
