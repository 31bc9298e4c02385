/**
 * Record and replay of the Azure Key Vault exchanges (issue 19), as the Azure SDK's own test
 * suites do: a small `HttpClient` plugged into the SDK (`KeyClientOptions.httpClient`), no global
 * patching.
 *
 * - `live`: requests go to the vault (Lowkey Vault, or a real Azure Key Vault with
 *   TDE_TEST_AZURE_VAULT_URL). With `record` (TDE_AZURE_RECORD=1, or `npm run test:azure:record`)
 *   each passing test's exchanges are written, sanitized, to one JSON file under
 *   test/fixtures/azure/<suite>/.
 * - `playback`: nothing leaves the process. Each request is matched (method, normalized URL with
 *   its query, normalized body; the first unused match in recorded order) and its recorded
 *   answer served; a request with no recording fails the test, even when the code under test
 *   swallows the error (`finishTest` throws).
 *
 * Sanitizing, before writing AND before matching: vault origins become placeholders
 * (`https://vault1.recorded.test`, ...); request headers are not kept at all (no Authorization,
 * no token); response headers are kept only from a short list (content type, the challenge,
 * Retry-After); private JWK parts (d, p, q, dp, dq, qi, k) and an imported key's modulus become
 * "<redacted>"; certificates (x5c) and tokens are removed; absolute times in request bodies
 * (nbf, exp) become offsets from the time of the request, and times in recorded answers are
 * shifted by the time between recording and playback, so "expired a minute ago" stays so.
 * `assertSanitized` refuses to write a recording in which anything secret-looking is left.
 */
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { createDefaultHttpClient, createHttpHeaders, RestError } from "@azure/core-rest-pipeline";
import type { TokenCredential } from "@azure/identity";
import type { KeyClientOptions } from "@azure/keyvault-keys";

type HttpClient = NonNullable<KeyClientOptions["httpClient"]>;
type PipelineRequest = Parameters<HttpClient["sendRequest"]>[0];
type PipelineResponse = Awaited<ReturnType<HttpClient["sendRequest"]>>;

export type AzureMode = "live" | "playback";

export const FIXTURES_DIR = join(dirname(new URL(import.meta.url).pathname), "..", "fixtures", "azure");

/** The placeholders recordings use for the vault origins (valid URLs: playback addresses them as they are). */
export const PLACEHOLDERS = {
  vault: "https://vault1.recorded.test",
  vault2: "https://vault2.recorded.test",
  proxy: "https://proxy.recorded.test",
  closed: "https://closed.recorded.test",
} as const;
export type OriginName = keyof typeof PLACEHOLDERS;

export interface ModeChoice {
  mode: AzureMode;
  record: boolean;
  /** why this mode: for logs and test titles */
  why: string;
}

/**
 * live when a vault is there (a Lowkey Vault jar, or TDE_TEST_AZURE_VAULT_URL), playback
 * otherwise; TDE_AZURE_MODE=live|playback overrides. Recording needs live.
 */
export function chooseMode(vaultAvailable: boolean, env: NodeJS.ProcessEnv = process.env): ModeChoice {
  const asked = env.TDE_AZURE_MODE?.trim();
  const record = /^(1|true|yes)$/i.test(env.TDE_AZURE_RECORD ?? "");
  if (asked && asked !== "live" && asked !== "playback")
    throw new Error(`TDE_AZURE_MODE=${asked}: expected live or playback`);
  const realAzure = Boolean(env.TDE_TEST_AZURE_VAULT_URL);
  if (record && realAzure)
    throw new Error("recordings are made against Lowkey Vault: unset TDE_TEST_AZURE_VAULT_URL to record");
  if (record && asked === "playback") throw new Error("TDE_AZURE_RECORD needs TDE_AZURE_MODE=live");
  if (asked === "playback") return { mode: "playback", record: false, why: "TDE_AZURE_MODE=playback" };
  if (asked === "live" || record || vaultAvailable || realAzure) {
    if (!vaultAvailable && !realAzure)
      throw new Error(
        `${record ? "recording" : "TDE_AZURE_MODE=live"} needs a vault: a Lowkey Vault jar or TDE_TEST_AZURE_VAULT_URL`,
      );
    return {
      mode: "live",
      record,
      why: realAzure
        ? `live against ${env.TDE_TEST_AZURE_VAULT_URL}`
        : `live against Lowkey Vault${record ? ", recording" : ""}`,
    };
  }
  return { mode: "playback", record: false, why: "playback of test/fixtures/azure (no Lowkey Vault jar)" };
}

