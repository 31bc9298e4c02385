import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream } from "node:fs";

const TAIL_BYTES = 16 * 1024;

/** A child process the harness started, with its output captured to a log file. */
export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  readonly child: ChildProcess;
  /** it has exited and what it wrote is in `tail` */
  exited(): boolean;
  /** resolves once `exited()` holds */
  readonly finished: Promise<void>;
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
  // two sources into one file: neither ends it (the first to end would leave the other writing
  // after the end); it ends once both pipes have closed
  child.stdout?.pipe(log, { end: false });
  child.stderr?.pipe(log, { end: false });
  if (child.pid === undefined) {
    throw new Error(`${name}: could not start ${command}`);
  }
  // the last output, kept in memory: the log file's writes may not have landed when a process
  // that failed at once (a port taken) is seen to exit, and its reason must be in the error
  let recent = "";
  const keep = (chunk: Buffer) => {
    recent = (recent + chunk.toString("utf8")).slice(-TAIL_BYTES);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  let hasExited = false;
  let outputIn = false;
  let outputDone: () => void = () => {};
  const finished = new Promise<void>((resolve) => {
    outputDone = () => {
      outputIn = true;
      resolve();
    };
  });
  const exitPromise = new Promise<void>((resolve) => {
    child.once("exit", () => {
      hasExited = true;
      // its output is in once its pipes close; a grandchild holding them open must not hide the exit
      setTimeout(outputDone, 1_000).unref();
      resolve();
    });
  });
  child.once("close", () => {
    outputDone();
    log.end();
  });
  const pid = child.pid;
  return {
    name,
    pid,
    logFile,
    child,
    // "close" comes only after "exit", and the fallback timer starts at "exit": outputIn implies it
    exited: () => outputIn,
    finished,
    tail(lines = 30) {
      return recent.split("\n").slice(-lines).join("\n");
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
