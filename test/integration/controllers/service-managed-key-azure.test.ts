/**
 * R7 R9 R16: moving the service-managed key off the operator's Local key into a vault, as a
 * platform on Azure would: the in-process operator, the real API server, and an AzureKeyVault
 * KeyProtector on Lowkey Vault through the real SDK. Needs Lowkey Vault (a jar); without one it is
 * reported as skipped, with the reason. The Local-to-Local move, its hold and the failure cases are
 * proven without a vault in service-managed-key.test.ts.
 */
import { rootCertificates } from "node:tls";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { KeyProtector } from "../../../src/api/index.js";
import { type Envelope, protectorWrap, verifyUnwrapped, wrappedBytes } from "../../../src/crypto/index.js";
import { AzureKeyVaultProvider } from "../../../src/kms/azure-key-vault.js";
import { type KeyReference, refForKeyID } from "../../../src/kms/provider.js";
import { startTestOperator, type TestOperator, type TestOperatorOptions } from "../../harness/operator.js";
import {
  type Api,
  api,
  cond,
  type EncryptedDatabase,
  type EncryptedServer,
  envelopeOfResource,
  kc,
  type ResourceKind,
  recordedProtector,
  suffix,
  waitFor,
} from "./helpers.js";

const vault = inject("lowkeyVault");
const skipReason = vault.available ? undefined : vault.reason;
const vaultURL = vault.available ? vault.baseURL : "";

const id = suffix();
const ns = `int-smka-${id}`;
const opNs = `int-smka-op-${id}`;
const KEY = `smk-${id}`; // Lowkey Vault is shared by the run's files: a key of this file's own
const RETENTION_MS = 2_000;

let a: Api;
let op: TestOperator;
let azure: AzureKeyVaultProvider;

type Kind = ResourceKind;
const RESOURCES: [Kind, string][] = [
  ["EncryptedServer", "s1"],
  ["EncryptedServer", "s2"],
  ["EncryptedDatabase", "d1"],
];
const get = (kind: Kind, name: string) => a.get<EncryptedServer | EncryptedDatabase>(kind, ns, name);
const envelopeOf = (kind: Kind, name: string) => envelopeOfResource(a, kind, ns, name);
const kp = (name: string) => a.get<KeyProtector>("KeyProtector", opNs, name);

