import { expect } from "vitest";
import type {
  Condition,
  EncryptedDatabase,
  EncryptedServer,
  KeyListEntry,
  KeyProtector,
} from "../../../src/api/index.js";
import { parseCommandLine, UsageError } from "../../../src/cli/args.js";

export const T0 = "2025-01-01T00:00:00Z";

export function cond(
  type: string,
  status: "True" | "False" | "Unknown",
  reason: string,
  message = "",
  observedGeneration = 1,
): Condition {
  return { type, status, reason, message, lastTransitionTime: T0, observedGeneration };
}

export function kp(
  name: string,
  over: { namespace?: string; thumbprint?: string; conditions?: Condition[]; azure?: boolean } = {},
): KeyProtector {
  const thumbprint = over.thumbprint;
  return {
    apiVersion: "tde.dev/v1alpha1",
    kind: "KeyProtector",
    metadata: { name, namespace: over.namespace ?? "shop", generation: 1 },
    spec: {
      provider: over.azure ? "AzureKeyVault" : "Local",
      ...(over.azure
        ? { azureKeyVault: { vaultURL: "https://shop-vault.vault.azure.net/", keyName: name } }
        : { local: { secretRef: { name: `${name}-kek` } } }),
      requirements: {} as KeyProtector["spec"]["requirements"],
      autoRotationWindow: "24h",
    },
    status: {
      ...(thumbprint ? { thumbprint, thumbprintShort: thumbprint.slice(0, 12) } : {}),
      conditions: over.conditions ?? [
        cond("Ready", "True", "Ready"),
        cond("Accessible", "True", "Accessible"),
      ],
    },
  } as KeyProtector;
}

export function server(
  name: string,
  over: {
    namespace?: string;
    keyProtector?: string;
    statusKeyProtector?: string;
    thumbprint?: string;
    state?: string;
    conditions?: Condition[];
    generation?: number;
  } = {},
): EncryptedServer {
  const type = over.keyProtector ? "CustomerManaged" : "ServiceManaged";
  const statusKp = over.statusKeyProtector ?? over.keyProtector;
  return {
    apiVersion: "tde.dev/v1alpha1",
    kind: "EncryptedServer",
    metadata: { name, namespace: over.namespace ?? "shop", generation: over.generation ?? 1 },
    spec: {
      protector: over.keyProtector ? { type, keyProtectorRef: { name: over.keyProtector } } : { type },
      keyAccessGracePeriod: "10m",
      revalidation: "Manual",
      enforcement: "ScaleToZero",
      deletionPolicy: "Retain",
    },
    status: {
      state: (over.state ?? "Available") as "Available",
      ...(over.thumbprint
        ? {
            protector: {
              type,
              ...(statusKp ? { keyProtectorName: statusKp } : {}),
              keyID: "https://vault/keys/k/1",
              thumbprint: over.thumbprint,
              thumbprintShort: over.thumbprint.slice(0, 12),
            },
          }
        : {}),
      conditions: over.conditions ?? [
        cond("Ready", "True", "Available"),
        cond("KeyAccessible", "True", "KeyAccessible"),
      ],
    },
  };
}

export function entry(
  thumbprint: string,
  since: string,
  until?: string,
  role: "protector" | "additional" = "protector",
  keyProtectorName?: string,
): KeyListEntry {
  return {
    keyID: `https://vault/keys/${thumbprint}/1`,
    thumbprint,
    role,
    since,
    ...(until ? { until } : {}),
    ...(keyProtectorName ? { keyProtectorName } : {}),
  };
}

export function database(
  name: string,
  over: {
    namespace?: string;
    server?: string;
    own?: string;
    keys?: string[];
    effective?: { source: "Database" | "Server"; keyProtectorName?: string; thumbprint: string };
    keyList?: KeyListEntry[];
    state?: string;
    conditions?: Condition[];
  } = {},
): EncryptedDatabase {
  return {
    apiVersion: "tde.dev/v1alpha1",
    kind: "EncryptedDatabase",
    metadata: { name, namespace: over.namespace ?? "shop", generation: 1 },
    spec: {
      serverRef: { name: over.server ?? "shop-db" },
      ...(over.own
        ? { encryptionProtector: { type: "CustomerManaged", keyProtectorRef: { name: over.own } } }
        : {}),
      ...(over.keys ? { keys: over.keys.map((k) => ({ keyProtectorRef: { name: k } })) } : {}),
      autoRotation: true,
      deletionPolicy: "Retain",
    },
    status: {
      state: (over.state ?? "Available") as "Available",
      ...(over.effective
        ? {
            effectiveProtector: {
              source: over.effective.source,
              type: over.effective.keyProtectorName ? "CustomerManaged" : "ServiceManaged",
              ...(over.effective.keyProtectorName
                ? { keyProtectorName: over.effective.keyProtectorName }
                : {}),
              keyID: "https://vault/keys/k/1",
              thumbprint: over.effective.thumbprint,
              thumbprintShort: over.effective.thumbprint.slice(0, 12),
            },
          }
        : {}),
      ...(over.keyList ? { keyList: over.keyList } : {}),
      conditions: over.conditions ?? [
        cond("Ready", "True", "Available"),
        cond("KeyAccessible", "True", "KeyAccessible"),
      ],
    },
  };
}

/** The UsageError message a command line is refused with (the test fails if it is accepted). */
export function usage(argv: string[]): string {
  try {
    parseCommandLine(argv);
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return (err as Error).message;
  }
  throw new Error(`accepted: ${argv.join(" ")}`);
}
