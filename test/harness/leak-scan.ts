/**
 * R1 leak scan over a whole integration run.
 *
 * The global setup creates a run directory (its path in TDE_LEAK_CANARY_DIR and the provided
 * `leakCanaryDir`). While the tests run, every in-process test operator records there the
 * plaintext of each DEK it wraps, its debug log and, when stopped, its /metrics text; the
 * separate-process operators register their log files. In its teardown, before the control plane
 * stops, the global setup lists every object of every listable resource type through the API,
 * recovers the DEK of every envelope wrapped by a Local key still in the cluster, and searches all
 * of it, and all the logs and metrics, for every DEK in every text form (`findLeaks`).
 *
 * The run directory holds test DEKs in plain: it is never part of what is scanned.
 */
import { constants, privateDecrypt, randomBytes } from "node:crypto";
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { type RequestOptions, request } from "node:https";
import { join } from "node:path";
import type * as k8s from "@kubernetes/client-node";
import {
  decodeEnvelopeSecret,
  ENVELOPE_SECRET_TYPE,
  verifyUnwrapped,
  wrappedBytes,
} from "../../src/crypto/index.js";

// ---- the scanner (pure) ----

/**
 * Every text form in which a DEK could show up: lower- and upper-case hex, base64, base64url, and
 * the base64 of the DEK at each of the three alignments inside a longer base64 text (its 30-byte
 * runs from offsets 0, 1 and 2, 40 characters each).
 */
