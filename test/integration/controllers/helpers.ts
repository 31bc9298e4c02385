import { generateKeyPairSync, randomBytes } from "node:crypto";
import * as k8s from "@kubernetes/client-node";
import { expect } from "vitest";
import {
  API_VERSION,
  type EncryptedDatabase,
  type EncryptedServer,
  type KeyProtector,
} from "../../../src/api/index.js";
import {
  decodeEnvelopeSecret,
  type Envelope,
  protectorWrap,
  verifyUnwrapped,
  wrappedBytes,
} from "../../../src/crypto/index.js";
import { LocalKeyProvider } from "../../../src/kms/local.js";
import { testKubeConfig } from "../../harness/kube.js";

export const kc = () => testKubeConfig();

export function suffix(): string {
  return randomBytes(3).toString("hex");
}

export function api(kcfg: k8s.KubeConfig) {
  const objects = kcfg.makeApiClient(k8s.CustomObjectsApi);
  const core = kcfg.makeApiClient(k8s.CoreV1Api);
  const local = new LocalKeyProvider(core);
  const plural = {
    KeyProtector: "keyprotectors",
    EncryptedServer: "encryptedservers",
    EncryptedDatabase: "encrypteddatabases",
  };
  type Kind = keyof typeof plural;
  const merge = k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch);
  return {
    core,
    local,
    async create(kind: Kind, namespace: string, name: string, spec: Record<string, unknown>) {
      await objects.createNamespacedCustomObject({
        group: "tde.dev",
        version: "v1alpha1",
        namespace,
        plural: plural[kind],
        body: { apiVersion: API_VERSION, kind, metadata: { name, namespace }, spec },
      });
    },
    async get<T>(kind: Kind, namespace: string, name: string): Promise<T> {
      return (await objects.getNamespacedCustomObject({
        group: "tde.dev",
        version: "v1alpha1",
        namespace,
        plural: plural[kind],
        name,
      })) as T;
    },
    async patch(kind: Kind, namespace: string, name: string, body: unknown) {
      await objects.patchNamespacedCustomObject(
        { group: "tde.dev", version: "v1alpha1", namespace, plural: plural[kind], name, body },
        merge,
      );
    },
    async delete(kind: Kind, namespace: string, name: string) {
      await objects.deleteNamespacedCustomObject({
        group: "tde.dev",
        version: "v1alpha1",
        namespace,
        plural: plural[kind],
        name,
      });
    },
  };
}

export type Api = ReturnType<typeof api>;

export async function waitFor<T>(
  what: string,
  read: () => Promise<T>,
  ok: (v: T) => boolean,
  timeoutMs = 30_000,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      last = await read();
      if (ok(last)) return last;
    } catch (error) {
      lastError = error;
    }
    await new Promise((r) => setTimeout(r, 150));
  }
  throw new Error(
    `timed out waiting for ${what}; last seen: ${JSON.stringify((last as { status?: unknown } | undefined)?.status ?? last ?? lastError)?.slice(0, 1500)}`,
  );
}

export const cond = (
  obj: { status?: { conditions?: { type: string; status: string; reason: string }[] } },
  type: string,
) => obj.status?.conditions?.find((c) => c.type === type);

export async function readEnvelope(a: Api, namespace: string, name: string): Promise<Envelope> {
  const secret = await a.core.readNamespacedSecret({ namespace, name });
  expect(secret.type).toBe("tde.dev/envelope");
  return decodeEnvelopeSecret(secret as { type?: string; data?: Record<string, string> });
}

/** A server or a database, by kind. */
export type ResourceKind = "EncryptedServer" | "EncryptedDatabase";

/** The envelope a server's or a database's status names (R2). */
export async function envelopeOfResource(
  a: Api,
  kind: ResourceKind,
  namespace: string,
  name: string,
): Promise<Envelope> {
  const o = await a.get<EncryptedServer | EncryptedDatabase>(kind, namespace, name);
  return readEnvelope(a, namespace, o.status?.envelopeSecretName ?? "");
}

/** The protector a status records: a server's `protector`, a database's `effectiveProtector` (R9, R13). */
export function recordedProtector(
  o: EncryptedServer | EncryptedDatabase,
): { type?: string; keyID?: string; thumbprint?: string } | undefined {
  const status = o.status as
    | {
        protector?: { type?: string; thumbprint?: string };
        effectiveProtector?: { type?: string; thumbprint?: string };
      }
    | undefined;
  return status?.protector ?? status?.effectiveProtector;
}

/** Unwraps a wrap of the envelope with the Local provider as a tenant would, and checks the KCV (R2). */
export async function unwrapsWithKcv(
  a: Api,
  envelope: Envelope,
  namespace: string,
  keyName: string,
  thumbprint?: string,
) {
  const wrap = thumbprint ? envelope.wraps.find((w) => w.thumbprint === thumbprint) : protectorWrap(envelope);
  if (!wrap) throw new Error("no such wrap");
  const dek = await a.local.unwrap(
    { provider: "Local", namespace, keyName, keyID: wrap.keyID },
    wrappedBytes(wrap),
  );
  verifyUnwrapped(envelope, dek, wrap.thumbprint);
  dek.fill(0);
  return true;
}

/** A Local KEK (RSA 2048) and a KeyProtector on it, once the KeyProtector is Ready. */
export async function createLocalKeyProtector(a: Api, namespace: string, name: string, keyName = name) {
  await a.local.createKey(namespace, keyName, { size: 2048 });
  await a.create("KeyProtector", namespace, name, {
    provider: "Local",
    local: { secretRef: { name: keyName } },
  });
  return waitFor(
    `KeyProtector ${name} Ready`,
    () => a.get<KeyProtector>("KeyProtector", namespace, name),
    (o) => cond(o, "Ready")?.status === "True",
  );
}

/** RSA 2048 key material (PKCS#8 PEM), to import into several regions' vaults (R3: one thumbprint). */
export function keyMaterial(): string {
  return generateKeyPairSync("rsa", { modulusLength: 2048 })
    .privateKey.export({ type: "pkcs8", format: "pem" })
    .toString();
}

/** The same key material imported into a region's vault (a Local key) and a KeyProtector for it: its thumbprint, once resolved. */
export async function importKeyProtector(
  a: Api,
  namespace: string,
  name: string,
  pem: string,
): Promise<string> {
  await a.local.importKey(namespace, `${name}-kek`, pem);
  await a.create("KeyProtector", namespace, name, {
    provider: "Local",
    local: { secretRef: { name: `${name}-kek` } },
    requirements: { requireRecoverable: false },
  });
  const resolved = await waitFor(
    `${namespace}/${name} resolved`,
    () => a.get<KeyProtector>("KeyProtector", namespace, name),
    (o) => Boolean(o.status?.thumbprint),
  );
  return resolved.status?.thumbprint ?? "";
}

export type { EncryptedDatabase, EncryptedServer, KeyProtector };
