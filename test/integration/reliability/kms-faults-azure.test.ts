/**
 * KMS faults in front of Lowkey Vault, the operator as its own process with an AzureKeyVault
 * KeyProtector (issue 19; R10, R11, R4): the Azure twin of kms-faults.test.ts.
 *
 * The fault proxy (test/harness/fault-proxy.ts) terminates TLS with a certificate of its own CA
 * and forwards to Lowkey Vault keeping the client's Host, so that the key ids Lowkey Vault
 * answers name the proxy and every KMS call of the operator (describe, wrap, unwrap) goes through
 * it. The operator trusts both CAs through NODE_EXTRA_CA_CERTS and authenticates with Lowkey
 * Vault's managed-identity endpoint (IDENTITY_ENDPOINT). 30% faults (429 with Retry-After, 500,
 * 503, resets, slow answers) for 9/10 of the grace period: nothing becomes Inaccessible, no DEK
 * changes, and the key is Accessible again after the faults.
 *
 * A live journey: it needs Lowkey Vault (a jar); without one it is reported as skipped, with the
 * reason.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { rootCertificates } from "node:tls";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { FaultProxy } from "../../harness/fault-proxy.js";
import { generateServerTls } from "../../harness/pki.js";
import {
  type Api,
  api,
  cond,
  type EncryptedServer,
  type KeyProtector,
  kc,
  suffix,
  waitFor,
} from "../controllers/helpers.js";
import { OperatorProcess, scratchDir, sleep } from "./support.js";

const vault = inject("lowkeyVault");
const skipReason = vault.available ? undefined : vault.reason;

const id = suffix();
const ns = `kmsfa-${id}`;
const opNs = `kmsfa-op-${id}`;
const GRACE_MS = 40_000;
const FAULT_WINDOW_MS = (GRACE_MS * 9) / 10;
const KEY = "kmsf-azure";
const SERVERS = ["srv-0", "srv-1"];
const log = (line: string) => process.stderr.write(`[kms-faults-azure] ${line}\n`);

let a: Api;
let proxy: FaultProxy;
let op: OperatorProcess;
const dekIDs = new Map<string, string>();
const inaccessibleSeen: string[] = [];

const server = (name: string) => a.get<EncryptedServer>("EncryptedServer", ns, name);
const keyProtector = () => a.get<KeyProtector>("KeyProtector", ns, "kp");

describe.skipIf(skipReason !== undefined)(
  `R10 KMS faults through a fault proxy in front of Lowkey Vault, the operator as its own process${
    skipReason ? ` (skipped: ${skipReason})` : ""
  }`,
  () => {
    beforeAll(async () => {
      if (!vault.available) return;
      a = api(kc());
      const dir = scratchDir("kmsfa");
      const tls = generateServerTls(dir, ["127.0.0.1"], "kms-fault-proxy");
      proxy = await FaultProxy.start({
        upstream: {
          url: vault.baseURL,
          ca: [...rootCertificates, vault.caPem].join("\n"),
          preserveHost: true,
        },
        tls: { cert: readFileSync(tls.cert), key: readFileSync(tls.key) },
      });
      const cas = join(dir, "cas.pem");
      writeFileSync(cas, `${vault.caPem}\n${tls.caPem}`);

      // the key, made directly in the vault
      const { ManagedIdentityCredential } = await import("@azure/identity");
      const { KeyClient } = await import("@azure/keyvault-keys");
      process.env.IDENTITY_ENDPOINT = vault.identityEndpoint;
      process.env.IDENTITY_HEADER = "header";
      const admin = new KeyClient(vault.baseURL, new ManagedIdentityCredential(), {
        disableChallengeResourceVerification: true,
        tlsOptions: { ca: [...rootCertificates, vault.caPem] },
      });
      await admin.createRsaKey(KEY, {
        keySize: 2048,
        keyOps: ["encrypt", "decrypt", "wrapKey", "unwrapKey"],
      });

      for (const name of [ns, opNs]) await a.core.createNamespace({ body: { metadata: { name } } });
      op = await OperatorProcess.start({
        operatorNamespace: opNs,
        watchNamespaces: [ns],
        logFile: join(dir, "operator.log"),
        probeInterval: "1s",
        logLevel: "info",
        extraArgs: ["--azure-disable-challenge-resource-verification"],
        env: {
          NODE_EXTRA_CA_CERTS: cas,
          IDENTITY_ENDPOINT: vault.identityEndpoint,
          IDENTITY_HEADER: "header",
        },
      });
      log(`operator log ${op.logFile}; proxy ${proxy.url} -> ${vault.baseURL}, seed ${proxy.seed}`);
      await a.create("KeyProtector", ns, "kp", {
        provider: "AzureKeyVault",
        azureKeyVault: { vaultURL: proxy.url, keyName: KEY },
        identity: { type: "ManagedIdentity" },
      });
      await waitFor("KeyProtector Ready", keyProtector, (o) => cond(o, "Ready")?.status === "True", 60_000);
      for (const name of SERVERS) {
        await a.create("EncryptedServer", ns, name, {
          protector: { type: "CustomerManaged", keyProtectorRef: { name: "kp" } },
          keyAccessGracePeriod: `${GRACE_MS / 1000}s`,
          revalidation: "Manual",
          enforcement: "None",
        });
      }
      for (const name of SERVERS) {
        const s = await waitFor(
          `${name} Available`,
          () => server(name),
          (o) => o.status?.state === "Available",
          90_000,
        );
        dekIDs.set(name, s.status!.dekID!);
      }
    }, 240_000);

    afterAll(async () => {
      await op?.stop();
      await proxy?.stop();
    });

    it("R10 R4 30% faults (429 + Retry-After, 500, 503, resets, slow answers) for 9/10 of the grace period make nothing Inaccessible and change no DEK", async () => {
      expect(proxy.counts.forwarded).toBeGreaterThan(0); // the operator's KMS calls do go through it
      proxy.resetCounts();
      await proxy.setFaults({
        rate: 0.3,
        mix: { throttle: 2, error500: 1, error503: 1, reset: 1, slow: 1 },
        retryAfterSeconds: 1,
        slowMs: 1_000,
      });
      const until = Date.now() + FAULT_WINDOW_MS;
      while (Date.now() < until) {
        for (const name of SERVERS)
          if ((await server(name)).status?.state === "Inaccessible") inaccessibleSeen.push(name);
        await sleep(500);
      }
      await proxy.heal();
      const injected = proxy.snapshot();
      log(`faults: ${JSON.stringify(injected)}`);
      expect(injected.faults.throttle).toBeGreaterThan(0);
      expect(injected.forwarded).toBeGreaterThan(0);
      await waitFor(
        "the KeyProtector accessible again",
        keyProtector,
        (o) => cond(o, "Accessible")?.status === "True",
        30_000,
      );
      // past the deadline a loss starting with the faults would have had
      await sleep(GRACE_MS - FAULT_WINDOW_MS + 5_000);
      for (const name of SERVERS) {
        const s = await server(name);
        if (s.status?.state === "Inaccessible") inaccessibleSeen.push(name);
        expect(s.status?.state, name).toBe("Available");
        expect(s.status?.dekID, name).toBe(dekIDs.get(name));
      }
      expect(inaccessibleSeen).toEqual([]);
    }, 180_000);
  },
);
