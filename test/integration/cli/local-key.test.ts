/**
 * R7 `kubectl tde local-key` against the real API server and a running operator: create, list
 * (table and JSON), a refused disable and delete that name the dependants, rotate (the operator
 * re-wraps), disable of a version nothing needs, delete --force and recover, import of existing
 * key material (same thumbprint, R3). No output ever carries key material.
 */
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../../src/cli/main.js";
import { thumbprint } from "../../../src/crypto/thumbprint.js";
import { testKubeConfig } from "../../harness/kube.js";
import { startTestOperator, type TestOperator } from "../../harness/operator.js";
import { api, cond, type EncryptedServer, suffix, waitFor } from "../controllers/helpers.js";

const kc = testKubeConfig();
const id = suffix();
const ns = `lk-${id}`;
const opNs = `lk-op-${id}`;
let op: TestOperator;
let dir = "";
const outputs: string[] = [];

async function tde(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await main(argv, { out: (t) => out.push(t), err: (t) => err.push(t) }, kc);
  outputs.push(...out, ...err);
  return { code, out: out.join(""), err: err.join("") };
}

const a = api(kc);
const server = () => a.get<EncryptedServer>("EncryptedServer", ns, "srv");
type Conditions = { status?: { conditions?: { type: string; status: string; reason: string }[] } };
const keyProtectorAccessible = (reason: string) =>
  waitFor(
    `KeyProtector shop-key Accessible reason ${reason}`,
    () => a.get<Conditions>("KeyProtector", ns, "shop-key"),
    (kp) => cond(kp, "Accessible")?.reason === reason,
    30_000,
  );

beforeAll(async () => {
  op = await startTestOperator({ watchNamespaces: [ns], operatorNamespace: opNs, probeIntervalMs: 1_000 });
  dir = mkdtempSync(join(tmpdir(), "tde-local-key-"));
}, 60_000);

