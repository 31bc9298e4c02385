import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { createTestNamespace, kubectl, testKubeConfig } from "../../harness/kube.js";
import { installCrds, kubectlError, repoRoot } from "./install.js";

const samplesDir = join(repoRoot, "deploy", "samples");
const invalidDir = join(repoRoot, "test", "fixtures", "invalid");
const samples = readdirSync(samplesDir).filter((f) => f.endsWith(".yaml"));

interface InvalidCase {
  file: string;
  why: string;
  expects: string[];
}
const invalidCases: InvalidCase[] = readdirSync(invalidDir)
  .filter((f) => f.endsWith(".yaml"))
  .map((file) => {
    const text = readFileSync(join(invalidDir, file), "utf8");
    const comments = text.split("\n").filter((l) => l.startsWith("#"));
    const expects = comments
      .filter((l) => l.startsWith("# expect: "))
      .map((l) => l.slice("# expect: ".length));
    const why = comments.find((l) => !l.startsWith("# expect: "))?.slice(2) ?? "";
    return { file, why, expects };
  });

const kc = testKubeConfig();
let namespace = "";

beforeAll(async () => {
  await installCrds();
  namespace = await createTestNamespace(kc, "api");
});

describe("the generated CRDs on a real API server", () => {
  it("R30 are Established with short names kp, esrv, edb and the category tde", async () => {
    const { stdout } = await kubectl(["api-resources", "--api-group=tde.dev", "-o", "wide"]);
    for (const line of ["keyprotectors", "encryptedservers", "encrypteddatabases"])
      expect(stdout).toContain(line);
    for (const short of ["kp", "esrv", "edb"]) expect(stdout).toMatch(new RegExp(`\\b${short}\\b`));
    const { stdout: cats } = await kubectl(["api-resources", "--categories=tde", "-o", "name"]);
    expect(cats.trim().split("\n").sort()).toEqual([
      "encrypteddatabases.tde.dev",
      "encryptedservers.tde.dev",
      "keyprotectors.tde.dev",
    ]);
  });
});

describe("R29 every sample under deploy/samples is accepted", () => {
  it("has samples for every kind", () => {
    const kinds = new Set(
      samples.flatMap((f) =>
        parseAllDocuments(readFileSync(join(samplesDir, f), "utf8")).map((d) => d.toJS()?.kind as string),
      ),
    );
    expect([...kinds].sort()).toEqual(["EncryptedDatabase", "EncryptedServer", "KeyProtector"]);
  });

  it.each(samples)("%s is created as written", async (file) => {
    const ns = await createTestNamespace(kc, "sample");
    const err = await kubectlError(["create", "-n", ns, "-f", join(samplesDir, file)]);
    expect(err).toBe("");
  });
});

describe("R29 defaults are written by the API server", () => {
  it("an empty EncryptedServer spec gets the service-managed key, 10m grace, Manual, ScaleToZero, Retain", async () => {
    await kubectl(
      ["create", "-n", namespace, "-f", "-"],
      JSON.stringify({
        apiVersion: "tde.dev/v1alpha1",
        kind: "EncryptedServer",
        metadata: { name: "defaults" },
        spec: {},
      }),
    );
    const { stdout } = await kubectl(["get", "-n", namespace, "esrv", "defaults", "-o", "json"]);
    expect(JSON.parse(stdout).spec).toEqual({
      protector: { type: "ServiceManaged" },
      keyAccessGracePeriod: "10m",
      revalidation: "Manual",
      enforcement: "ScaleToZero",
      deletionPolicy: "Retain",
    });
  });

  it("a KeyProtector gets requirements 2048/3072, no expiry, recoverable for 90 days, identity Default, 24h window", async () => {
    await kubectl(
      ["create", "-n", namespace, "-f", "-"],
      JSON.stringify({
        apiVersion: "tde.dev/v1alpha1",
        kind: "KeyProtector",
        metadata: { name: "defaults" },
        spec: {
          provider: "AzureKeyVault",
          azureKeyVault: { vaultURL: "https://kv.vault.azure.net", keyName: "k" },
          identity: {},
        },
      }),
    );
    const { stdout } = await kubectl(["get", "-n", namespace, "kp", "defaults", "-o", "json"]);
    const spec = JSON.parse(stdout).spec;
    expect(spec.requirements).toEqual({
      allowedKeySizes: [2048, 3072],
      allowExpiry: false,
      requireRecoverable: true,
      minimumRecoverableDays: 90,
    });
    expect(spec.identity).toEqual({ type: "Default" });
    expect(spec.autoRotationWindow).toBe("24h");
  });

  it("an EncryptedDatabase gets autoRotation true and deletionPolicy Retain", async () => {
    await kubectl(
      ["create", "-n", namespace, "-f", "-"],
      JSON.stringify({
        apiVersion: "tde.dev/v1alpha1",
        kind: "EncryptedDatabase",
        metadata: { name: "defaults" },
        spec: { serverRef: { name: "defaults" } },
      }),
    );
    const { stdout } = await kubectl(["get", "-n", namespace, "edb", "defaults", "-o", "json"]);
    expect(JSON.parse(stdout).spec).toEqual({
      serverRef: { name: "defaults" },
      autoRotation: true,
      deletionPolicy: "Retain",
    });
  });
});

describe("R29 invalid manifests under test/fixtures/invalid are refused with a message naming the field and the fix", () => {
  it("has at least 40 of them, each with an expected message", () => {
    expect(invalidCases.length).toBeGreaterThanOrEqual(40);
    for (const c of invalidCases) expect(c.expects.length, c.file).toBeGreaterThan(0);
  });

  it.each(invalidCases)("R29 $file: $why", async ({ file, expects }) => {
    const err = await kubectlError([
      "create",
      "--dry-run=server",
      "-n",
      namespace,
      "-f",
      join(invalidDir, file),
    ]);
    expect(err, `${file} was accepted`).not.toBe("");
    for (const fragment of expects) expect(err).toContain(fragment);
  });
});