async function gauge(): Promise<string> {
  return [
    ...(await op.metrics.registry.metrics()).matchAll(/^tde_service_managed_single_point_of_loss\{.*$/gm),
  ]
    .map((m) => m[0])
    .sort()
    .join("; ");
}

async function start(options: Partial<TestOperatorOptions> = {}) {
  op = await startTestOperator({
    watchNamespaces: [ns],
    operatorNamespace: opNs,
    retainedWrapRetentionMs: RETENTION_MS,
    azure,
    ...options,
  });
}

describe.skipIf(skipReason !== undefined)(
  `R7 R9 R16 the service-managed key moved off the Local key into a vault (AzureKeyVault on Lowkey Vault)${
    skipReason ? ` (skipped: ${skipReason})` : ""
  }`,
  () => {
    const deks = new Map<string, { dekID: string; kcv: string }>();
    let localThumbprint = "";

    beforeAll(async () => {
      if (!vault.available) return;
      a = api(kc());
      process.env.IDENTITY_ENDPOINT = vault.identityEndpoint;
      process.env.IDENTITY_HEADER = "header";
      const { ManagedIdentityCredential } = await import("@azure/identity");
      const { KeyClient } = await import("@azure/keyvault-keys");
      const credential = new ManagedIdentityCredential();
      const admin = new KeyClient(vault.baseURL, credential, {
        disableChallengeResourceVerification: true,
        tlsOptions: { ca: [...rootCertificates, vault.caPem] },
      });
      await admin.createRsaKey(KEY, {
        keySize: 2048,
        keyOps: ["encrypt", "decrypt", "wrapKey", "unwrapKey"],
      });
      azure = new AzureKeyVaultProvider({
        disableChallengeResourceVerification: true,
        caCertificates: vault.caPem,
        credentialFactory: () => credential,
      });
      await start();
      for (const s of ["s1", "s2"])
        await a.create("EncryptedServer", ns, s, { protector: { type: "ServiceManaged" } });
      await a.create("EncryptedDatabase", ns, "d1", { serverRef: { name: "s1" } });
      for (const [kind, name] of RESOURCES) {
        await waitFor(
          `${kind} ${name} Ready`,
          () => get(kind, name),
          (o) => cond(o, "Ready")?.status === "True",
        );
        const e = await envelopeOf(kind, name);
        deks.set(name, { dekID: e.dekID, kcv: e.kcv });
      }
      localThumbprint = (await kp("tde-service-managed")).status?.thumbprint ?? "";
    }, 240_000);

    afterAll(async () => {
      await op?.stop();
    });

    it("R7 on the Local key the DEKs are a single point of loss; named an AzureKeyVault KeyProtector, every one is re-wrapped under the vault key online and the warning ends", async () => {
      await waitFor(
        "SinglePointOfLoss=True on the Local key's KeyProtector",
        () => kp("tde-service-managed"),
        (o) => cond(o, "SinglePointOfLoss")?.status === "True",
      );
      expect(await gauge()).toBe(
        'tde_service_managed_single_point_of_loss{kind="EncryptedDatabase"} 1; tde_service_managed_single_point_of_loss{kind="EncryptedServer"} 2',
      );

      await a.create("KeyProtector", opNs, "platform-kek", {
        provider: "AzureKeyVault",
        azureKeyVault: { vaultURL: vaultURL, keyName: KEY },
        identity: { type: "ManagedIdentity" },
      });
      const platform = await waitFor(
        "the vault KeyProtector Ready",
        () => kp("platform-kek"),
        (o) => cond(o, "Ready")?.status === "True",
        60_000,
      );
      const vaultThumbprint = platform.status?.thumbprint ?? "";
      await op.stop();
      await start({ serviceManagedKey: { namespace: opNs, name: "platform-kek" } });

      const moved: Record<string, Envelope> = {};
      for (const [kind, name] of RESOURCES) {
        const o = await waitFor(
          `${kind} ${name} on the vault key`,
          () => get(kind, name),
          (r) => recordedProtector(r)?.thumbprint === vaultThumbprint && cond(r, "Ready")?.status === "True",
          60_000,
        );
        expect(o.status?.state).toBe("Available");
        moved[name] = await envelopeOf(kind, name);
        const e = moved[name]!;
        expect({ dekID: e.dekID, kcv: e.kcv }, `${name}: the same DEK`).toEqual(deks.get(name));
        const wrap = protectorWrap(e)!;
        expect(wrap.keyID.startsWith(`${vaultURL}/keys/${KEY}/`)).toBe(true);
        // the vault unwraps it, and the KCV matches (R2)
        const ref: KeyReference = {
          provider: "AzureKeyVault",
          namespace: opNs,
          vaultURL: vaultURL,
          keyName: KEY,
          identity: { type: "ManagedIdentity" },
        };
        const dek = await azure.unwrap(refForKeyID(ref, wrap.keyID), wrappedBytes(wrap));
        verifyUnwrapped(e, dek, wrap.thumbprint);
        dek.fill(0);
      }
      // the warning ends: a vault key is no single point of loss, and the Local key is no longer the service-managed key
      await waitFor("the gauge at 0", gauge, (g) => !/ [1-9]/.test(g) && g.includes("EncryptedServer"));
      await waitFor(
        "no SinglePointOfLoss on the Local key's KeyProtector",
        () => kp("tde-service-managed"),
        (o) => !cond(o, "SinglePointOfLoss"),
      );
      expect(cond(await kp("platform-kek"), "SinglePointOfLoss")).toBeUndefined();
      // every DEK has the vault wrap: the Local wraps go once their retention window has passed
      await waitFor(
        "the Local wraps pruned",
        () => Promise.all(RESOURCES.map(([kind, name]) => envelopeOf(kind, name))),
        (es) => es.every((e) => e.wraps.length === 1 && e.wraps[0]!.thumbprint === vaultThumbprint),
        60_000,
      );
      expect(localThumbprint).not.toBe(vaultThumbprint);
    });
  },
);
