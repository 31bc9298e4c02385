/**
 * The data-plane journey (issue 9): a real MariaDB encrypts its data at rest with a key that only
 * `tde-agent` can produce, from an envelope Secret on the real API server and a Local KEK.
 *
 * R1  the DEK reaches the engine only through a memory-backed key file
 * R2  the DEK is stored wrapped in a tde.dev/envelope Secret; every unwrap is KCV-checked
 * R4  rotating the KEK re-wraps the same DEK: the data is not re-encrypted and stays readable
 * R26 the agent writes the key file, and without key access it fails so the engine cannot start
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  chmodSync,
  promises as fs,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import * as k8s from "@kubernetes/client-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseKeyFile } from "../../src/agent/key-file.js";
import {
  addWrap,
  computeKcv,
  createEnvelope,
  decodeEnvelopeSecret,
  type Envelope,
  encodeEnvelope,
  envelopeSecret,
  generateDek,
  newDekID,
  protectorWrap,
  verifyUnwrapped,
  wrappedBytes,
} from "../../src/crypto/index.js";
import { LocalKeyProvider } from "../../src/kms/local.js";
import type { KeyReference } from "../../src/kms/provider.js";
import { createTestNamespace, testKubeConfig } from "../harness/kube.js";
import { ensureMariaDb, MariaDbServer } from "../harness/mariadb.js";
import { kubeConfigForUser } from "../integration/kms/users.js";

const root = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const log = (line: string) => process.stderr.write(`[e2e mariadb] ${line}\n`);

const MARKER = `TDE-MARKER-${randomBytes(6).toString("hex")}`;
const CONTROL = `TDE-PLAINTEXT-CONTROL-${randomBytes(6).toString("hex")}`;
const ROWS = 500;
const KEK = "mariadb-kek";
const ENVELOPE = "mariadb-envelope";

const kc = testKubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
/** The operator's side: creates, rotates and disables the KEK and writes the envelope. */
const operatorKms = new LocalKeyProvider(core);

let namespace: string;
let baseDir: string;
let keyDir: string;
let keyFile: string;
let envelopeDir: string;
let agentKubeconfig: string;
let mariadb: MariaDbServer;
let dek: Buffer;
let rowsChecksum: string;

interface AgentResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs the real `tde-agent` (src/agent/main.ts through tsx) as the pod's init container would. */
function runAgent(args: string[]): Promise<AgentResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ["--import", "tsx", join(root, "src/agent/main.ts"), ...args],
      { cwd: root, env: { ...process.env, KUBERNETES_SERVICE_HOST: "" }, timeout: 60_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === "number" ? error.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

const unwrapArgs = () => [
  "unwrap",
  "--envelope",
  envelopeDir,
  "--out",
  keyFile,
  "--format",
  "mariadb",
  "--kubeconfig",
  agentKubeconfig,
  "--timeout",
  "30s",
];

/** Projects the envelope Secret from the API server into a directory, the way the kubelet mounts it. */
async function mountEnvelope(): Promise<Envelope> {
  const secret = await core.readNamespacedSecret({ namespace, name: ENVELOPE });
  rmSync(envelopeDir, { recursive: true, force: true });
  mkdirSync(envelopeDir, { recursive: true });
  for (const [name, value] of Object.entries(secret.data ?? {})) {
    writeFileSync(join(envelopeDir, name), Buffer.from(value, "base64"));
  }
  return decodeEnvelopeSecret(secret);
}

/** Every file under `dir`, recursively. */
async function filesUnder(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await fs.readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await filesUnder(path)));
    else if (entry.isFile()) out.push(path);
  }
  return out;
}

async function filesContaining(dir: string, needle: string): Promise<{ scanned: number; hits: string[] }> {
  const bytes = Buffer.from(needle, "utf8");
  const files = await filesUnder(dir);
  const hits: string[] = [];
  for (const file of files) {
    if ((await fs.readFile(file)).includes(bytes)) hits.push(file.slice(dir.length + 1));
  }
  return { scanned: files.length, hits };
}

async function checksum(): Promise<string> {
  const rows = await mariadb.query(
    `SELECT COUNT(*), SUM(CRC32(note)), SUM(note LIKE '${MARKER}-%') FROM app.secret_notes`,
  );
  return (rows[0] ?? []).join("/");
}

