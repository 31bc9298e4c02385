import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, expectTypeOf, it } from "vitest";
import { parseAllDocuments } from "yaml";
import {
  API_VERSION,
  type EncryptedDatabase,
  type EncryptedDatabaseInput,
  type EncryptedServer,
  type EncryptedServerInput,
  type IdentityType,
  type KeyProtector,
  type KeyProtectorInput,
  type ProtectorType,
  type ResourceState,
} from "../../../src/api/index.js";

const samples = join(import.meta.dirname, "..", "..", "..", "deploy", "samples");

describe("the TypeScript types", () => {
  it("describe served objects with every default present", () => {
    const server: EncryptedServer = {
      apiVersion: API_VERSION,
      kind: "EncryptedServer",
      metadata: { name: "s", namespace: "n", generation: 1 },
      spec: {
        protector: { type: "ServiceManaged" },
        keyAccessGracePeriod: "10m",
        revalidation: "Manual",
        enforcement: "ScaleToZero",
        deletionPolicy: "Retain",
      },
      status: { state: "Available", conditions: [] },
    };
    expectTypeOf(server.spec.protector.type).toEqualTypeOf<ProtectorType>();
    expectTypeOf(server.status!.state).toEqualTypeOf<ResourceState | undefined>();

    const kp: KeyProtector = {
      apiVersion: API_VERSION,
      kind: "KeyProtector",
      metadata: { name: "k" },
      spec: {
        provider: "Local",
        local: { secretRef: { name: "kek" } },
        requirements: {
          allowedKeySizes: [2048, 3072],
          allowExpiry: false,
          requireRecoverable: true,
          minimumRecoverableDays: 90,
        },
        autoRotationWindow: "24h",
      },
    };
    expectTypeOf(kp.spec.requirements.allowedKeySizes).toEqualTypeOf<(2048 | 3072 | 4096)[]>();
    expectTypeOf<NonNullable<KeyProtector["spec"]["identity"]>["type"]>().toEqualTypeOf<IdentityType>();

    const db: EncryptedDatabase = {
      apiVersion: API_VERSION,
      kind: "EncryptedDatabase",
      metadata: { name: "d" },
      spec: { serverRef: { name: "s" }, autoRotation: true, deletionPolicy: "Retain" },
      status: {
        effectiveProtector: {
          source: "Server",
          type: "ServiceManaged",
          keyID: "id",
          thumbprint: "ab",
          thumbprintShort: "ab",
        },
        keyList: [{ keyID: "id", thumbprint: "ab", role: "protector", since: "2025-06-01T12:00:00Z" }],
      },
    };
    expect(db.spec.serverRef.name).toBe("s");
  });

  it("let samples be read as the Input types (defaults may be absent)", () => {
    const docs = [
      "01-server-service-managed.yaml",
      "09-database-own-key.yaml",
      "06-azure-key-client-secret.yaml",
    ]
      .flatMap((f) => parseAllDocuments(readFileSync(join(samples, f), "utf8")))
      .map((d) => d.toJS() as KeyProtectorInput | EncryptedServerInput | EncryptedDatabaseInput);
    const db = docs.find((d): d is EncryptedDatabaseInput => d.kind === "EncryptedDatabase");
    expect(db?.spec.encryptionProtector?.keyProtectorRef?.name).toBe("invoices-key");
    const kp = docs.find(
      (d): d is KeyProtectorInput => d.kind === "KeyProtector" && d.spec.provider === "AzureKeyVault",
    );
    expect(kp?.spec.identity?.clientSecretRef).toEqual({ name: "payments-sp", key: "clientSecret" });
  });
});