export function dekForms(dek: Buffer): string[] {
  const b64 = (b: Buffer) => b.toString("base64");
  const forms = [dek.toString("hex"), dek.toString("hex").toUpperCase()];
  for (const k of [0, 1, 2]) {
    const run = b64(dek.subarray(k, k + 30));
    forms.push(run, run.replace(/\+/g, "-").replace(/\//g, "_"));
  }
  return forms;
}

/**
 * The places (by label) where any DEK occurs in any haystack, raw (8-byte prefix, then confirmed)
 * or in a text form of `dekForms`. Linear in the haystacks' size: every window of a hex or base64
 * run is looked up in a table, so 1,000 DEKs over megabytes of objects stay fast. A finding names
 * the DEK by its label and the place; never the DEK itself.
 */
export function findLeaks(deks: Map<string, Buffer>, haystacks: Map<string, string | Buffer>): string[] {
  const hex = new Map<string, string>();
  const b64 = new Map<string, string>();
  const raw = new Map<string, [string, Buffer]>();
  for (const [owner, dek] of deks) {
    const [lo, up, ...rest] = dekForms(dek);
    hex.set(lo!, owner);
    hex.set(up!, owner);
    for (const f of rest) b64.set(f, owner);
    raw.set(dek.subarray(0, 8).toString("latin1"), [owner, dek]);
  }
  const found = new Set<string>();
  for (const [where, hay] of haystacks) {
    const bytes = typeof hay === "string" ? Buffer.from(hay, "utf8") : hay;
    const text = bytes.toString("latin1");
    for (let i = 0; i + 32 <= text.length; i++) {
      const hit = raw.get(text.slice(i, i + 8));
      if (hit && bytes.subarray(i, i + 32).equals(hit[1])) found.add(`${hit[0]}: raw in ${where}`);
    }
    for (const m of text.matchAll(/[0-9a-fA-F]{64,}/g)) {
      for (let i = 0; i + 64 <= m[0].length; i++) {
        const owner = hex.get(m[0].slice(i, i + 64));
        if (owner) found.add(`${owner}: hex in ${where}`);
      }
    }
    for (const m of text.matchAll(/[A-Za-z0-9+/_-]{40,}/g)) {
      for (let i = 0; i + 40 <= m[0].length; i++) {
        const owner = b64.get(m[0].slice(i, i + 40));
        if (owner) found.add(`${owner}: base64 in ${where}`);
      }
    }
  }
  return [...found];
}

// ---- recording during the run (vitest workers) ----

export const LEAK_CANARY_ENV = "TDE_LEAK_CANARY_DIR";

/** The run directory, or undefined outside a run of the integration project's global setup. */
export function leakCanaryDir(): string | undefined {
  const dir = process.env[LEAK_CANARY_ENV];
  return dir && existsSync(dir) ? dir : undefined;
}

/** Creates the run directory's layout (the global setup). */
export function createLeakCanaryDir(dir: string): void {
  for (const sub of ["deks", "logs", "metrics"]) mkdirSync(join(dir, sub), { recursive: true });
  writeFileSync(join(dir, "log-files.txt"), "");
}

const unique = (label: string) =>
  `${label.replace(/[^A-Za-z0-9_.-]/g, "_")}-${process.pid}-${randomBytes(4).toString("hex")}`;

/** Records a DEK an operator under test is wrapping (32 bytes appended, synchronously: before any zeroize). */
export function recordDek(dek: Uint8Array): void {
  const dir = leakCanaryDir();
  if (!dir || dek.length !== 32) return;
  appendFileSync(join(dir, "deks", `${process.pid}.bin`), dek);
}

/**
 * A log sink in the run directory for one operator: lines are buffered and appended every 200 ms,
 * at `close()` and at process exit, so a debug-level operator costs no write per line.
 */
export function canaryLogSink(label: string): { write(line: string): void; close(): void } | undefined {
  const dir = leakCanaryDir();
  if (!dir) return undefined;
  const file = join(dir, "logs", `${unique(label)}.log`);
  let pending: string[] = [];
  const flush = () => {
    if (pending.length === 0) return;
    const chunk = `${pending.join("\n")}\n`;
    pending = [];
    appendFileSync(file, chunk);
  };
  const timer = setInterval(flush, 200);
  timer.unref();
  process.once("exit", flush);
  return {
    write: (line) => {
      pending.push(line);
    },
    close: () => {
      clearInterval(timer);
      process.removeListener("exit", flush);
      flush();
    },
  };
}

/** Keeps an operator's /metrics text for the final scan. */
export function recordMetrics(label: string, text: string): void {
  const dir = leakCanaryDir();
  if (dir) writeFileSync(join(dir, "metrics", `${unique(label)}.prom`), text);
}

/** Registers a log file written elsewhere (a separate operator process) for the final scan. */
export function registerLogFile(path: string): void {
  const dir = leakCanaryDir();
  if (dir) appendFileSync(join(dir, "log-files.txt"), `${path}\n`);
}

// ---- the final scan (global teardown) ----

export interface LeakScanResult {
  /** distinct DEKs searched for: recorded by operators, or recovered from envelopes in the cluster */
  deks: number;
  recordedDeks: number;
  recoveredDeks: number;
  /** recovered from an envelope but never recorded (wrapped by a separate-process operator) */
  recoveredOnly: number;
  envelopes: number;
  /** wraps that could not be unwrapped (their Local key gone, disabled version kept, or not Local) */
  wrapsNotRecovered: number;
  resourceTypes: number;
  objects: number;
  objectBytes: number;
  logFiles: number;
  logBytes: number;
  metricsFiles: number;
  metricsBytes: number;
  /** resource types whose list failed (their objects were not scanned) */
  listFailures: string[];
  leaks: string[];
}

interface ApiResource {
  name: string;
  kind: string;
  namespaced: boolean;
  verbs: string[];
}

interface ListedObject {
  kind?: string;
  type?: string;
  metadata?: { name?: string; namespace?: string };
  data?: Record<string, string>;
  binaryData?: Record<string, string>;
}

/** GET of a path of the API server, with the kubeconfig's credentials. */
async function getJSON<T>(kc: k8s.KubeConfig, path: string): Promise<T> {
  const server = kc.getCurrentCluster()?.server;
  if (!server) throw new Error("the kubeconfig names no cluster");
  const url = new URL(path, server);
  const options: RequestOptions = { method: "GET", headers: { accept: "application/json" } };
  await kc.applyToHTTPSOptions(options);
  return new Promise<T>((resolve, reject) => {
    const req = request(url, options, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const body = Buffer.concat(chunks).toString("utf8");
        if (res.statusCode !== 200) {
          reject(new Error(`GET ${path}: ${res.statusCode} ${body.slice(0, 200)}`));
          return;
        }
        try {
          resolve(JSON.parse(body) as T);
        } catch (error) {
          reject(error);
        }
      });
      res.on("error", reject);
    });
    req.setTimeout(120_000, () => req.destroy(new Error(`GET ${path}: timed out`)));
    req.on("error", reject);
    req.end();
  });
}

