import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import {
  canaryLogSink,
  createLeakCanaryDir,
  dekForms,
  findLeaks,
  LEAK_CANARY_ENV,
  recordDek,
  recordMetrics,
  registerLogFile,
} from "../../harness/leak-scan.js";

const dek = randomBytes(32);
const other = randomBytes(32);
const deks = new Map([["the DEK", dek]]);
const scan = (hay: string | Buffer) => findLeaks(deks, new Map([["hay", hay]]));
/** base64 of the DEK inside a longer blob, starting `k` bytes in */
const embedded = (k: number, url = false) =>
  Buffer.concat([randomBytes(k), dek, randomBytes(7)]).toString(url ? "base64url" : "base64");

describe("the R1 leak scanner", () => {
  it("knows eight text forms of a DEK (raw bytes make nine)", () => {
    const forms = dekForms(dek);
    expect(forms).toHaveLength(8);
    expect(forms[0]).toBe(dek.toString("hex"));
    expect(forms[1]).toBe(dek.toString("hex").toUpperCase());
    expect(forms[2]).toBe(dek.subarray(0, 30).toString("base64"));
  });

  it.each([
    ["lower-case hex in JSON", `{"key":"${dek.toString("hex")}"}`, "hex"],
    ["upper-case hex in a log line", `msg=unwrapped ${dek.toString("hex").toUpperCase()} ok`, "hex"],
    ["hex inside a longer hex run", `${randomBytes(5).toString("hex")}${dek.toString("hex")}ab`, "hex"],
    ["base64 on its own", dek.toString("base64"), "base64"],
    ["base64url on its own", dek.toString("base64url"), "base64"],
    ["base64 at offset 0 of a blob", embedded(0), "base64"],
    ["base64 at offset 1 of a blob", embedded(1), "base64"],
    ["base64 at offset 2 of a blob", embedded(2), "base64"],
    ["base64url at offset 1 of a blob", embedded(1, true), "base64"],
    ["base64 in a metric label", `tde_x{key="${dek.toString("base64")}"} 1`, "base64"],
  ])("finds a DEK planted as %s", (_what, hay, form) => {
    expect(scan(hay)).toEqual([`the DEK: ${form} in hay`]);
  });

  it("finds a DEK planted raw in binary data", () => {
    const hay = Buffer.concat([Buffer.from("log line: "), dek, Buffer.from("\n")]);
    expect(scan(hay)).toEqual(["the DEK: raw in hay"]);
  });

  it("names the place and the DEK's label, never the DEK", () => {
    const found = findLeaks(
      new Map([
        ["DEK #1", dek],
        ["DEK #2", other],
      ]),
      new Map<string, string | Buffer>([
        ["Secret a/b", dek.toString("base64")],
        ["clean", "nothing here"],
        ["operator log", other.toString("hex")],
      ]),
    );
    expect(found.sort()).toEqual(["DEK #1: base64 in Secret a/b", "DEK #2: hex in operator log"]);
    for (const f of found)
      for (const d of [dek, other]) for (const form of dekForms(d)) expect(f).not.toContain(form);
  });

  it("does not cry wolf: other bytes, a truncated DEK, a wrapped DEK", () => {
    expect(scan(other.toString("hex"))).toEqual([]);
    expect(scan(other.toString("base64"))).toEqual([]);
    expect(scan(Buffer.concat([other, other]))).toEqual([]);
    expect(scan(dek.subarray(0, 31).toString("hex"))).toEqual([]);
    expect(scan(Buffer.concat([dek.subarray(0, 31), Buffer.from([dek[31]! ^ 1])]))).toEqual([]);
    expect(scan(randomBytes(4096).toString("base64"))).toEqual([]);
  });
});

describe("recording for the run-wide scan", () => {
  const saved = process.env[LEAK_CANARY_ENV];
  let dir: string | undefined;
  afterEach(() => {
    if (saved === undefined) delete process.env[LEAK_CANARY_ENV];
    else process.env[LEAK_CANARY_ENV] = saved;
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("records DEKs, logs, metrics and log paths in the run directory", () => {
    dir = mkdtempSync(join(tmpdir(), "tde-leak-unit-"));
    createLeakCanaryDir(dir);
    process.env[LEAK_CANARY_ENV] = dir;
    recordDek(dek);
    recordDek(other);
    recordDek(randomBytes(16)); // not a DEK: ignored
    const sink = canaryLogSink("op/ns")!;
    sink.write('{"msg":"one"}');
    sink.write('{"msg":"two"}');
    sink.close();
    recordMetrics("op", "tde_reconcile_total 3\n");
    registerLogFile("/tmp/some/operator.log");

    const [dekFile] = readdirSync(join(dir, "deks"));
    expect(readFileSync(join(dir, "deks", dekFile!))).toEqual(Buffer.concat([dek, other]));
    const [logFile] = readdirSync(join(dir, "logs"));
    expect(logFile).toMatch(/^op_ns-/);
    expect(readFileSync(join(dir, "logs", logFile!), "utf8")).toBe('{"msg":"one"}\n{"msg":"two"}\n');
    const [metricsFile] = readdirSync(join(dir, "metrics"));
    expect(readFileSync(join(dir, "metrics", metricsFile!), "utf8")).toBe("tde_reconcile_total 3\n");
    expect(readFileSync(join(dir, "log-files.txt"), "utf8")).toBe("/tmp/some/operator.log\n");
  });

  it("does nothing outside a run", () => {
    delete process.env[LEAK_CANARY_ENV];
    expect(canaryLogSink("op")).toBeUndefined();
    expect(() => recordDek(dek)).not.toThrow();
  });
});