// ---- the recorded form ----

export interface RecordedRequest {
  method: string;
  /** normalized: origins replaced by placeholders */
  url: string;
  /** normalized JSON, a string, or null */
  body: unknown;
}

export interface RecordedEntry {
  request: RecordedRequest;
  response?: { status: number; headers: Record<string, string>; body: unknown };
  /** a transport failure (no response): its code, e.g. ECONNREFUSED */
  error?: { code: string; message: string };
}

export interface Recording {
  test: string;
  /** when the test started recording (ms since the epoch): answers' times are shifted from it */
  recordedAt: number;
  entries: RecordedEntry[];
}

const KEPT_RESPONSE_HEADERS = [
  "content-type",
  "www-authenticate",
  "retry-after",
  "retry-after-ms",
  "x-ms-retry-after-ms",
];
const PRIVATE_JWK = ["d", "p", "q", "dp", "dq", "qi", "k"];
const TIME_FIELDS = new Set(["created", "updated", "exp", "nbf", "deletedDate", "scheduledPurgeDate"]);
const REDACTED = "<redacted>";

/** Replaces each real origin by its placeholder (and back, with the pairs swapped). */
export function replaceOrigins(text: string, pairs: readonly (readonly [string, string])[]): string {
  let out = text;
  for (const [from, to] of pairs) if (from && from !== to) out = out.split(from).join(to);
  return out;
}

function parseBody(body: unknown): unknown {
  if (body === undefined || body === null || body === "") return null;
  if (typeof body !== "string") return "<non-text body>";
  try {
    return JSON.parse(body);
  } catch {
    return body;
  }
}

function redactPrivate(value: unknown, alsoModulus: boolean): unknown {
  if (Array.isArray(value)) return value.map((v) => redactPrivate(v, alsoModulus));
  if (!value || typeof value !== "object") return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if (k === "x5c" || k === "access_token" || k === "refresh_token") out[k] = REDACTED;
    else if (k === "key" && v && typeof v === "object" && !Array.isArray(v)) {
      const jwk = { ...(v as Record<string, unknown>) };
      for (const part of PRIVATE_JWK) if (part in jwk) jwk[part] = REDACTED;
      // an imported key's public half is as random as its private half: it cannot match in playback
      if (alsoModulus && "n" in jwk) jwk.n = REDACTED;
      out[k] = jwk;
    } else out[k] = redactPrivate(v, alsoModulus);
  }
  return out;
}

/** nbf/exp of a request body as offsets from `nowMs`, rounded to the minute: "<now-60s>". */
function relativeTimes(value: unknown, nowMs: number): unknown {
  if (Array.isArray(value)) return value.map((v) => relativeTimes(v, nowMs));
  if (!value || typeof value !== "object") return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    if ((k === "exp" || k === "nbf") && typeof v === "number") {
      const offset = Math.round((v - nowMs / 1000) / 60) * 60;
      out[k] = `<now${offset >= 0 ? "+" : ""}${offset}s>`;
    } else out[k] = relativeTimes(v, nowMs);
  }
  return out;
}

/** Answers' absolute times (epoch seconds) moved by `seconds`. */
export function shiftTimes(value: unknown, seconds: number): unknown {
  if (seconds === 0) return value;
  if (Array.isArray(value)) return value.map((v) => shiftTimes(v, seconds));
  if (!value || typeof value !== "object") return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value))
    out[k] = TIME_FIELDS.has(k) && typeof v === "number" ? v + seconds : shiftTimes(v, seconds);
  return out;
}

