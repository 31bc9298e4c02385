import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHttpHeaders, createPipelineRequest } from "@azure/core-rest-pipeline";
import { describe, expect, it } from "vitest";
import {
  AzureRecorder,
  assertSanitized,
  chooseMode,
  normalizeRequest,
  PLACEHOLDERS,
  recordingFileName,
  shiftTimes,
} from "../../harness/azure-recording.js";

const VAULT = "https://127.0.0.1:40123";
const origins = [[VAULT, PLACEHOLDERS.vault]] as const;

describe("the Azure recorder's mode (issue 19)", () => {
  it.each([
    [true, {}, "live", false],
    [false, {}, "playback", false],
    [true, { TDE_AZURE_MODE: "playback" }, "playback", false],
    [true, { TDE_AZURE_RECORD: "1" }, "live", true],
    [false, { TDE_TEST_AZURE_VAULT_URL: "https://mine.vault.azure.net" }, "live", false],
  ] as const)("vault available %s, env %j: %s (record %s)", (available, env, mode, record) => {
    expect(chooseMode(available, env)).toMatchObject({ mode, record });
  });

  it("refuses what cannot work: live or recording without a vault, recording a real vault, an unknown mode", () => {
    expect(() => chooseMode(false, { TDE_AZURE_MODE: "live" })).toThrow(/needs a vault/);
    expect(() => chooseMode(false, { TDE_AZURE_RECORD: "1" })).toThrow(/needs a vault/);
    expect(() => chooseMode(true, { TDE_AZURE_RECORD: "1", TDE_AZURE_MODE: "playback" })).toThrow();
    expect(() =>
      chooseMode(true, { TDE_AZURE_RECORD: "1", TDE_TEST_AZURE_VAULT_URL: "https://x.vault.azure.net" }),
    ).toThrow(/Lowkey/);
    expect(() => chooseMode(true, { TDE_AZURE_MODE: "replay" })).toThrow(/live or playback/);
  });
});

describe("sanitizing a recorded request", () => {
  it("R1 an imported key's private parts and modulus are redacted; origins become placeholders", () => {
    const body = JSON.stringify({
      key: {
        kty: "RSA",
        n: "bW9kdWx1cw",
        e: "AQAB",
        d: "c2VjcmV0",
        p: "cA",
        q: "cQ",
        dp: "x",
        dq: "y",
        qi: "z",
      },
      note: `${VAULT}/keys/k`,
    });
    const n = normalizeRequest("PUT", `${VAULT}/keys/k?api-version=2025-07-01`, body, origins, Date.now());
    expect(n.url).toBe(`${PLACEHOLDERS.vault}/keys/k?api-version=2025-07-01`);
    const key = (n.body as { key: Record<string, string> }).key;
    for (const part of ["n", "d", "p", "q", "dp", "dq", "qi"]) expect(key[part]).toBe("<redacted>");
    expect(key.e).toBe("AQAB");
    expect((n.body as { note: string }).note).toBe(`${PLACEHOLDERS.vault}/keys/k`);
  });

  it("a created key's nbf/exp become offsets from the time of the request", () => {
    const now = 1_800_000_000_000;
    const body = JSON.stringify({ attributes: { exp: now / 1000 - 61, nbf: now / 1000 + 86_400 } });
    const n = normalizeRequest("POST", `${VAULT}/keys/k/create`, body, origins, now);
    expect(n.body).toEqual({ attributes: { exp: "<now-60s>", nbf: "<now+86400s>" } });
  });

  it("answers' times shift together, and nothing else does", () => {
    expect(shiftTimes({ attributes: { created: 10, exp: 20, recoverableDays: 90 }, value: 5 }, 100)).toEqual({
      attributes: { created: 110, exp: 120, recoverableDays: 90 },
      value: 5,
    });
  });

  it.each([
    ["-----BEGIN PRIVATE KEY-----", "PEM"],
    ["-----BEGIN CERTIFICATE-----", "certificate"],
    ['"Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.sig"', "token"],
    ['{"d":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}', "private"],
    ['{"x5c":["MIIB"]}', "certificate chain"],
    [`"${VAULT}/keys/k"`, "loopback"],
  ])("refuses to write a recording holding %s", (text, what) => {
    expect(() => assertSanitized(text)).toThrow(new RegExp(what, "i"));
  });

  it("lets a sanitized recording through", () => {
    expect(() =>
      assertSanitized(
        JSON.stringify({
          d: "<redacted>",
          h: 'Bearer resource="https://vault1.recorded.test"',
          url: PLACEHOLDERS.vault,
        }),
      ),
    ).not.toThrow();
  });
});

describe("record, then play back", () => {
  const answer = (request: ReturnType<typeof createPipelineRequest>, status: number, body: unknown) => ({
    request,
    status,
    headers: createHttpHeaders({
      "content-type": "application/json",
      authorization: "Bearer secret-token-secret-token",
      "x-ms-request-id": "1",
    }),
    bodyAsText: JSON.stringify(body),
  });

  it("serves each recorded answer once, in order; fails the test on a request with no recording", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tde-rec-"));
    let n = 0;
    const recorder = new AzureRecorder("live", true, dir, {
      sendRequest: async (request) => answer(request, 200, { n: ++n, attributes: { created: 1000 } }),
    });
    recorder.origin("vault", VAULT);
    recorder.startTest("a test");
    const get = () => createPipelineRequest({ url: `${VAULT}/keys/k?api-version=2025-07-01`, method: "GET" });
    await recorder.sendRequest(get());
    await recorder.sendRequest(get());
    recorder.finishTest(true);
    const [file] = readdirSync(dir);
    expect(file).toBe(recordingFileName("a test"));
    const text = readFileSync(join(dir, file!), "utf8");
    expect(text).not.toMatch(/secret-token|x-ms-request-id|127\.0\.0\.1/);
    // as if recorded an hour ago
    const recording = JSON.parse(text);
    writeFileSync(
      join(dir, file!),
      JSON.stringify({ ...recording, recordedAt: recording.recordedAt - 3_600_000 }),
    );

    const player = new AzureRecorder("playback", false, dir);
    const url = player.origin("vault", "");
    const at = (u: string) =>
      createPipelineRequest({ url: `${u}/keys/k?api-version=2025-07-01`, method: "GET" });
    player.startTest("a test");
    const first = await player.sendRequest(at(url));
    const second = await player.sendRequest(at(url));
    expect([JSON.parse(first.bodyAsText!).n, JSON.parse(second.bodyAsText!).n]).toEqual([1, 2]);
    // recorded long ago: the answer's times moved with the clock
    expect(JSON.parse(first.bodyAsText!).attributes.created).toBe(1000 + 3_600);
    await expect(player.sendRequest(at(url))).rejects.toThrow(/no recording/);
    expect(() => player.finishTest(true)).toThrow(/1 request\(s\) had no recording/);

    player.startTest("a test that was never recorded");
    expect(() => player.finishTest(true)).toThrow(/there is no recording for this test/);
  });

  it("a failed test keeps its old recording", async () => {
    const dir = mkdtempSync(join(tmpdir(), "tde-rec-"));
    const recorder = new AzureRecorder("live", true, dir, {
      sendRequest: async (request) => answer(request, 200, {}),
    });
    recorder.startTest("failing");
    await recorder.sendRequest(
      createPipelineRequest({ url: "https://vault1.recorded.test/x", method: "GET" }),
    );
    recorder.finishTest(false);
    expect(readdirSync(dir)).toEqual([]);
  });
});
