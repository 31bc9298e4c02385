import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { EnvelopeSourceError, readEnvelope } from "../../../src/agent/envelope-source.js";
import {
  addWrap,
  computeKcv,
  createEnvelope,
  ENVELOPE_DATA_KEY,
  encodeEnvelope,
  envelopeSecret,
  generateDek,
  newDekID,
} from "../../../src/crypto/index.js";

const scratch = mkdtempSync(join(tmpdir(), "agent-envelope-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const envelope = addWrap(createEnvelope(newDekID(), computeKcv(generateDek())), {
  keyID: "local://ns/kek/v1",
  thumbprint: "a".repeat(64),
  wrapped: Buffer.from("wrapped"),
  role: "protector",
});
const documentText = Buffer.from(encodeEnvelope(envelope)[ENVELOPE_DATA_KEY] as string, "base64").toString(
  "utf8",
);

describe("R26 reading the mounted envelope (R2)", () => {
  it("reads a Secret volume laid out as the kubelet does (..data links)", async () => {
    const dir = join(scratch, "volume");
    const stamp = join(dir, "..2026_01_01_00_00_00.000000001");
    mkdirSync(stamp, { recursive: true });
    writeFileSync(join(stamp, ENVELOPE_DATA_KEY), documentText);
    symlinkSync("..2026_01_01_00_00_00.000000001", join(dir, "..data"));
    symlinkSync(join("..data", ENVELOPE_DATA_KEY), join(dir, ENVELOPE_DATA_KEY));
    expect(await readEnvelope(dir)).toEqual(envelope);
  });

  it("reads a Secret manifest in YAML or JSON, with data or stringData", async () => {
    const secret = envelopeSecret("ns", "db-envelope", envelope);
    const yamlFile = join(scratch, "secret.yaml");
    writeFileSync(yamlFile, stringify(secret));
    expect(await readEnvelope(yamlFile)).toEqual(envelope);
    const jsonFile = join(scratch, "secret.json");
    const { data: _data, ...rest } = secret;
    writeFileSync(jsonFile, JSON.stringify({ ...rest, stringData: { [ENVELOPE_DATA_KEY]: documentText } }));
    expect(await readEnvelope(jsonFile)).toEqual(envelope);
  });

  it("reads the envelope document itself (a key mounted with subPath)", async () => {
    const file = join(scratch, "envelope.json");
    writeFileSync(file, documentText);
    expect(await readEnvelope(file)).toEqual(envelope);
  });

  it.each([
    ["a missing path", () => join(scratch, "absent"), /no such file or directory.*Mount the envelope Secret/],
    [
      "a directory of another Secret",
      () => {
        const dir = join(scratch, "other");
        mkdirSync(dir, { recursive: true });
        writeFileSync(join(dir, "password"), "x");
        return dir;
      },
      /has no envelope.json \(found: password\)/,
    ],
    [
      "a Secret of another type",
      () => {
        const file = join(scratch, "opaque.yaml");
        writeFileSync(file, stringify({ ...envelopeSecret("ns", "x", envelope), type: "Opaque" }));
        return file;
      },
      /type "Opaque", not tde.dev\/envelope/,
    ],
    [
      "a corrupt document",
      () => {
        const file = join(scratch, "corrupt.json");
        writeFileSync(file, JSON.stringify({ version: 1, dekID: "d", kcv: "nothex", wraps: [] }));
        return file;
      },
      /kcv must be 16 lowercase hex/,
    ],
    [
      "something else",
      () => {
        const file = join(scratch, "other.yaml");
        writeFileSync(file, "kind: ConfigMap\n");
        return file;
      },
      /neither a Secret manifest nor an envelope document/,
    ],
  ])("refuses %s with a message that says what is wrong", async (_what, make, message) => {
    const error = await readEnvelope(make()).catch((e) => e);
    expect(error).toBeInstanceOf(EnvelopeSourceError);
    expect((error as Error).message).toMatch(message);
  });
});