/** Every group version's list path prefix and its listable resources (core and every API group). */
async function discover(kc: k8s.KubeConfig): Promise<{ prefix: string; resource: ApiResource }[]> {
  const out: { prefix: string; resource: ApiResource }[] = [];
  const prefixes: string[] = [];
  const core = await getJSON<{ versions: string[] }>(kc, "/api");
  for (const v of core.versions) prefixes.push(`/api/${v}`);
  const groups = await getJSON<{ groups: { preferredVersion: { groupVersion: string } }[] }>(kc, "/apis");
  for (const g of groups.groups) prefixes.push(`/apis/${g.preferredVersion.groupVersion}`);
  for (const prefix of prefixes) {
    const list = await getJSON<{ resources: ApiResource[] }>(kc, prefix);
    for (const resource of list.resources) {
      if (resource.name.includes("/") || !resource.verbs.includes("list")) continue;
      out.push({ prefix, resource });
    }
  }
  return out;
}

/** Every object of one resource type in every namespace, page by page. */
async function listAll(kc: k8s.KubeConfig, prefix: string, resource: string): Promise<ListedObject[]> {
  const items: ListedObject[] = [];
  let next = "";
  do {
    const query = `limit=500${next ? `&continue=${encodeURIComponent(next)}` : ""}`;
    const page = await getJSON<{ items?: ListedObject[]; metadata?: { continue?: string } }>(
      kc,
      `${prefix}/${resource}?${query}`,
    );
    items.push(...(page.items ?? []));
    next = page.metadata?.continue ?? "";
  } while (next);
  return items;
}

/** The private keys of every Local KEK Secret, by key id (local://NAMESPACE/NAME/VERSION). */
function localKeys(secrets: ListedObject[]): Map<string, string> {
  const keys = new Map<string, string>();
  for (const s of secrets) {
    if (s.type !== "tde.dev/local-key") continue;
    const raw = s.data?.["key.json"];
    if (!raw) continue;
    try {
      const stored = JSON.parse(Buffer.from(raw, "base64").toString("utf8")) as {
        versions?: { version: string; privateKeyPem: string }[];
      };
      for (const v of stored.versions ?? []) {
        keys.set(`local://${s.metadata?.namespace}/${s.metadata?.name}/${v.version}`, v.privateKeyPem);
      }
    } catch {}
  }
  return keys;
}

/** The DEK of each envelope Secret whose wraps a Local key still in the cluster can open, KCV-checked. */
function recoverDeks(secrets: ListedObject[]): {
  deks: Map<string, Buffer>;
  envelopes: number;
  wrapsNotRecovered: number;
} {
  const keys = localKeys(secrets);
  const deks = new Map<string, Buffer>();
  let envelopes = 0;
  let wrapsNotRecovered = 0;
  for (const s of secrets) {
    if (s.type !== ENVELOPE_SECRET_TYPE) continue;
    let envelope: ReturnType<typeof decodeEnvelopeSecret>;
    try {
      envelope = decodeEnvelopeSecret(s);
    } catch {
      continue;
    }
    envelopes++;
    let dek: Buffer | undefined;
    for (const wrap of envelope.wraps) {
      const pem = keys.get(wrap.keyID);
      if (!pem) {
        wrapsNotRecovered++;
        continue;
      }
      try {
        const plain = privateDecrypt(
          { key: pem, padding: constants.RSA_PKCS1_OAEP_PADDING, oaepHash: "sha256" },
          wrappedBytes(wrap),
        );
        dek = verifyUnwrapped(envelope, plain, wrap.thumbprint);
        break;
      } catch {
        wrapsNotRecovered++;
      }
    }
    if (dek) deks.set(`DEK ${envelope.dekID} of envelope ${s.metadata?.namespace}/${s.metadata?.name}`, dek);
  }
  return { deks, envelopes, wrapsNotRecovered };
}

/** The DEKs the run's operators recorded, one entry per distinct value. */
function recordedDeks(dir: string): Map<string, Buffer> {
  const seen = new Set<string>();
  const deks = new Map<string, Buffer>();
  for (const file of readdirSync(join(dir, "deks"))) {
    const bytes = readFileSync(join(dir, "deks", file));
    for (let i = 0; i + 32 <= bytes.length; i += 32) {
      const dek = Buffer.from(bytes.subarray(i, i + 32));
      const key = dek.toString("hex");
      if (seen.has(key)) continue;
      seen.add(key);
      deks.set(`DEK #${deks.size + 1} (recorded by an in-process operator, worker ${file})`, dek);
    }
  }
  return deks;
}

