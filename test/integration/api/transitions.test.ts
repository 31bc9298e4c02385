import { beforeAll, describe, expect, it } from "vitest";
import { createTestNamespace, kubectl, testKubeConfig } from "../../harness/kube.js";
import { installCrds, kubectlError } from "./install.js";

const kc = testKubeConfig();
let namespace = "";

beforeAll(async () => {
  await installCrds();
  namespace = await createTestNamespace(kc, "api-upd");
});

let counter = 0;
async function createDatabase(spec: Record<string, unknown>): Promise<string> {
  counter += 1;
  const name = `db-${counter}`;
  await kubectl(
    ["create", "-n", namespace, "-f", "-"],
    JSON.stringify({ apiVersion: "tde.dev/v1alpha1", kind: "EncryptedDatabase", metadata: { name }, spec }),
  );
  return name;
}

function patch(resource: string, name: string, body: unknown): Promise<string> {
  return kubectlError(["patch", "-n", namespace, resource, name, "--type=merge", "-p", JSON.stringify(body)]);
}

describe("R29 immutable fields and allowed transitions are enforced by the API server", () => {
  it("R29 R31 refuses moving a database to another server (serverRef is immutable)", async () => {
    const name = await createDatabase({ serverRef: { name: "srv-a" } });
    const err = await patch("edb", name, { spec: { serverRef: { name: "srv-b" } } });
    expect(err).toContain("spec.serverRef is immutable");
  });

  it("R22 allows promoting a Secondary to Primary", async () => {
    const name = await createDatabase({
      serverRef: { name: "srv" },
      replication: { role: "Secondary", primaryRef: { namespace: "tde-prod", name: "orders" } },
    });
    const err = await patch("edb", name, { spec: { replication: { role: "Primary", primaryRef: null } } });
    expect(err).toBe("");
  });

  it("R19 refuses turning a Primary into a Secondary (role changes only Secondary to Primary)", async () => {
    const name = await createDatabase({ serverRef: { name: "srv" }, replication: { role: "Primary" } });
    const err = await patch("edb", name, {
      spec: { replication: { role: "Secondary", primaryRef: { namespace: "tde-prod", name: "orders" } } },
    });
    expect(err).toContain("spec.replication.role can change only from Secondary to Primary");
  });

  it("R19 refuses turning an existing standalone database into a Secondary", async () => {
    const name = await createDatabase({ serverRef: { name: "srv" } });
    const err = await patch("edb", name, {
      spec: { replication: { role: "Secondary", primaryRef: { namespace: "tde-prod", name: "orders" } } },
    });
    expect(err).toContain("an existing database cannot become a Secondary");
  });

  it("R19 refuses pointing a Secondary at another primary (primaryRef is immutable)", async () => {
    const name = await createDatabase({
      serverRef: { name: "srv" },
      replication: { role: "Secondary", primaryRef: { namespace: "tde-prod", name: "orders" } },
    });
    const err = await patch("edb", name, {
      spec: { replication: { primaryRef: { namespace: "tde-prod", name: "invoices" } } },
    });
    expect(err).toContain("spec.replication.primaryRef is immutable");
  });

  it("R19 allows a Primary to add a secondary", async () => {
    const name = await createDatabase({ serverRef: { name: "srv" }, replication: { role: "Primary" } });
    const err = await patch("edb", name, {
      spec: { replication: { secondaries: [{ namespace: "tde-dr", name: "orders" }] } },
    });
    expect(err).toBe("");
  });

  it("R24 refuses changing a restore's source (restore is immutable)", async () => {
    const name = await createDatabase({
      serverRef: { name: "srv" },
      restore: { sourceRef: { name: "old" } },
    });
    const err = await patch("edb", name, { spec: { restore: { sourceRef: { name: "older" } } } });
    expect(err).toContain("spec.restore is immutable");
  });

  it("R24 refuses adding a restore to an existing database", async () => {
    const name = await createDatabase({ serverRef: { name: "srv" } });
    const err = await patch("edb", name, { spec: { restore: { sourceRef: { name: "old" } } } });
    expect(err).toContain("spec.restore can be set only when the database is created");
  });

  it("R24 refuses removing the restore of a restored database", async () => {
    const name = await createDatabase({
      serverRef: { name: "srv" },
      restore: { sourceRef: { name: "old" } },
    });
    const err = await patch("edb", name, { spec: { restore: null } });
    expect(err).toContain("spec.restore can be set only when the database is created");
  });

  it("R14 allows setting and changing a database's own protector (the operator decides R15)", async () => {
    const name = await createDatabase({ serverRef: { name: "srv" } });
    expect(
      await patch("edb", name, {
        spec: { encryptionProtector: { type: "CustomerManaged", keyProtectorRef: { name: "k1" } } },
      }),
    ).toBe("");
    expect(
      await patch("edb", name, { spec: { encryptionProtector: { keyProtectorRef: { name: "k2" } } } }),
    ).toBe("");
  });

  it("R23 refuses changing or adding a server's source", async () => {
    await kubectl(
      ["create", "-n", namespace, "-f", "-"],
      JSON.stringify({
        apiVersion: "tde.dev/v1alpha1",
        kind: "EncryptedServer",
        metadata: { name: "copy" },
        spec: { source: { kind: "Replica", sourceRef: { name: "primary" } } },
      }),
    );
    await kubectl(
      ["create", "-n", namespace, "-f", "-"],
      JSON.stringify({
        apiVersion: "tde.dev/v1alpha1",
        kind: "EncryptedServer",
        metadata: { name: "plain" },
        spec: {},
      }),
    );
    expect(await patch("esrv", "copy", { spec: { source: { sourceRef: { name: "other" } } } })).toContain(
      "spec.source is immutable",
    );
    expect(
      await patch("esrv", "plain", { spec: { source: { kind: "Restore", sourceRef: { name: "x" } } } }),
    ).toContain("spec.source can be set only when the server is created");
  });

  it("R11 allows changing revalidationToken and the grace period", async () => {
    expect(
      await patch("esrv", "plain", {
        spec: { revalidationToken: "2025-06-01", keyAccessGracePeriod: "90s" },
      }),
    ).toBe("");
  });
});