beforeAll(async () => {
  const binaries = await ensureMariaDb(log);
  namespace = await createTestNamespace(kc, "e2e-mariadb");
  baseDir = mkdtempSync(join(tmpdir(), "tde-e2e-mariadb-"));
  // R1: the key file lives on tmpfs only; /dev/shm is tmpfs on Linux, like an emptyDir of medium Memory.
  keyDir = mkdtempSync("/dev/shm/tde-e2e-keys-");
  keyFile = join(keyDir, "keyfile");
  envelopeDir = join(baseDir, "envelope");

  // The pod's own identity: a user that may only read the KEK's Secret (not the envelope's writer).
  const user = `tde-agent-${namespace}`;
  await rbac.createNamespacedRole({
    namespace,
    body: {
      metadata: { name: "tde-agent" },
      rules: [{ apiGroups: [""], resources: ["secrets"], resourceNames: [KEK], verbs: ["get"] }],
    },
  });
  await rbac.createNamespacedRoleBinding({
    namespace,
    body: {
      metadata: { name: "tde-agent" },
      roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "Role", name: "tde-agent" },
      subjects: [{ apiGroup: "rbac.authorization.k8s.io", kind: "User", name: user }],
    },
  });
  agentKubeconfig = join(baseDir, "agent.kubeconfig");
  writeFileSync(agentKubeconfig, kubeConfigForUser(user).exportConfig());
  chmodSync(agentKubeconfig, 0o600);

  // The operator's part, done here with the library: a Local KEK and an envelope holding the DEK.
  const kekRef: KeyReference = { provider: "Local", namespace, keyName: KEK };
  const kek = await operatorKms.createKey(namespace, KEK, { size: 2048 });
  dek = generateDek();
  const wrapped = await operatorKms.wrap(kekRef, dek);
  const envelope = addWrap(createEnvelope(newDekID(), computeKcv(dek)), {
    keyID: wrapped.keyID,
    thumbprint: kek.thumbprint,
    wrapped: wrapped.wrapped,
    role: "protector",
  });
  await core.createNamespacedSecret({ namespace, body: envelopeSecret(namespace, ENVELOPE, envelope) });

  mariadb = await MariaDbServer.create(binaries, { baseDir: join(baseDir, "mariadb"), log });
}, 900_000);

afterAll(async () => {
  await mariadb?.stop();
  dek?.fill(0);
  if (keyDir) rmSync(keyDir, { recursive: true, force: true });
  if (baseDir) rmSync(baseDir, { recursive: true, force: true });
  if (namespace) await core.deleteNamespace({ name: namespace }).catch(() => {});
});