/**
 * The run-wide scan: every object of every listable type through the API, every log and metrics
 * text of the run, searched for every DEK recorded or recovered. Reports figures; `leaks` lists
 * where a DEK was found (by label and place, never the DEK).
 */
export async function scanRun(dir: string, kc: k8s.KubeConfig): Promise<LeakScanResult> {
  const hay = new Map<string, string | Buffer>();
  const result: LeakScanResult = {
    deks: 0,
    recordedDeks: 0,
    recoveredDeks: 0,
    recoveredOnly: 0,
    envelopes: 0,
    wrapsNotRecovered: 0,
    resourceTypes: 0,
    objects: 0,
    objectBytes: 0,
    logFiles: 0,
    logBytes: 0,
    metricsFiles: 0,
    metricsBytes: 0,
    listFailures: [],
    leaks: [],
  };

  const secrets: ListedObject[] = [];
  for (const { prefix, resource } of await discover(kc)) {
    let items: ListedObject[];
    try {
      items = await listAll(kc, prefix, resource.name);
    } catch (error) {
      result.listFailures.push(`${prefix}/${resource.name}: ${(error as Error).message}`);
      continue;
    }
    result.resourceTypes++;
    for (const item of items) {
      const where = `${prefix}/${resource.name} ${item.metadata?.namespace ? `${item.metadata.namespace}/` : ""}${item.metadata?.name}`;
      const json = Buffer.from(JSON.stringify(item), "utf8");
      // base64 values are also searched decoded: a raw DEK in a Secret's data shows up raw here
      const encoded =
        prefix !== "/api/v1"
          ? undefined
          : resource.name === "secrets"
            ? item.data
            : resource.name === "configmaps"
              ? item.binaryData
              : undefined;
      const decoded = Object.entries(encoded ?? {}).map(([k, v]) =>
        Buffer.concat([Buffer.from(`\n${k}=`), Buffer.from(v, "base64")]),
      );
      const bytes = Buffer.concat([json, ...decoded]);
      hay.set(where, bytes);
      result.objects++;
      result.objectBytes += bytes.length;
      if (prefix === "/api/v1" && resource.name === "secrets") secrets.push(item);
    }
  }

  const recorded = recordedDeks(dir);
  const recovered = recoverDeks(secrets);
  result.recordedDeks = recorded.size;
  result.recoveredDeks = recovered.deks.size;
  result.envelopes = recovered.envelopes;
  result.wrapsNotRecovered = recovered.wrapsNotRecovered;
  const deks = new Map(recorded);
  const known = new Set([...recorded.values()].map((d) => d.toString("hex")));
  for (const [label, dek] of recovered.deks) {
    if (known.has(dek.toString("hex"))) continue;
    known.add(dek.toString("hex"));
    deks.set(label, dek);
    result.recoveredOnly++;
  }
  result.deks = deks.size;

  for (const file of readdirSync(join(dir, "logs"))) {
    const bytes = readFileSync(join(dir, "logs", file));
    hay.set(`in-process operator log ${file}`, bytes);
    result.logFiles++;
    result.logBytes += bytes.length;
  }
  const registered = new Set(readFileSync(join(dir, "log-files.txt"), "utf8").split("\n").filter(Boolean));
  for (const path of registered) {
    if (!existsSync(path)) continue;
    const bytes = readFileSync(path);
    hay.set(`operator log ${path}`, bytes);
    result.logFiles++;
    result.logBytes += bytes.length;
  }
  for (const file of readdirSync(join(dir, "metrics"))) {
    const bytes = readFileSync(join(dir, "metrics", file));
    hay.set(`operator /metrics ${file}`, bytes);
    result.metricsFiles++;
    result.metricsBytes += bytes.length;
  }

  // the scanner is working in this very run: one of the DEKs, planted, is found
  const first = [...deks][0];
  if (first) {
    const [label, dek] = first;
    const planted = findLeaks(new Map([[label, dek]]), new Map([["plant", `x${dek.toString("base64")}`]]));
    if (planted.length !== 1) throw new Error("leak scan self-check: a planted DEK was not found");
  }

  result.leaks = findLeaks(deks, hay);
  return result;
}