describe("R27 the status subresource takes conditions in the standard shape", () => {
  it("accepts a status with conditions through /status and ignores status on the main resource", async () => {
    const name = await createDatabase({ serverRef: { name: "srv" } });
    const status = {
      observedGeneration: 1,
      state: "Available",
      conditions: [
        {
          type: "Ready",
          status: "True",
          reason: "Available",
          message: "the DEK is protected",
          lastTransitionTime: "2025-06-01T12:00:00Z",
          observedGeneration: 1,
        },
      ],
      effectiveProtector: {
        source: "Server",
        type: "ServiceManaged",
        keyID: "local://tde-system/service-kek/v1",
        thumbprint: "ab".repeat(32),
        thumbprintShort: "abababababab",
      },
      keyList: [
        {
          keyID: "local://tde-system/service-kek/v1",
          thumbprint: "ab".repeat(32),
          role: "protector",
          since: "2025-06-01T12:00:00Z",
        },
      ],
    };
    const err = await kubectlError([
      "patch",
      "-n",
      namespace,
      "edb",
      name,
      "--subresource=status",
      "--type=merge",
      "-p",
      JSON.stringify({ status }),
    ]);
    expect(err).toBe("");
    const { stdout } = await kubectl(["get", "-n", namespace, "edb", name]);
    expect(stdout).toMatch(/SERVER\s+STATE\s+SOURCE\s+THUMBPRINT\s+KEY ACCESS\s+AGE/);
    expect(stdout).toMatch(/srv\s+Available\s+Server\s+abababababab/);
  });

  it("refuses a condition without a reason", async () => {
    const name = await createDatabase({ serverRef: { name: "srv" } });
    const err = await kubectlError([
      "patch",
      "-n",
      namespace,
      "edb",
      name,
      "--subresource=status",
      "--type=merge",
      "-p",
      JSON.stringify({
        status: {
          conditions: [
            { type: "Ready", status: "Maybe", message: "", lastTransitionTime: "2025-06-01T12:00:00Z" },
          ],
        },
      }),
    ]);
    expect(err).toContain('status.conditions[0].status: Unsupported value: "Maybe"');
    expect(err).toContain("status.conditions[0].reason: Required value");
  });
});

describe("kubectl explain prints the field docs", () => {
  it("explains encrypteddatabases.spec.encryptionProtector", async () => {
    let out = "";
    for (let i = 0; i < 50; i++) {
      const res = await kubectlError(["explain", "encrypteddatabases.spec.encryptionProtector"]).then(
        async (err) =>
          err === ""
            ? (await kubectl(["explain", "encrypteddatabases.spec.encryptionProtector"])).stdout
            : "",
      );
      if (res.includes("keyProtectorRef")) {
        out = res;
        break;
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(out).toContain("The database's own protector, overriding the server's");
    expect(out).toContain("keyProtectorRef");
    expect(out).toContain("ServiceManaged");
    expect(out).toMatch(/type\s+<string> -required-/);
  });

  it("explains keyprotectors.spec.identity.type with its enum and default", async () => {
    const { stdout } = await kubectl(["explain", "kp.spec.identity.type"]);
    expect(stdout).toContain("How to authenticate");
    expect(stdout).toMatch(/ClientSecret/);
  });
});