describe("e2e: MariaDB encrypted at rest with the key tde-agent unwraps (R1, R2, R4, R26)", () => {
  it("R26 refuses to write the key file to a disk-backed path", async () => {
    await mountEnvelope();
    const onDisk = join(baseDir, "disk-keys", "keyfile");
    const result = await runAgent(unwrapArgs().map((a) => (a === keyFile ? onDisk : a)));
    expect(result.code, result.stderr).toBe(73);
    expect(result.stderr).toMatch(/refusing to write the key file .*medium: Memory/);
    expect(() => statSync(onDisk)).toThrow();
  });

  it("R26 an identity without access to the KEK cannot unwrap: exit 69, PermissionDenied and what to grant", async () => {
    await mountEnvelope();
    const strangerConfig = join(baseDir, "stranger.kubeconfig");
    writeFileSync(strangerConfig, kubeConfigForUser(`stranger-${namespace}`).exportConfig(), { mode: 0o600 });
    const result = await runAgent(unwrapArgs().map((a) => (a === agentKubeconfig ? strangerConfig : a)));
    expect(result.code, result.stderr).toBe(69);
    expect(result.stderr).toMatch(/: PermissionDenied/);
    expect(result.stderr).toMatch(/what to do: this pod's identity lacks get\/unwrapKey on the key/);
    expect(() => statSync(keyFile)).toThrow();
  });

  it("R26 R2 unwraps the envelope with the pod's own identity into a 0400 tmpfs key file in MariaDB format", async () => {
    const envelope = await mountEnvelope();
    const result = await runAgent(unwrapArgs());
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain(`for DEK ${envelope.dekID} (KCV checked)`);
    expect(result.stderr).toContain(`unwrapped with the protector key ${protectorWrap(envelope)?.keyID}`);
    expect(statSync(keyFile).mode & 0o777).toBe(0o400);
    const keys = parseKeyFile(readFileSync(keyFile), "mariadb");
    expect([...keys.keys()]).toEqual([1]);
    expect(keys.get(1)?.equals(dek)).toBe(true);
    // R1: no key material in what the agent prints
    for (const text of [result.stdout, result.stderr]) {
      expect(text).not.toContain(dek.toString("hex"));
      expect(text).not.toContain(dek.toString("base64"));
    }
  });

  it("R1 MariaDB starts with table, log and temporary-file encryption; the marker rows never reach the disk in clear", async () => {
    await mariadb.start({ keyFile });
    const vars = Object.fromEntries(
      await mariadb.query(
        "SELECT VARIABLE_NAME, VARIABLE_VALUE FROM information_schema.GLOBAL_VARIABLES WHERE VARIABLE_NAME IN " +
          "('INNODB_ENCRYPT_TABLES','INNODB_ENCRYPT_LOG','INNODB_ENCRYPT_TEMPORARY_TABLES','FILE_KEY_MANAGEMENT_FILENAME')",
      ),
    );
    expect(vars).toEqual({
      INNODB_ENCRYPT_TABLES: "ON",
      INNODB_ENCRYPT_LOG: "ON",
      INNODB_ENCRYPT_TEMPORARY_TABLES: "ON",
      FILE_KEY_MANAGEMENT_FILENAME: keyFile,
    });
    await mariadb.query(
      "CREATE DATABASE app; " +
        "CREATE TABLE app.secret_notes (id INT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(200) NOT NULL) " +
        "ENGINE=InnoDB ENCRYPTED=YES ENCRYPTION_KEY_ID=1; " +
        "CREATE TABLE app.plain_control (id INT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(200) NOT NULL) " +
        "ENGINE=InnoDB ENCRYPTED=NO;",
    );
    await mariadb.query(
      `INSERT INTO secret_notes (note) SELECT CONCAT('${MARKER}-', seq) FROM seq_1_to_${ROWS}; ` +
        `INSERT INTO plain_control (note) VALUES ('${CONTROL}');`,
      "app",
    );
    const encryption = await mariadb.query(
      "SELECT NAME, ENCRYPTION_SCHEME FROM information_schema.INNODB_TABLESPACES_ENCRYPTION WHERE NAME LIKE 'app/%' ORDER BY NAME",
    );
    expect(encryption).toEqual([
      ["app/plain_control", "0"],
      ["app/secret_notes", "1"],
    ]);
    rowsChecksum = await checksum();
    expect(rowsChecksum.split("/")[0]).toBe(String(ROWS));
    expect(rowsChecksum.split("/")[2]).toBe(String(ROWS));
    await mariadb.query("FLUSH TABLES app.secret_notes, app.plain_control FOR EXPORT; UNLOCK TABLES;");
    // A clean shutdown writes every dirty page and the log: what is on disk now is all there is.
    await mariadb.stop();

    const secret = await filesContaining(mariadb.dataDir, MARKER);
    expect(secret.scanned).toBeGreaterThan(5);
    expect(secret.hits, "the marker of the encrypted table was found in clear").toEqual([]);
    // The control proves the scan sees data: the unencrypted table's marker is on disk in clear.
    const control = await filesContaining(mariadb.dataDir, CONTROL);
    expect(control.hits).toContain(join("app", "plain_control.ibd"));
  });

  it("R4 rotating the KEK re-wraps the same DEK; MariaDB restarted through the agent reads every row", async () => {
    // The operator's rotation (R16): unwrap with the old KEK, wrap with the new version, prove it, switch.
    const before = await mountEnvelope();
    const oldWrap = protectorWrap(before)!;
    const rotated = await operatorKms.rotateKey(namespace, KEK);
    const unwrapped = verifyUnwrapped(
      before,
      await operatorKms.unwrap(
        { provider: "Local", namespace, keyName: KEK, keyID: oldWrap.keyID },
        wrappedBytes(oldWrap),
      ),
    );
    const rewrapped = await operatorKms.wrap(
      { provider: "Local", namespace, keyName: KEK, keyVersion: rotated.version },
      unwrapped,
    );
    unwrapped.fill(0);
    const after = addWrap(before, {
      keyID: rewrapped.keyID,
      thumbprint: rotated.thumbprint,
      wrapped: rewrapped.wrapped,
      role: "protector",
    });
    const proof = verifyUnwrapped(
      after,
      await operatorKms.unwrap(
        { provider: "Local", namespace, keyName: KEK, keyID: rewrapped.keyID },
        rewrapped.wrapped,
      ),
    );
    proof.fill(0);
    await core.patchNamespacedSecret(
      { namespace, name: ENVELOPE, body: { data: encodeEnvelope(after) } },
      k8s.setHeaderOptions("Content-Type", k8s.PatchStrategy.MergePatch),
    );

    const mounted = await mountEnvelope();
    expect(mounted.dekID).toBe(before.dekID);
    expect(mounted.kcv).toBe(before.kcv);
    expect(protectorWrap(mounted)?.keyID).toBe(rewrapped.keyID);
    expect(protectorWrap(mounted)?.keyID).not.toBe(oldWrap.keyID);
    expect(mounted.wraps.find((w) => w.keyID === oldWrap.keyID)?.role).toBe("retained");

    const result = await runAgent(unwrapArgs());
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toContain(`unwrapped with the protector key ${rewrapped.keyID}`);
    // R4: the DEK the engine gets is the one it had: same key file, no re-encryption.
    expect(parseKeyFile(readFileSync(keyFile), "mariadb").get(1)?.equals(dek)).toBe(true);

    await mariadb.start({ keyFile });
    expect(await checksum()).toBe(rowsChecksum);
    await mariadb.stop();
  });

  it("R26 revoking the key (disabling the protector's KEK version) makes the agent fail, and MariaDB cannot open its tables", async () => {
    const envelope = await mountEnvelope();
    const protector = protectorWrap(envelope)!;
    await operatorKms.setEnabled(namespace, KEK, false, protector.keyID.split("/").at(-1));

    const result = await runAgent(unwrapArgs());
    expect(result.code, result.stderr).toBe(69);
    expect(result.stderr).toContain(`cannot unwrap DEK ${envelope.dekID}: KeyDisabled`);
    expect(result.stderr).toMatch(/what to do: the key-encryption key is disabled in its vault: enable it/);
    // No fallback to the retained (still enabled) older version: revocation holds.
    expect(result.stderr).not.toContain("unwrapped with the retained key");
    expect(result.stderr).toContain("removed the key file an earlier run left");
    expect(() => statSync(keyFile)).toThrow();

    // The engine configured as always, but with no key file: it refuses to start.
    const withoutKey = await mariadb.startExpectingFailure({ keyFile });
    expect(withoutKey.exitCode).not.toBe(0);
    expect(withoutKey.log).toMatch(/file_key_management|cannot enable encryption/);
    // Even with encryption switched off entirely, InnoDB cannot read its encrypted log and tables.
    const noPlugin = await mariadb.startExpectingFailure({ keyFile: undefined });
    expect(noPlugin.exitCode).not.toBe(0);
    expect(noPlugin.log).toMatch(/encryption|Plugin 'InnoDB' registration as a STORAGE ENGINE failed/);
    expect(mariadb.running()).toBe(false);
  });

  it("R26 restoring the key lets the agent write it again; MariaDB starts and nothing is lost", async () => {
    const envelope = await mountEnvelope();
    await operatorKms.setEnabled(namespace, KEK, true, protectorWrap(envelope)!.keyID.split("/").at(-1));

    const result = await runAgent(unwrapArgs());
    expect(result.code, result.stderr).toBe(0);
    expect(parseKeyFile(readFileSync(keyFile), "mariadb").get(1)?.equals(dek)).toBe(true);

    await mariadb.start({ keyFile });
    expect(await checksum()).toBe(rowsChecksum);
    const sample = await mariadb.query("SELECT note FROM app.secret_notes WHERE id IN (1, 500) ORDER BY id");
    expect(sample).toEqual([[`${MARKER}-1`], [`${MARKER}-500`]]);
    await mariadb.stop();
  });
});
