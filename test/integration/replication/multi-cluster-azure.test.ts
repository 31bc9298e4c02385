/**
 * R19-R21 R3 across clusters with a vault per region: the primary in cluster "east" (the harness's
 * control plane) on Lowkey Vault's first vault, its secondary in cluster "west" (another real
 * control plane) on the second vault, the same key material imported into both through the real
 * SDK. The secondary copies the primary's DEK by unwrapping the primary's envelope with its own
 * vault's copy of the key (R20), and a rotation to a second imported key runs in order (R21).
 * Each operator reads the other cluster only as the chart's remote reader, through a link of its
 * own. Needs Lowkey Vault (a jar); without one it is reported as skipped, with the reason. The
 * same journeys on Local keys, with a partition and a promotion, are multi-cluster.test.ts.
 */
import { rootCertificates } from "node:tls";
import type * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import type { KeyProtector } from "../../../src/api/index.js";
import { findWrapByThumbprint } from "../../../src/crypto/index.js";
import { AzureKeyVaultProvider } from "../../../src/kms/azure-key-vault.js";
import { importRsaPem } from "../../harness/azure-test-vault.js";
import { startCluster } from "../../harness/clusters.js";
import type { ControlPlane } from "../../harness/control-plane.js";
import type { FaultProxy } from "../../harness/fault-proxy.js";
import { startTestOperator, type TestOperator } from "../../harness/operator.js";
import {
  type Api,
  api,
  cond,
  type EncryptedDatabase,
  kc,
  keyMaterial,
  readEnvelope,
  suffix,
  waitFor,
} from "../controllers/helpers.js";
import { createGeoPair, harnessEnd, linkClusters, planeEnd } from "./geo-support.js";

const vault = inject("lowkeyVault");
const skipReason = vault.available ? undefined : vault.reason;

const id = suffix();
const ns = `mca-${id}`;
const opEast = `mca-op-east-${id}`;
const opWest = `mca-op-west-${id}`;
/** Lowkey Vault is shared by the run's files: keys of this file's own */
const keyName = (n: number) => `geo${n}-${id}`;
const KEY_OPS = ["encrypt", "decrypt", "wrapKey", "unwrapKey"] as const;

let e: Api;
let w: Api;
let east: TestOperator;
let west: TestOperator;
let westPlane: ControlPlane;
const links: FaultProxy[] = [];

const material = { one: keyMaterial(), two: keyMaterial() };

/** The same key material imported into a vault (a BYOK import), as a platform team does in each region. */
async function importInto(vaultURL: string, name: string, pem: string): Promise<void> {
  const { ManagedIdentityCredential } = await import("@azure/identity");
  const { KeyClient } = await import("@azure/keyvault-keys");
  if (!vault.available) return;
  const admin = new KeyClient(vaultURL, new ManagedIdentityCredential(), {
    disableChallengeResourceVerification: true,
    tlsOptions: { ca: [...rootCertificates, vault.caPem] },
  });
  await importRsaPem(admin, name, pem, [...KEY_OPS]);
}

/** A KeyProtector on a vault key, once Ready: its thumbprint. */
async function vaultKeyProtector(a: Api, name: string, vaultURL: string, key: string): Promise<string> {
  await a.create("KeyProtector", ns, name, {
    provider: "AzureKeyVault",
    azureKeyVault: { vaultURL, keyName: key },
    identity: { type: "ManagedIdentity" },
  });
  const ready = await waitFor(
    `KeyProtector ${name} Ready`,
    () => a.get<KeyProtector>("KeyProtector", ns, name),
    (o) => cond(o, "Ready")?.status === "True",
    60_000,
  );
  return ready.status?.thumbprint ?? "";
}

async function provider(): Promise<AzureKeyVaultProvider> {
  const { ManagedIdentityCredential } = await import("@azure/identity");
  const credential = new ManagedIdentityCredential();
  return new AzureKeyVaultProvider({
    disableChallengeResourceVerification: true,
    caCertificates: vault.available ? vault.caPem : "",
    credentialFactory: () => credential,
  });
}

const primary = () => e.get<EncryptedDatabase>("EncryptedDatabase", ns, "orders");
const secondary = () => w.get<EncryptedDatabase>("EncryptedDatabase", ns, "orders");