afterAll(async () => {
  await op?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("R7 kubectl tde local-key against the real API server", () => {
  it("create, list, refuse what would lose a DEK, rotate, disable what nothing needs, delete --force, recover, import", async () => {
    const created = await tde("local-key", "create", "shop-kek", "-n", ns, "--size", "2048");
    expect(created.code, created.err).toBe(0);
    expect(created.out).toContain(`local key ${ns}/shop-kek created`);
    expect(created.out).toMatch(/KEY\s+VERSION\s+CURRENT\s+ENABLED\s+SIZE/);
    const again = await tde("local-key", "create", "shop-kek", "-n", ns);
    expect(again.code).toBe(1);
    expect(again.err).toContain("already exists");

    await a.create("KeyProtector", ns, "shop-key", {
      provider: "Local",
      local: { secretRef: { name: "shop-kek" } },
    });
    await a.create("EncryptedServer", ns, "srv", {
      protector: { type: "CustomerManaged", keyProtectorRef: { name: "shop-key" } },
    });
    await a.create("EncryptedDatabase", ns, "orders", { serverRef: { name: "srv" } });
    const ready = await waitFor("srv Available", server, (s) => cond(s, "Ready")?.status === "True", 60_000);
    await waitFor(
      "orders Available",
      () => a.get<{ status?: { state?: string } }>("EncryptedDatabase", ns, "orders"),
      (d) => d.status?.state === "Available",
      60_000,
    );
    const firstVersion = ready.status?.protector?.keyID.split("/").pop() ?? "";

    const list = await tde("local-key", "list", "-n", ns);
    expect(list.code, list.err).toBe(0);
    const [header, row] = list.out.trim().split("\n");
    expect(header).toMatch(
      /^NAMESPACE\s+NAME\s+STATE\s+VERSIONS\s+CURRENT\s+ENABLED\s+SIZE\s+EXPIRES\s+THUMBPRINT\s+KEYPROTECTORS$/,
    );
    expect(row).toMatch(
      new RegExp(
        `^${ns}\\s+shop-kek\\s+Active\\s+1\\s+${firstVersion}\\s+true\\s+2048\\s+-\\s+\\w{12}\\s+shop-key$`,
      ),
    );

    // refused: disabling the only (current) version, or deleting the key, makes them Inaccessible
    const refusedDisable = await tde("local-key", "disable", "shop-kek", "-n", ns);
    expect(refusedDisable.code).toBe(1);
    expect(refusedDisable.err).toContain(
      `refused: disabling version ${firstVersion} of local key ${ns}/shop-kek`,
    );
    expect(refusedDisable.err).toContain("esrv/srv (protector)");
    expect(refusedDisable.err).toContain("edb/orders (protector (inherited from server srv))");
    expect(refusedDisable.err).toContain("--force");
    const refusedDelete = await tde("local-key", "delete", "shop-kek", "-n", ns);
    expect(refusedDelete.code).toBe(1);
    expect(refusedDelete.err).toContain("esrv/srv");
    const unchanged = JSON.parse((await tde("local-key", "list", "shop-kek", "-n", ns, "-o", "json")).out);
    expect(unchanged.deletedAt).toBeUndefined();
    expect(unchanged.versions).toMatchObject([
      { version: firstVersion, enabled: true, current: true, size: 2048 },
    ]);

    // a rotation: the operator re-wraps onto the new version, after which the old one protects nothing
    const rotated = await tde("local-key", "rotate", "shop-kek", "-n", ns, "-o", "json");
    expect(rotated.code, rotated.err).toBe(0);
    const newVersion = JSON.parse(rotated.out) as { version: string; current: boolean; size: number };
    expect(newVersion).toMatchObject({ current: true, size: 2048 });
    await waitFor(
      "srv re-wrapped under the new version",
      server,
      (s) => s.status?.protector?.keyID.endsWith(`/${newVersion.version}`) === true,
      60_000,
    );
    const oldOff = await tde("local-key", "disable", "shop-kek", "-n", ns, "--key-version", firstVersion);
    expect(oldOff.code, oldOff.err).toBe(0);
    expect(oldOff.out).toContain(`version ${firstVersion} disabled`);
    const versions = JSON.parse(
      (await tde("local-key", "list", "shop-kek", "-n", ns, "-o", "json")).out,
    ).versions;
    expect(versions).toMatchObject([
      { version: newVersion.version, enabled: true, current: true },
      { version: firstVersion, enabled: false, current: false },
    ]);
    expect((await tde("local-key", "enable", "shop-kek", "-n", ns, "--key-version", firstVersion)).code).toBe(
      0,
    );

    // delete --force: soft, listed as Deleted, the KeyProtector sees KeyNotFound; recover brings it back
    const forced = await tde("local-key", "delete", "shop-kek", "-n", ns, "--force");
    expect(forced.code, forced.err).toBe(0);
    expect(forced.out).toContain("Undo: kubectl tde local-key recover shop-kek");
    expect((await tde("local-key", "list", "-n", ns)).out).toMatch(/shop-kek\s+Deleted \d{4}-/);
    await keyProtectorAccessible("KeyNotFound");
    const recovered = await tde("local-key", "recover", "shop-kek", "-n", ns);
    expect(recovered.code, recovered.err).toBe(0);
    await keyProtectorAccessible("KeyAccessible");

    // import existing key material: a new key, with the material's own thumbprint (R3)
    const { privateKey, publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const pem = join(dir, "escrow.pem");
    writeFileSync(pem, privateKey.export({ type: "pkcs8", format: "pem" }));
    const imported = await tde(
      "local-key",
      "import",
      "escrow-kek",
      "-n",
      ns,
      "--from-file",
      pem,
      "-o",
      "json",
    );
    expect(imported.code, imported.err).toBe(0);
    expect(JSON.parse(imported.out).thumbprint).toBe(thumbprint(publicKey));
    const badFile = await tde(
      "local-key",
      "import",
      "x-kek",
      "-n",
      ns,
      "--from-file",
      join(dir, "missing.pem"),
    );
    expect(badFile).toMatchObject({ code: 1, err: expect.stringContaining("cannot read --from-file") });
    writeFileSync(join(dir, "not-a-key.pem"), "hello");
    const notKey = await tde(
      "local-key",
      "import",
      "x-kek",
      "-n",
      ns,
      "--from-file",
      join(dir, "not-a-key.pem"),
    );
    expect(notKey).toMatchObject({ code: 1, err: expect.stringContaining("is not a PEM private key") });
    const all = await tde("local-key", "list", "-A", "-o", "json");
    const names = (JSON.parse(all.out) as { namespace: string; name: string }[])
      .filter((k) => k.namespace === ns)
      .map((k) => k.name);
    expect(names).toEqual(["escrow-kek", "shop-kek"]);

    // key material never in any output
    const everything = outputs.join("\n");
    expect(everything).not.toContain("PRIVATE KEY");
    expect(everything).not.toContain("privateKeyPem");
    const der = privateKey.export({ type: "pkcs8", format: "der" }).toString("base64");
    expect(everything).not.toContain(der.slice(40, 80));
  }, 180_000);
});
