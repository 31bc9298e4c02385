import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream, readFileSync } from "node:fs";

/** A child process the harness started, with its output captured to a log file. */
export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  readonly child: ChildProcess;
  exited(): boolean;
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
  tail(lines?: number): string;
}

export function startProcess(
  name: string,
  command: string,
  args: readonly string[],
  logFile: string,
  env: NodeJS.ProcessEnv = process.env,
): ManagedProcess {
  const log = createWriteStream(logFile, { flags: "a" });
  const child = spawn(command, args, { env, stdio: ["ignore", "pipe", "pipe"] });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);
  if (child.pid === undefined) {
    throw new Error(`${name}: could not start ${command}`);
  }
  let hasExited = false;
  const exitPromise = new Promise<void>((resolve) => {
    child.once("exit", () => {
      hasExited = true;
      resolve();
    });
  });
  const pid = child.pid;
  return {
    name,
    pid,
    logFile,
    child,
    exited: () => hasExited,
    tail(lines = 30) {
      try {
        return readFileSync(logFile, "utf8").split("\n").slice(-lines).join("\n");
      } catch {
        return "";
      }
    },
    async stop(signal = "SIGTERM", graceMs = 10_000) {
      if (hasExited) return;
      // Stopped by the pid the harness started, never by name.
      process.kill(pid, signal);
      const timer = setTimeout(() => {
        if (!hasExited) process.kill(pid, "SIGKILL");
      }, graceMs);
      await exitPromise;
      clearTimeout(timer);
      log.end();
    },
  };
}

/** A process a readiness check waits on has exited: it will never become ready, so waiting stops at once. */
export class ProcessExited extends Error {
  override readonly name = "ProcessExited";
}

/**
 * Polls `check` until it resolves true, failing with the last error after `timeoutMs`, or at once
 * when `check` throws ProcessExited.
 */
export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
  intervalMs = 200,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      if (await check()) return;
    } catch (error) {
      if (error instanceof ProcessExited) throw new Error(`waiting for ${what}: ${error.message}`);
      lastError = error;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  const detail = lastError instanceof Error ? `: ${lastError.message}` : "";
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${detail}`);
}
