import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parseKeyFile } from "../../../src/agent/key-file.js";
import { EXIT, runAgent } from "../../../src/agent/run.js";
import type { WrapUnwrapper } from "../../../src/agent/unwrap.js";
import {
  addWrap,
  computeKcv,
  createEnvelope,
  ENVELOPE_DATA_KEY,
  encodeEnvelope,
  generateDek,
  newDekID,
} from "../../../src/crypto/index.js";
import { KeyAccessError } from "../../../src/kms/provider.js";

const scratch = mkdtempSync(join(tmpdir(), "agent-run-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
const mem = join(scratch, "mem");
mkdirSync(mem);
const mountsFile = join(scratch, "mounts");
writeFileSync(mountsFile, `/dev/sda1 / ext4 rw 0 0\ntmpfs ${mem} tmpfs rw 0 0\n`);

const dek = generateDek();
const envelope = addWrap(createEnvelope(newDekID(), computeKcv(dek)), {
  keyID: "local://ns/kek/v1",
  thumbprint: "a".repeat(64),
  wrapped: Buffer.from("wrapped"),
  role: "protector",
});
const envelopeDir = join(scratch, "envelope");
mkdirSync(envelopeDir);
writeFileSync(
  join(envelopeDir, ENVELOPE_DATA_KEY),
  Buffer.from(encodeEnvelope(envelope)[ENVELOPE_DATA_KEY] as string, "base64"),
);

async function run(args: string[], unwrapOne: WrapUnwrapper) {
  const lines: string[] = [];
  const code = await runAgent(
    args,
    { err: (l) => lines.push(l), out: (l) => lines.push(l), env: {} },
    { unwrapper: () => unwrapOne, mountsFile, version: "1.2.3" },
  );
  return { code, text: lines.join("\n") };
}

const ok: WrapUnwrapper = async () => Buffer.from(dek);
const disabled: WrapUnwrapper = async (wrap) => {
  throw new KeyAccessError("KeyDisabled", `${wrap.keyID} is disabled`);
};

describe("R26 tde-agent unwrap", () => {
  it("writes the MariaDB key file and says so without printing key bytes", async () => {
    const out = join(mem, "keys", "keyfile");
    const { code, text } = await run(
      ["unwrap", "--envelope", envelopeDir, "--out", out, "--format", "mariadb"],
      ok,
    );
    expect(code).toBe(EXIT.ok);
    expect(parseKeyFile(readFileSync(out), "mariadb").get(1)?.equals(dek)).toBe(true);
    expect(statSync(out).mode & 0o777).toBe(0o400);
    expect(text).toContain(
      `for DEK ${envelope.dekID} (KCV checked), unwrapped with the protector key local://ns/kek/v1`,
    );
    expect(text).not.toContain(dek.toString("hex"));
  });

  it("fails with 69, the reason and what to do when the key is revoked, and removes an earlier key file", async () => {
    const out = join(mem, "revoked", "keyfile");
    expect((await run(["unwrap", "--envelope", envelopeDir, "--out", out, "--format", "hex"], ok)).code).toBe(
      0,
    );
    const { code, text } = await run(
      ["unwrap", "--envelope", envelopeDir, "--out", out, "--format", "hex"],
      disabled,
    );
    expect(code).toBe(EXIT.unavailable);
    expect(text).toMatch(/cannot unwrap DEK .*: KeyDisabled/);
    expect(text).toMatch(/what to do: the key-encryption key is disabled in its vault: enable it/);
    expect(text).toContain("removed the key file an earlier run left");
    expect(() => statSync(out)).toThrow();
  });

  it("fails with 65 when the KCV does not match", async () => {
    const out = join(mem, "kcv", "keyfile");
    const { code, text } = await run(
      ["unwrap", "--envelope", envelopeDir, "--out", out, "--format", "raw"],
      async () => generateDek(),
    );
    expect(code).toBe(EXIT.dataError);
    expect(text).toMatch(/KcvMismatch/);
  });

  it("fails with 73 before asking any vault when the destination is on disk", async () => {
    let asked = false;
    const { code, text } = await run(
      ["unwrap", "--envelope", envelopeDir, "--out", join(scratch, "disk", "keyfile"), "--format", "raw"],
      async () => {
        asked = true;
        return Buffer.from(dek);
      },
    );
    expect(code).toBe(EXIT.cannotCreate);
    expect(asked).toBe(false);
    expect(text).toMatch(/refusing to write the key file/);
  });

  it("fails with 65 when the envelope is missing, 64 on a usage error, and a vault that hangs times out with 69", async () => {
    const out = join(mem, "x", "keyfile");
    expect(
      (await run(["unwrap", "--envelope", join(scratch, "nope"), "--out", out, "--format", "raw"], ok)).code,
    ).toBe(EXIT.dataError);
    expect((await run(["unwrap", "--format", "raw"], ok)).code).toBe(EXIT.usage);
    const hang: WrapUnwrapper = () => new Promise(() => {});
    const { code, text } = await run(
      ["unwrap", "--envelope", envelopeDir, "--out", out, "--format", "raw", "--timeout", "50ms"],
      hang,
    );
    expect(code).toBe(EXIT.unavailable);
    expect(text).toMatch(/VaultUnreachable/);
  });

  it("prints help and the version", async () => {
    expect((await run(["--help"], ok)).text).toContain("tde-agent unwrap --envelope PATH");
    expect((await run(["--version"], ok)).text).toBe("1.2.3");
  });
});
