/**
 * Lowkey Vault (the Azure Key Vault emulator, nagyesta/lowkey-vault) for the Azure tests.
 *
 * The jar is not on any registry this project reaches, so the harness only finds one: the path in
 * LOWKEY_VAULT_JAR, else the newest `lowkey-vault-app-*.jar` in its cache folder
 * (`~/.cache/tde-operator/lowkey-vault/`, or under $XDG_CACHE_HOME). `@azure/keyvault-keys`
 * 4.10 speaks api-version 2025-07-01, which only Lowkey Vault 7.3 and later accept; 7.x runs on
 * Java 25, found as JAVA_HOME, then an installation under /usr/lib/jvm, then `java` on PATH.
 * Every "not found" says exactly what was looked at.
 *
 * TLS is never turned off: the harness makes its own CA and a serving certificate for
 * 127.0.0.1/localhost (test/harness/pki.ts), hands it to Lowkey Vault as its PKCS12 keystore,
 * and gives clients the CA (in process: `tlsOptions.ca`; child processes: NODE_EXTRA_CA_CERTS).
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { request } from "node:https";
import { homedir, tmpdir } from "node:os";
import { basename, delimiter, join } from "node:path";
import { generateServerTls } from "./pki.js";
import { freePort } from "./ports.js";
import { type ManagedProcess, startProcess, waitFor } from "./processes.js";

export const LOWKEY_VAULT_ARTIFACT = "lowkey-vault-app";
/** the oldest Lowkey Vault line that accepts the SDK's api-version 2025-07-01 */
export const LOWKEY_VAULT_MINIMUM = [7, 3] as const;
/** Lowkey Vault 7.x is built for Java 25 */
export const LOWKEY_VAULT_JAVA = 25;

export type LowkeyVaultJar =
  | { available: true; jar: string; version: string; java: string; javaVersion: string; javaSource: string }
  | { available: false; reason: string };

export interface LowkeyVaultInfo {
  /** https://127.0.0.1:PORT: the vault the tests address */
  baseURL: string;
  /** https://localhost:PORT: a second, separate vault on the same server (tests needing two vaults) */
  secondBaseURL: string;
  port: number;
  /** managed-identity token endpoint (IDENTITY_ENDPOINT) */
  identityEndpoint: string;
  /** the PEM file of the CA that issued the vault's certificate (NODE_EXTRA_CA_CERTS) */
  caFile: string;
  caPem: string;
  logFile: string;
}

export function lowkeyCacheDir(): string {
  return join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "tde-operator", "lowkey-vault");
}

/** "7.3.74" from "lowkey-vault-app-7.3.74.jar"; undefined when the name carries no version. */
export function jarVersion(path: string): string | undefined {
  return /(\d+\.\d+\.\d+)(?:[-.][\w.-]*)?\.jar$/.exec(basename(path))?.[1];
}

function compareVersions(a: string, b: string): number {
  const pa = a.split(".").map(Number);
  const pb = b.split(".").map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** The jar: LOWKEY_VAULT_JAR, else the newest lowkey-vault-app-*.jar in the cache folder. */
export function locateJar(): { jar: string; version: string } | { reason: string } {
  const fromEnv = process.env.LOWKEY_VAULT_JAR;
  const tooOld = (version: string) =>
    compareVersions(version, LOWKEY_VAULT_MINIMUM.join(".")) < 0
      ? `${version} is older than ${LOWKEY_VAULT_MINIMUM.join(".")}, the first Lowkey Vault that accepts @azure/keyvault-keys' api-version 2025-07-01`
      : undefined;
  if (fromEnv) {
    if (!existsSync(fromEnv)) return { reason: `LOWKEY_VAULT_JAR=${fromEnv} does not exist` };
    const version = jarVersion(fromEnv) ?? "unknown";
    const old = version === "unknown" ? undefined : tooOld(version);
    return old ? { reason: `LOWKEY_VAULT_JAR=${fromEnv}: ${old}` } : { jar: fromEnv, version };
  }
  const dir = lowkeyCacheDir();
  const found = existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => f.startsWith(`${LOWKEY_VAULT_ARTIFACT}-`) && f.endsWith(".jar") && jarVersion(f))
        .map((f) => ({ jar: join(dir, f), version: jarVersion(f)! }))
        .sort((a, b) => compareVersions(b.version, a.version))
    : [];
  const newest = found[0];
  const looked = `LOWKEY_VAULT_JAR is not set and ${dir} has no ${LOWKEY_VAULT_ARTIFACT}-<version>.jar`;
  if (!newest)
    return { reason: `${looked} (the jar is on no registry reachable here: build it from its source)` };
  const old = tooOld(newest.version);
  return old ? { reason: `the newest jar in ${dir}, ${basename(newest.jar)}: ${old}` } : newest;
}

/** The version `java -version` prints ("25.0.3"), or undefined when it does not run. */
export function javaVersion(java: string): string | undefined {
  // `java -version` writes to stderr
  const run = spawnSync(java, ["-version"], { encoding: "utf8", timeout: 30_000 });
  return /version "([^"]+)"/.exec(`${run.stderr ?? ""}${run.stdout ?? ""}`)?.[1];
}

/** the major version of "25.0.3", "17.0.15" or "1.8.0_392" */
export function javaMajor(version: string): number {
  const parts = version.split(/[._-]/).map(Number);
  return parts[0] === 1 ? (parts[1] ?? 0) : (parts[0] ?? 0);
}

/**
 * A Java of at least `minimum`: $JAVA_HOME/bin/java, then /usr/lib/jvm/temurin-25-jdk-amd64 and
 * any other /usr/lib/jvm/* with "25" in its name, then `java` on PATH.
 */
