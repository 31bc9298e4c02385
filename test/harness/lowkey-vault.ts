import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { freePort } from "./ports.js";
import { type ManagedProcess, startProcess, waitFor } from "./processes.js";

/** Maven coordinates of the Lowkey Vault application jar (a Java 17 line). */
export const LOWKEY_VAULT_GROUP = "com.github.nagyesta.lowkey-vault";
export const LOWKEY_VAULT_ARTIFACT = "lowkey-vault-app";
export const LOWKEY_VAULT_VERSION = process.env.TDE_LOWKEY_VAULT_VERSION ?? "3.4.0";

export type LowkeyVaultJar = { available: true; jar: string } | { available: false; reason: string };

export interface LowkeyVaultInfo {
  /** https://127.0.0.1:PORT: vaults are addressed as https://NAME.localhost:PORT */
  baseURL: string;
  port: number;
  /** managed-identity token endpoint (IDENTITY_ENDPOINT) */
  identityEndpoint: string;
}

function cacheDir(): string {
  return join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "tde-operator", "lowkey-vault");
}

/**
 * Finds the Lowkey Vault jar: LOWKEY_VAULT_JAR, the cache, or Maven (`mvn dependency:copy`).
 * Returns the reason, with Maven's own error, when none of them has it.
 */
export function locateLowkeyVaultJar(log: (line: string) => void = () => {}): LowkeyVaultJar {
  const fromEnv = process.env.LOWKEY_VAULT_JAR;
  if (fromEnv) {
    return existsSync(fromEnv)
      ? { available: true, jar: fromEnv }
      : { available: false, reason: `LOWKEY_VAULT_JAR=${fromEnv} does not exist` };
  }
  const dir = cacheDir();
  const jar = join(dir, `${LOWKEY_VAULT_ARTIFACT}-${LOWKEY_VAULT_VERSION}.jar`);
  if (existsSync(jar)) return { available: true, jar };
  mkdirSync(dir, { recursive: true });
  const coordinates = `${LOWKEY_VAULT_GROUP}:${LOWKEY_VAULT_ARTIFACT}:${LOWKEY_VAULT_VERSION}:jar`;
  log(`fetching ${coordinates} with Maven`);
  try {
    execFileSync(
      "mvn",
      [
        "-q",
        "-B",
        "-Dstyle.color=never",
        "dependency:copy",
        `-Dartifact=${coordinates}`,
        `-DoutputDirectory=${dir}`,
      ],
      {
        stdio: ["ignore", "pipe", "pipe"],
        encoding: "utf8",
        timeout: 300_000,
      },
    );
  } catch (error) {
    const out = error as { stdout?: string; stderr?: string; message: string };
    const detail = `${out.stdout ?? ""}${out.stderr ?? ""}`
      .split("\n")
      .filter((l) => l.includes("ERROR") && !l.includes("Help 1") && l.trim() !== "[ERROR]")
      .slice(0, 2)
      .join(" ");
    return { available: false, reason: `Maven could not fetch ${coordinates}: ${detail || out.message}` };
  }
  return existsSync(jar)
    ? { available: true, jar }
    : { available: false, reason: `Maven did not write ${jar}` };
}

/** Lowkey Vault started with `java -jar` on free loopback ports, waited for on /ping. */
export class LowkeyVault {
  private proc: ManagedProcess | undefined;
  private dir: string | undefined;

  async start(jar: string): Promise<LowkeyVaultInfo> {
    const port = await freePort();
    const tokenPort = await freePort();
    this.dir = mkdtempSync(join(tmpdir(), "tde-lowkey-"));
    this.proc = startProcess(
      "lowkey-vault",
      "java",
      [
        "-Xmx512m",
        "-jar",
        jar,
        `--server.port=${port}`,
        `--app.token.port=${tokenPort}`,
        "--LOWKEY_VAULT_RELAXED_PORTS=true",
        "--LOWKEY_VAULT_NAMES=-",
      ],
      join(this.dir, "lowkey-vault.log"),
    );
    const baseURL = `https://127.0.0.1:${port}`;
    await waitFor(
      "Lowkey Vault /ping",
      async () => {
        if (this.proc?.exited()) throw new Error(`Lowkey Vault exited:\n${this.proc.tail()}`);
        const res = await fetch(`http://127.0.0.1:${tokenPort}/metadata/identity/oauth2/token?resource=x`);
        return res.status < 500;
      },
      120_000,
      500,
    );
    return {
      baseURL,
      port,
      identityEndpoint: `http://127.0.0.1:${tokenPort}/metadata/identity/oauth2/token`,
    };
  }

  async stop(): Promise<void> {
    await this.proc?.stop();
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}