/** The normalized request: what is written and what is matched. */
export function normalizeRequest(
  method: string,
  url: string,
  body: unknown,
  origins: readonly (readonly [string, string])[],
  nowMs: number,
): RecordedRequest {
  const normalURL = replaceOrigins(url, origins);
  const isImport = method === "PUT" && /^\/keys\/[^/]+\/?$/.test(new URL(normalURL).pathname);
  let parsed = parseBody(typeof body === "string" ? replaceOrigins(body, origins) : body);
  parsed = relativeTimes(redactPrivate(parsed, isImport), nowMs);
  return { method: method.toUpperCase(), url: normalURL, body: parsed };
}

function sanitizeResponse(
  status: number,
  headers: Iterable<[string, string]>,
  bodyText: string | undefined,
  origins: readonly (readonly [string, string])[],
): NonNullable<RecordedEntry["response"]> {
  const kept: Record<string, string> = {};
  for (const [name, value] of headers) {
    const lower = name.toLowerCase();
    if (KEPT_RESPONSE_HEADERS.includes(lower)) kept[lower] = replaceOrigins(value, origins);
  }
  const body = redactPrivate(
    parseBody(bodyText === undefined ? null : replaceOrigins(bodyText, origins)),
    false,
  );
  return { status, headers: kept, body };
}

/** Throws when a recording still holds something secret-looking (a last guard before writing). */
export function assertSanitized(text: string): void {
  const checks: [RegExp, string][] = [
    [/-----BEGIN [A-Z ]*(PRIVATE KEY|CERTIFICATE)-----/, "a PEM key or certificate"],
    [/eyJ[\w-]{8,}\.eyJ[\w-]{8,}\./, "a JWT (token)"],
    [/Bearer\s+(?!authorization=)[\w.~+/-]{16,}/i, "a bearer token"],
    [/"(d|p|q|dp|dq|qi|k)"\s*:\s*"(?!<redacted>)[\w-]{16,}"/, "private key material"],
    [/"x5c"\s*:\s*\[/, "a certificate chain"],
    [/(127\.0\.0\.1|localhost|\[::1\]):\d+/, "a loopback address that was not normalized"],
  ];
  for (const [pattern, what] of checks)
    if (pattern.test(text)) throw new Error(`refusing to write a recording with ${what} in it`);
}

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value && typeof value === "object")
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical((value as Record<string, unknown>)[k])}`)
      .join(",")}}`;
  return JSON.stringify(value);
}

/** A file name for a test: readable, bounded, and unique (a short hash of the full name). */
export function recordingFileName(testName: string): string {
  const slug = testName
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-|-$/g, "")
    .slice(0, 80)
    .replace(/-$/, "");
  const hash = createHash("sha256").update(testName).digest("hex").slice(0, 8);
  return `${slug}-${hash}.json`;
}

interface Session {
  test: string;
  file: string;
  startedAt: number;
  entries: RecordedEntry[];
  /** playback: the recording, which entries were used, and the requests that had none */
  recording?: Recording;
  used?: boolean[];
  unmatched: string[];
}

/**
 * The recorder/player: one per test file, one session per test (`startTest` / `finishTest`).
 * Give it to the SDK as `httpClient` (see `clientOptions`).
 */
export class AzureRecorder implements HttpClient {
  private session: Session | undefined;
  private readonly live: HttpClient | undefined;
  private readonly origins: [string, string][] = [];

  constructor(
    readonly mode: AzureMode,
    readonly record: boolean,
    /** the folder of this suite's recordings */
    readonly dir: string,
    /** live: the client that reaches the vault (default: the SDK's own) */
    inner?: HttpClient,
  ) {
    this.live = mode === "live" ? (inner ?? createDefaultHttpClient()) : undefined;
  }

  /** The URL to use for `name`: the real one live (remembered for normalizing), its placeholder in playback. */
  origin(name: OriginName, real: string): string {
    const placeholder = PLACEHOLDERS[name];
    if (this.mode === "playback") return placeholder;
    const origin = new URL(real).origin;
    const known = this.origins.find(([from]) => from === origin);
    if (known) known[1] = placeholder;
    else this.origins.push([origin, placeholder]);
    return real.replace(/\/+$/, "");
  }

