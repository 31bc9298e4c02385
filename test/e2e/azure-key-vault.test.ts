/**
 * The operator as a user runs it, against a real Key Vault API (Lowkey Vault 7.3): its own
 * process, an AzureKeyVault KeyProtector with the system-assigned managed identity, a server
 * with a workload and a database, then the whole life of the key (issue 19):
 *
 * R2 R9 R13  server and database Available, every wrap's key id the vault's own
 * R6 R16     versions made within one second: the vault's current one wins, every time, and
 *            every dependant is re-wrapped to it
 * R6 R10 R11 the current version disabled: KeyDisabled (never KeyNotFound, never a move back to
 *            the older enabled version), Inaccessible at the grace deadline, replicas 0, the agent
 *            refuses (no fallback to a retained wrap); enabled again: revalidated, replicas back
 * R26        `tde-agent unwrap` through the vault writes a key file MariaDB starts with
 *
 * Live only: without a Lowkey Vault jar these are reported as skipped with the reason (the
 * provider's contract still runs from recordings in test/integration/kms).
 */
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { parseKeyFile } from "../../src/agent/key-file.js";
import { computeKcv, decodeEnvelopeSecret, type Envelope, protectorWrap } from "../../src/crypto/index.js";
import { ensureMariaDb, MariaDbServer } from "../harness/mariadb.js";
import {
  type Api,
  api,
  cond,
  type EncryptedDatabase,
  type EncryptedServer,
  type KeyProtector,
  kc,
  suffix,
  waitFor,
} from "../integration/controllers/helpers.js";
import { OperatorProcess, scratchDir } from "../integration/reliability/support.js";
import {
  createWorkload,
  readWorkload,
  type WorkloadApis,
  workloadApis,
} from "../integration/watchdog/support.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const vault = inject("lowkeyVault");
const live = vault.available;
const title = `live journeys: the operator process and tde-agent against Lowkey Vault${
  vault.available
    ? ` ${vault.version}`
    : ` (skipped: ${vault.reason}; the provider's contract runs from recordings)`
}`;

const id = suffix();
const ns = `akv-${id}`;
const opNs = `akv-op-${id}`;
const KEY = `journey-${id}`;
const GRACE_MS = 8_000;
/** Lowkey Vault wraps through its encrypt operation: a key needs encrypt and decrypt too */
const KEY_OPS = ["encrypt", "decrypt", "wrapKey", "unwrapKey"];

let a: Api;
let w: WorkloadApis;
let op: OperatorProcess | undefined;
let dir: string;
let admin: import("@azure/keyvault-keys").KeyClient;

/** The environment a pod of ours would have on this vault: the token endpoint and the vault's CA. */
function vaultEnv(): Record<string, string> {
  if (!vault.available) throw new Error("unreachable");
  return {
    IDENTITY_ENDPOINT: vault.identityEndpoint,
    IDENTITY_HEADER: "lowkey",
    NODE_EXTRA_CA_CERTS: vault.caFile,
  };
}
const vaultFlags = ["--azure-disable-challenge-resource-verification"];

const server = () => a.get<EncryptedServer>("EncryptedServer", ns, "orders");
const database = () => a.get<EncryptedDatabase>("EncryptedDatabase", ns, "orders-db");
const protector = () => a.get<KeyProtector>("KeyProtector", ns, "vault-key");
const envelopeOf = async (name: string): Promise<Envelope> =>
  decodeEnvelopeSecret(
    (await a.core.readNamespacedSecret({ namespace: ns, name })) as {
      type?: string;
      data?: Record<string, string>;
    },
  );
const currentVersion = async () => (await admin.getKey(KEY)).properties.version ?? "";

interface AgentResult {
  code: number;
  stderr: string;
}

/** The real `tde-agent` as a pod's init container runs it, with the pod's managed identity. */
function runAgent(envelope: Envelope, out: string): Promise<AgentResult> {
  const envelopeFile = join(dir, `envelope-${Date.now()}.json`);
  writeFileSync(envelopeFile, Buffer.from(JSON.stringify(envelopeDocument(envelope))));
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [
        "--import",
        "tsx",
        join(root, "src/agent/main.ts"),
        "unwrap",
        "--envelope",
        envelopeFile,
        "--out",
        out,
        "--format",
        "mariadb",
        "--identity",
        "ManagedIdentity",
        "--timeout",
        "30s",
        ...vaultFlags,
      ],
      { cwd: root, env: { ...process.env, ...vaultEnv(), KUBERNETES_SERVICE_HOST: "" }, timeout: 60_000 },
      (error, _stdout, stderr) =>
        resolve({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stderr }),
    );
  });
}

/** The envelope document as the agent reads it from a mounted Secret's envelope.json. */
function envelopeDocument(e: Envelope) {
  return {
    version: e.version,
    dekID: e.dekID,
    kcv: e.kcv,
    wraps: e.wraps,
    ...(e.ownerBinding ? { ownerBinding: e.ownerBinding } : {}),
  };
}

describe.skipIf(!live)(title, () => {
  beforeAll(async () => {
    if (!vault.available) return;
    dir = scratchDir("akv-journey");
    a = api(kc());
    w = workloadApis(kc());
    for (const name of [ns, opNs]) await a.core.createNamespace({ body: { metadata: { name } } });
    Object.assign(process.env, vaultEnv());
    const { ManagedIdentityCredential } = await import("@azure/identity");
    const { KeyClient } = await import("@azure/keyvault-keys");
    const { readFileSync } = await import("node:fs");
    const { rootCertificates } = await import("node:tls");
    admin = new KeyClient(vault.baseURL, new ManagedIdentityCredential(), {
      disableChallengeResourceVerification: true,
      tlsOptions: { ca: [...rootCertificates, readFileSync(vault.caFile, "utf8")] },
    });
    await admin.createRsaKey(KEY, { keySize: 2048, keyOps: KEY_OPS });

    op = await OperatorProcess.start({
      operatorNamespace: opNs,
      watchNamespaces: [ns],
      logFile: join(dir, "operator.log"),
      probeInterval: "1s",
      extraArgs: vaultFlags,
      env: vaultEnv(),
    });
    await createWorkload(w, ns, "StatefulSet", "orders-db-engine", 3);
    await a.create("KeyProtector", ns, "vault-key", {
      provider: "AzureKeyVault",
      azureKeyVault: { vaultURL: vault.baseURL, keyName: KEY },
      // the system-assigned identity: no clientID
      identity: { type: "ManagedIdentity" },
      // Lowkey Vault's own recovery settings are not Azure's purge protection
      requirements: { requireRecoverable: false },
    });
    await a.create("EncryptedServer", ns, "orders", {
      protector: { type: "CustomerManaged", keyProtectorRef: { name: "vault-key" } },
      keyAccessGracePeriod: `${GRACE_MS / 1000}s`,
      revalidation: "Automatic",
      workloadRef: { apiVersion: "apps/v1", kind: "StatefulSet", name: "orders-db-engine" },
      enforcement: "ScaleToZero",
    });
    await a.create("EncryptedDatabase", ns, "orders-db", { serverRef: { name: "orders" } });
  }, 300_000);

  afterAll(async () => {
    await op?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("R2 R9 R13 the server and the database become Available on the vault's key; every wrap names the vault's key id", async () => {
    const s = await waitFor("server Available", server, (o) => o.status?.state === "Available", 90_000);
    const d = await waitFor("database Available", database, (o) => o.status?.state === "Available", 60_000);
    const version = await currentVersion();
    const keyID = `${vault.available ? vault.baseURL : ""}/keys/${KEY}/${version}`;
    expect(s.status?.protector?.keyID).toBe(keyID);
    expect(d.status?.effectiveProtector).toMatchObject({ source: "Server", keyID });
    const kp = await protector();
    expect(kp.status).toMatchObject({ keyID, enabled: true, keyType: "RSA", keySize: 2048 });
    for (const name of [s.status?.envelopeSecretName, d.status?.envelopeSecretName]) {
      const envelope = await envelopeOf(name ?? "");
      expect(protectorWrap(envelope)?.keyID).toBe(keyID);
    }
  });

  it("R6 R16 five versions made at once (same-second creation times): the vault's current one is chosen, every time, and every dependant follows it", async () => {
    const started = Date.now();
    // at once: their creation times (one-second resolution) tie, so only the vault can say which is current
    await Promise.all(
      Array.from({ length: 5 }, () => admin.createRsaKey(KEY, { keySize: 2048, keyOps: KEY_OPS })),
    );
    const madeInMs = Date.now() - started;
    const current = await currentVersion();
    const keyID = `${vault.available ? vault.baseURL : ""}/keys/${KEY}/${current}`;
    await waitFor(
      "server re-wrapped to the current version",
      server,
      (o) => o.status?.protector?.keyID === keyID,
      30_000,
    );
    await waitFor(
      "database re-wrapped to the current version",
      database,
      (o) => o.status?.effectiveProtector?.keyID === keyID,
      30_000,
    );
    // several probes later nothing has moved: the choice does not flap between probes
    await new Promise((r) => setTimeout(r, 3_000));
    expect((await protector()).status?.keyID).toBe(keyID);
    expect((await server()).status?.protector?.keyID).toBe(keyID);
    expect((await database()).status?.effectiveProtector?.keyID).toBe(keyID);
    const envelope = await envelopeOf((await database()).status?.envelopeSecretName ?? "");
    expect(protectorWrap(envelope)?.keyID).toBe(keyID);
    expect(envelope.wraps.filter((x) => x.role === "retained").length).toBeGreaterThanOrEqual(1);
    process.stderr.write(`[akv journey] 5 versions in ${madeInMs} ms; current ${current}\n`);
  });

  it("R6 R10 R11 R26 the current version disabled: KeyDisabled, Inaccessible at the deadline, the agent refuses; enabled again: revalidated", async () => {
    const current = await currentVersion();
    const before = await envelopeOf((await database()).status?.envelopeSecretName ?? "");
    await admin.updateKeyProperties(KEY, current, { enabled: false });
    const lost = await waitFor(
      "KeyAccessible=False on the server",
      server,
      (o) => cond(o, "KeyAccessible")?.status === "False",
      30_000,
    );
    expect(cond(lost, "KeyAccessible")?.reason).toBe("KeyDisabled");
    const kp = await waitFor(
      "the KeyProtector says disabled",
      protector,
      (o) => o.status?.enabled === false,
      10_000,
    );
    expect(cond(kp, "Accessible")?.reason).toBe("KeyDisabled");
    expect(kp.status?.keyVersion).toBe(current);
    // the older versions are enabled: nothing moves back to them (revocation holds)
    const agentOut = join(mkdtempSync("/dev/shm/tde-akv-"), "keyfile");
    const refused = await runAgent(before, agentOut);
    expect(refused.code).toBe(69);
    expect(refused.stderr).toContain("KeyDisabled");
    expect(refused.stderr).not.toContain("used the retained key");

    const gone = await waitFor(
      "server Inaccessible",
      server,
      (o) => o.status?.state === "Inaccessible",
      GRACE_MS + 20_000,
    );
    const lostAt = Date.parse(gone.status?.keyAccessLostSince ?? lost.status?.keyAccessLostSince ?? "");
    expect(Date.parse(gone.status?.inaccessibleSince ?? "") - lostAt).toBeGreaterThanOrEqual(
      GRACE_MS - 1_000,
    );
    expect((await readWorkload(w, ns, "StatefulSet", "orders-db-engine")).replicas).toBe(0);
    const db = await waitFor(
      "database Inaccessible",
      database,
      (o) => o.status?.state === "Inaccessible",
      20_000,
    );
    const after = await envelopeOf(db.status?.envelopeSecretName ?? "");
    expect(protectorWrap(after)?.keyID).toBe(protectorWrap(before)?.keyID);

    await admin.updateKeyProperties(KEY, current, { enabled: true });
    await waitFor("server Available again", server, (o) => o.status?.state === "Available", 30_000);
    await waitFor("database Available again", database, (o) => o.status?.state === "Available", 30_000);
    expect((await readWorkload(w, ns, "StatefulSet", "orders-db-engine")).replicas).toBe(3);
    expect(cond(await server(), "Revalidated")?.status).toBe("True");
  });

  it("R26 tde-agent unwraps through the vault into a key file MariaDB starts with", async () => {
    const envelope = await envelopeOf((await database()).status?.envelopeSecretName ?? "");
    const keyDir = mkdtempSync("/dev/shm/tde-akv-keys-");
    const keyFile = join(keyDir, "keyfile");
    try {
      const result = await runAgent(envelope, keyFile);
      expect(result.stderr).toContain("KCV checked");
      expect(result.code).toBe(0);
      const { readFileSync } = await import("node:fs");
      const dek = parseKeyFile(readFileSync(keyFile), "mariadb").get(1) ?? Buffer.alloc(0);
      expect(computeKcv(dek)).toBe(envelope.kcv);
      dek.fill(0);
      const binaries = await ensureMariaDb();
      const baseDir = join(dir, "mariadb");
      mkdirSync(baseDir, { recursive: true });
      const mariadb = await MariaDbServer.create(binaries, { baseDir });
      try {
        await mariadb.start({ keyFile });
        await mariadb.query("CREATE DATABASE app");
        await mariadb.query("CREATE TABLE app.t (note TEXT) ENGINE=InnoDB ENCRYPTED=YES ENCRYPTION_KEY_ID=1");
        await mariadb.query("INSERT INTO app.t VALUES ('through the vault')");
        expect((await mariadb.query("SELECT note FROM app.t"))[0]?.[0]).toBe("through the vault");
      } finally {
        await mariadb.stop();
      }
    } finally {
      rmSync(keyDir, { recursive: true, force: true });
    }
  }, 180_000);
});