describe.skipIf(skipReason !== undefined)(
  `R19-R21 geo-replication across clusters, each on its own vault (AzureKeyVault on Lowkey Vault's two vaults)${
    skipReason ? ` (skipped: ${skipReason})` : ""
  }`,
  () => {
    const t: Record<string, string> = {};

    beforeAll(async () => {
      if (!vault.available) return;
      process.env.IDENTITY_ENDPOINT = vault.identityEndpoint;
      process.env.IDENTITY_HEADER = "header";
      e = api(kc());
      const started = await startCluster();
      westPlane = started.plane;
      const westKc: k8s.KubeConfig = started.kc;
      w = api(westKc);
      east = await startTestOperator({
        watchNamespaces: [ns],
        operatorNamespace: opEast,
        clusterName: "east",
        remoteReadTtlMs: 500,
        azure: await provider(),
      });
      west = await startTestOperator({
        cluster: westKc,
        kubeConfig: westKc,
        watchNamespaces: [ns],
        operatorNamespace: opWest,
        clusterName: "west",
        remoteReadTtlMs: 500,
        azure: await provider(),
      });
      links.push(
        ...(await linkClusters(harnessEnd(opEast), planeEnd("west", westPlane, westKc, opWest), [ns])),
      );
      // R3: the same material in both regions' vaults
      for (const url of [vault.baseURL, vault.secondBaseURL]) {
        await importInto(url, keyName(1), material.one);
        await importInto(url, keyName(2), material.two);
      }
    }, 300_000);

    afterAll(async () => {
      await east?.stop();
      await west?.stop();
      for (const l of links) await l.stop();
      await westPlane?.stop();
    });

    it("R20 R3 R31 the secondary in west holds the primary's DEK, unwrapped and wrapped with west's own vault's copy of the key", async () => {
      if (!vault.available) return;
      t.one = await vaultKeyProtector(e, "e1", vault.baseURL, keyName(1));
      t.two = await vaultKeyProtector(e, "e2", vault.baseURL, keyName(2));
      expect(await vaultKeyProtector(w, "w1", vault.secondBaseURL, keyName(1))).toBe(t.one);
      expect(await vaultKeyProtector(w, "w2", vault.secondBaseURL, keyName(2))).toBe(t.two);
      await createGeoPair(e, w, ns, "e1", "w1");
      const p = await waitFor("primary Ready", primary, (o) => cond(o, "Ready")?.status === "True", 60_000);
      const s = await waitFor(
        "secondary Available",
        secondary,
        (o) => o.status?.state === "Available",
        90_000,
      );
      expect(s.status?.dekID).toBe(p.status?.dekID);
      expect(cond(s, "KeyListSynced")?.status).toBe("True");
      // each envelope holds its own vault's key ids only: no wrap crossed between the vaults
      const mine = await readEnvelope(w, ns, s.status!.envelopeSecretName!);
      expect(mine.kcv).toBe((await readEnvelope(e, ns, p.status!.envelopeSecretName!)).kcv);
      expect(mine.wraps.map((x) => x.keyID)).toEqual([
        expect.stringMatching(new RegExp(`^${vault.secondBaseURL}/keys/${keyName(1)}/`)),
      ]);
      const theirs = await readEnvelope(e, ns, p.status!.envelopeSecretName!);
      for (const wrap of theirs.wraps) expect(wrap.keyID.startsWith(`${vault.baseURL}/keys/`)).toBe(true);
    });

    it("R21 a rotation to the second key runs in order: west holds a proven wrap under its own copy before the primary switches, then follows", async () => {
      if (!vault.available) return;
      await e.patch("EncryptedDatabase", ns, "orders", {
        spec: { encryptionProtector: { keyProtectorRef: { name: "e2" } } },
      });
      const switched = await waitFor(
        "primary switched",
        primary,
        (o) => o.status?.effectiveProtector?.thumbprint === t.two,
        90_000,
      );
      const since = switched.status?.keyList?.find(
        (k) => k.thumbprint === t.two && k.role === "protector",
      )?.since;
      const s = await secondary();
      const wrap = findWrapByThumbprint(
        await readEnvelope(w, ns, s.status!.envelopeSecretName!),
        t.two ?? "",
      );
      expect(wrap?.keyID.startsWith(`${vault.secondBaseURL}/keys/${keyName(2)}/`)).toBe(true);
      expect(Date.parse(wrap?.addedAt ?? "")).toBeLessThanOrEqual(Date.parse(since ?? ""));
      const followed = await waitFor(
        "west follows",
        secondary,
        (o) => o.status?.effectiveProtector?.thumbprint === t.two,
        90_000,
      );
      expect(followed.status?.effectiveProtector?.keyProtectorName).toBe("w2");
      expect(followed.status?.dekID).toBe(switched.status?.dekID);
      expect(followed.status?.state).toBe("Available");
    });
  },
);