  startTest(test: string): void {
    const file = join(this.dir, recordingFileName(test));
    const session: Session = { test, file, startedAt: Date.now(), entries: [], unmatched: [] };
    if (this.mode === "playback") {
      if (!existsSync(file)) {
        session.unmatched.push(
          `there is no recording for this test (${file}): run npm run test:azure:record`,
        );
      } else {
        session.recording = JSON.parse(readFileSync(file, "utf8")) as Recording;
        session.used = session.recording.entries.map(() => false);
      }
    }
    this.session = session;
  }

  /**
   * Ends the test's session. Playback: throws if any request had no recording. Record: writes
   * the recording when the test passed (a failed test keeps the old one).
   */
  finishTest(passed: boolean): void {
    const s = this.session;
    this.session = undefined;
    if (!s) return;
    if (s.unmatched.length > 0)
      throw new Error(
        `playback: ${s.unmatched.length} request(s) had no recording:\n  ${s.unmatched.join("\n  ")}`,
      );
    if (this.record && passed) {
      const recording: Recording = { test: s.test, recordedAt: s.startedAt, entries: s.entries };
      const text = `${JSON.stringify(recording, null, 2)}\n`;
      assertSanitized(text);
      mkdirSync(dirname(s.file), { recursive: true });
      writeFileSync(s.file, text);
    }
  }

  async sendRequest(request: PipelineRequest): Promise<PipelineResponse> {
    const s = this.session;
    if (!s)
      throw new Error(
        `an Azure request outside a test's recording session: ${request.method} ${request.url}`,
      );
    const normal = normalizeRequest(request.method, request.url, request.body, this.origins, Date.now());
    if (this.mode === "playback") return this.play(s, normal, request);
    let response: PipelineResponse;
    try {
      response = await this.live!.sendRequest(request);
    } catch (error) {
      const e = error as { code?: unknown; message?: string };
      s.entries.push({
        request: normal,
        error: {
          code: typeof e.code === "string" ? e.code : "REQUEST_SEND_ERROR",
          // "connect ECONNREFUSED 127.0.0.1:PORT": the host and port become their placeholder's
          message: replaceOrigins(
            String(e.message ?? e),
            this.origins.map(([from, to]) => [new URL(from).host, new URL(to).host] as const),
          ),
        },
      });
      throw error;
    }
    s.entries.push({
      request: normal,
      response: sanitizeResponse(
        response.status,
        response.headers,
        response.bodyAsText ?? undefined,
        this.origins,
      ),
    });
    return response;
  }

  private play(s: Session, normal: RecordedRequest, request: PipelineRequest): PipelineResponse {
    const key = canonical(normal);
    const entries = s.recording?.entries ?? [];
    const index = entries.findIndex((e, i) => !s.used![i] && canonical(e.request) === key);
    if (index < 0) {
      const body = normal.body === null ? "" : ` ${canonical(normal.body).slice(0, 300)}`;
      s.unmatched.push(`${normal.method} ${normal.url}${body}`);
      throw new Error(`playback: no recording for ${normal.method} ${normal.url} in ${s.file}`);
    }
    s.used![index] = true;
    const entry = entries[index]!;
    if (entry.error) throw new RestError(entry.error.message, { code: entry.error.code, request });
    const r = entry.response!;
    const shift = Math.round((s.startedAt - s.recording!.recordedAt) / 1000);
    const body = shiftTimes(r.body, shift);
    return {
      request,
      status: r.status,
      headers: createHttpHeaders(r.headers),
      ...(body === null ? {} : { bodyAsText: typeof body === "string" ? body : JSON.stringify(body) }),
    };
  }
}

/** A credential that never leaves the process (playback: the recorded challenge asks for a token). */
export const playbackCredential: TokenCredential = {
  getToken: async () => ({ token: "playback-token", expiresOnTimestamp: Date.now() + 3_600_000 }),
};