export function locateJava(
  minimum = LOWKEY_VAULT_JAVA,
): { java: string; version: string; source: string } | { reason: string } {
  const candidates: { java: string; source: string }[] = [];
  if (process.env.JAVA_HOME)
    candidates.push({ java: join(process.env.JAVA_HOME, "bin", "java"), source: "JAVA_HOME" });
  const jvm = "/usr/lib/jvm";
  const preferred = join(jvm, `temurin-${minimum}-jdk-amd64`);
  candidates.push({ java: join(preferred, "bin", "java"), source: preferred });
  if (existsSync(jvm)) {
    for (const entry of readdirSync(jvm).sort()) {
      const dir = join(jvm, entry);
      if (dir !== preferred && entry.includes(String(minimum)))
        candidates.push({ java: join(dir, "bin", "java"), source: dir });
    }
  }
  for (const dir of (process.env.PATH ?? "").split(delimiter).filter(Boolean)) {
    const java = join(dir, "java");
    if (existsSync(java)) {
      candidates.push({ java, source: "PATH" });
      break;
    }
  }
  const tried: string[] = [];
  for (const c of candidates) {
    if (!existsSync(c.java)) {
      tried.push(`${c.java} (${c.source}): not there`);
      continue;
    }
    const version = javaVersion(c.java);
    if (version && javaMajor(version) >= minimum) return { ...c, version };
    tried.push(`${c.java} (${c.source}): ${version ? `Java ${version}` : "does not run"}`);
  }
  return { reason: `no Java ${minimum} or later: ${tried.join("; ") || "no candidate"}` };
}

/** The jar and the Java to run it, or why there are none. */
export function locateLowkeyVaultJar(log: (line: string) => void = () => {}): LowkeyVaultJar {
  const jar = locateJar();
  if ("reason" in jar) return { available: false, reason: `no Lowkey Vault jar: ${jar.reason}` };
  const java = locateJava(jar.version !== "unknown" && javaMajor(jar.version) < 7 ? 17 : LOWKEY_VAULT_JAVA);
  if ("reason" in java)
    return { available: false, reason: `Lowkey Vault ${jar.version} (${jar.jar}) needs ${java.reason}` };
  log(
    `Lowkey Vault ${jar.version}: ${jar.jar}, run with Java ${java.version}: ${java.java} (${java.source})`,
  );
  return {
    available: true,
    jar: jar.jar,
    version: jar.version,
    java: java.java,
    javaVersion: java.version,
    javaSource: java.source,
  };
}

/** GET over HTTPS trusting only `ca`: the status code. */
function httpsStatus(url: string, ca: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { ca, timeout: 5_000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("timeout", () => req.destroy(new Error(`${url}: timed out`)));
    req.on("error", reject);
    req.end();
  });
}

/**
 * Lowkey Vault started with `java -jar` on free loopback ports, serving our own certificate,
 * waited for over TLS (checked against our CA). Vaults: https://127.0.0.1:PORT and
 * https://localhost:PORT (two of those it registers by default; `--LOWKEY_VAULT_NAMES=-` would
 * turn them off), any port accepted (`LOWKEY_VAULT_RELAXED_PORTS`, for a proxy in front).
 */
export class LowkeyVault {
  private proc: ManagedProcess | undefined;
  private dir: string | undefined;

  /** `located`: from `locateLowkeyVaultJar`, or a jar path (its Java is then looked for). */
  async start(located: string | Extract<LowkeyVaultJar, { available: true }>): Promise<LowkeyVaultInfo> {
    let java: string;
    let jar: string;
    if (typeof located === "string") {
      jar = located;
      const found = locateJava();
      if ("reason" in found) throw new Error(`Lowkey Vault ${jar} needs ${found.reason}`);
      java = found.java;
    } else {
      jar = located.jar;
      java = located.java;
    }
    const port = await freePort();
    const tokenPort = await freePort();
    this.dir = mkdtempSync(join(tmpdir(), "tde-lowkey-"));
    const tls = generateServerTls(this.dir, ["127.0.0.1", "::1", "localhost"], "lowkey-vault");
    const logFile = join(this.dir, "lowkey-vault.log");
    this.proc = startProcess(
      "lowkey-vault",
      java,
      [
        "-Xmx512m",
        "-jar",
        jar,
        `--server.port=${port}`,
        `--app.token.port=${tokenPort}`,
        `--server.ssl.key-store=file:${tls.pkcs12}`,
        `--server.ssl.key-store-password=${tls.pkcs12Password}`,
        "--server.ssl.key-store-type=PKCS12",
        "--LOWKEY_VAULT_RELAXED_PORTS=true",
      ],
      logFile,
    );
    const baseURL = `https://127.0.0.1:${port}`;
    await waitFor(
      "Lowkey Vault over TLS (our CA)",
      async () => {
        if (this.proc?.exited()) throw new Error(`Lowkey Vault exited:\n${this.proc.tail()}`);
        const token = await fetch(`http://127.0.0.1:${tokenPort}/metadata/identity/oauth2/token?resource=x`);
        if (token.status >= 500) return false;
        return (await httpsStatus(`${baseURL}/ping`, tls.caPem)) < 500;
      },
      120_000,
      500,
    );
    return {
      baseURL,
      secondBaseURL: `https://localhost:${port}`,
      port,
      identityEndpoint: `http://127.0.0.1:${tokenPort}/metadata/identity/oauth2/token`,
      caFile: tls.caCert,
      caPem: tls.caPem,
      logFile,
    };
  }

  tail(lines?: number): string {
    return this.proc?.tail(lines) ?? "";
  }

  async stop(): Promise<void> {
    await this.proc?.stop();
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}
