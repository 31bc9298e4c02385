/**
 * A real MariaDB for the data-plane journeys: the Debian packages (installed through apt-get when
 * missing), one server per test on a free loopback port, a temporary data directory and a socket
 * inside it, InnoDB table, log and temporary-file encryption through the `file_key_management`
 * plugin reading the key file that `tde-agent` wrote. No npm dependency: the client is the
 * `mariadb` command-line tool.
 */
import { execFile } from "node:child_process";
import { accessSync, constants, existsSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort } from "./ports.js";
import { type ManagedProcess, startProcess, waitFor } from "./processes.js";

const execFileAsync = promisify(execFile);

export interface MariaDbBinaries {
  /** the server: mariadbd (or mysqld on older packages) */
  server: string;
  /** mariadb-install-db (or mysql_install_db) */
  installDb: string;
  /** the command-line client: mariadb (or mysql) */
  client: string;
}

const SEARCH_PATH = ["/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin", "/sbin", "/bin"];

function locate(names: readonly string[]): string | undefined {
  const dirs = [...(process.env.PATH ?? "").split(":").filter(Boolean), ...SEARCH_PATH];
  for (const name of names) {
    for (const dir of dirs) {
      const candidate = join(dir, name);
      try {
        accessSync(candidate, constants.X_OK);
        return candidate;
      } catch {
        // not here
      }
    }
  }
  return undefined;
}

function locateAll(): MariaDbBinaries | undefined {
  const server = locate(["mariadbd", "mysqld"]);
  const installDb = locate(["mariadb-install-db", "mysql_install_db"]);
  const client = locate(["mariadb", "mysql"]);
  if (!server || !installDb || !client) return undefined;
  return { server, installDb, client };
}

/**
 * Finds the MariaDB binaries, installing `mariadb-server` and `mariadb-client` from the Debian
 * packages when they are missing (idempotent: a second call finds them and installs nothing).
 * Needs root for apt-get; fails with apt's own error text otherwise.
 */
export async function ensureMariaDb(log: (line: string) => void = () => {}): Promise<MariaDbBinaries> {
  const found = locateAll();
  if (found) return found;
  log("MariaDB is not installed: installing mariadb-server and mariadb-client with apt-get");
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  const apt = async (args: string[]) => {
    try {
      await execFileAsync("apt-get", ["-o", "DPkg::Lock::Timeout=300", ...args], {
        env,
        maxBuffer: 64 * 1024 * 1024,
      });
    } catch (error) {
      const e = error as { stderr?: string; message: string };
      throw new Error(`apt-get ${args.join(" ")} failed: ${(e.stderr ?? "").trim() || e.message}`);
    }
  };
  await apt(["update", "-qq"]);
  await apt(["install", "-y", "-qq", "--no-install-recommends", "mariadb-server", "mariadb-client"]);
  const installed = locateAll();
  if (!installed)
    throw new Error("apt-get installed MariaDB but mariadbd, mariadb-install-db or mariadb is missing");
  return installed;
}

export interface MariaDbOptions {
  /** a fresh directory for this server: the data directory, socket and logs go inside it */
  baseDir: string;
  log?: (line: string) => void;
}

export interface StartOptions {
  /** the file_key_management key file; undefined starts MariaDB with no encryption plugin at all */
  keyFile: string | undefined;
  /** how long to wait for the socket before giving up */
  timeoutMs?: number;
}

/** What a start that was expected to fail did. */
export interface FailedStart {
  exitCode: number | null;
  /** the server's last log lines, for assertions and diagnostics */
  log: string;
}

/** One MariaDB server: initialise once, then start and stop as often as a journey needs. */
export class MariaDbServer {
  readonly dataDir: string;
  readonly socket: string;
  private readonly log: (line: string) => void;
  private process: ManagedProcess | undefined;
  private starts = 0;
  port = 0;

  private constructor(
    readonly binaries: MariaDbBinaries,
    readonly baseDir: string,
    log: (line: string) => void,
  ) {
    this.dataDir = join(baseDir, "data");
    this.socket = join(baseDir, "mariadb.sock");
    this.log = log;
  }

  /** Creates the system tables in a new data directory (no encryption yet: nothing of ours is in it). */
  static async create(binaries: MariaDbBinaries, options: MariaDbOptions): Promise<MariaDbServer> {
    const server = new MariaDbServer(binaries, options.baseDir, options.log ?? (() => {}));
    mkdirSync(server.dataDir, { recursive: true });
    const args = [
      "--no-defaults",
      `--datadir=${server.dataDir}`,
      "--auth-root-authentication-method=normal",
      "--skip-test-db",
    ];
    if (process.getuid?.() === 0) args.push("--user=root");
    try {
      await execFileAsync(binaries.installDb, args, { maxBuffer: 16 * 1024 * 1024 });
    } catch (error) {
      const e = error as { stdout?: string; stderr?: string; message: string };
      throw new Error(`mariadb-install-db failed: ${e.message}\n${e.stdout ?? ""}\n${e.stderr ?? ""}`);
    }
    return server;
  }

  private serverArgs(keyFile: string | undefined): string[] {
    const args = [
      "--no-defaults",
      `--datadir=${this.dataDir}`,
      `--socket=${this.socket}`,
      `--pid-file=${join(this.baseDir, "mariadb.pid")}`,
      `--port=${this.port}`,
      "--bind-address=127.0.0.1",
      "--skip-name-resolve",
      "--innodb-buffer-pool-size=64M",
      "--innodb-log-file-size=32M",
      "--max-connections=20",
    ];
    if (process.getuid?.() === 0) args.push("--user=root");
    if (keyFile !== undefined) {
      args.push(
        "--plugin-load-add=file_key_management",
        `--file-key-management-filename=${keyFile}`,
        "--file-key-management-encryption-algorithm=AES_CTR",
        "--innodb-encrypt-tables=ON",
        "--innodb-encrypt-log=ON",
        "--innodb-encrypt-temporary-tables=ON",
        "--innodb-encryption-threads=2",
        "--encrypt-tmp-files=ON",
        "--aria-encrypt-tables=ON",
      );
    }
    return args;
  }

  private spawn(keyFile: string | undefined): ManagedProcess {
    if (this.process && !this.process.exited()) throw new Error("MariaDB is already running");
    this.starts += 1;
    const logFile = join(this.baseDir, `mariadbd-${this.starts}.log`);
    this.process = startProcess("mariadbd", this.binaries.server, this.serverArgs(keyFile), logFile);
    return this.process;
  }

  /** Starts the server and waits until it answers on its socket; fails with its log if it exits. */
  async start(options: StartOptions): Promise<void> {
    if (this.port === 0) this.port = await freePort();
    const proc = this.spawn(options.keyFile);
    const timeoutMs = options.timeoutMs ?? 60_000;
    try {
      await waitFor(
        "MariaDB to accept connections",
        async () => {
          if (proc.exited()) throw new Error(`mariadbd exited during start-up:\n${proc.tail(25)}`);
          if (!existsSync(this.socket)) return false;
          await this.query("SELECT 1");
          return true;
        },
        timeoutMs,
        250,
      );
    } catch (error) {
      await proc.stop("SIGKILL", 1000);
      throw error;
    }
    this.log(`MariaDB ${this.starts} ready on 127.0.0.1:${this.port} (pid ${proc.pid})`);
  }

  /**
   * Starts the server expecting it to refuse to come up (for example without its key). Resolves
   * with its exit code and log when it exits; throws if it is still running after `timeoutMs`.
   */
  async startExpectingFailure(options: StartOptions): Promise<FailedStart> {
    if (this.port === 0) this.port = await freePort();
    const proc = this.spawn(options.keyFile);
    const timeoutMs = options.timeoutMs ?? 60_000;
    const exitCode = await new Promise<number | null>((resolve) => {
      // its exit code once its output is in (the log it is expected to fail with)
      void proc.finished.then(() => resolve(proc.child.exitCode));
      setTimeout(() => resolve(-1), timeoutMs).unref();
    });
    if (exitCode === -1) {
      await this.stop();
      throw new Error(`MariaDB was expected to fail but is still running after ${timeoutMs} ms`);
    }
    return { exitCode, log: proc.tail(60) };
  }

  /** Runs SQL through the `mariadb` client over the socket; rows come back as tab-separated cells. */
  async query(sql: string, database?: string): Promise<string[][]> {
    const args = [
      "--no-defaults",
      `--socket=${this.socket}`,
      "--user=root",
      "--batch",
      "--skip-column-names",
    ];
    args.push("--execute", sql);
    if (database) args.push(database);
    try {
      const { stdout } = await execFileAsync(this.binaries.client, args, { maxBuffer: 64 * 1024 * 1024 });
      return stdout
        .split("\n")
        .filter((line) => line !== "")
        .map((line) => line.split("\t"));
    } catch (error) {
      const e = error as { stderr?: string; message: string };
      throw new Error(`mariadb: ${(e.stderr ?? "").trim() || e.message}`);
    }
  }

  /** Last lines of the current (or last) server log. */
  tail(lines = 40): string {
    return this.process?.tail(lines) ?? "";
  }

  running(): boolean {
    return this.process !== undefined && !this.process.exited();
  }

  /** A clean shutdown (SIGTERM to the pid we started: InnoDB flushes every dirty page first). */
  async stop(): Promise<void> {
    if (!this.process || this.process.exited()) return;
    await this.process.stop("SIGTERM", 60_000);
  }
}
