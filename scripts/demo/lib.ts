/**
 * Helpers of `npm run demo`: printing, running the harness's kubectl, and waiting for the operator
 * to converge with a deadline. Nothing here prints a Secret's data: the demo never shows DEK or KEK
 * material, only names, key ids and thumbprints.
 */
import { execFile } from "node:child_process";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

const tty = process.stdout.isTTY === true && !process.env.NO_COLOR;
const paint = (code: string) => (text: string) => (tty ? `\x1b[${code}m${text}\x1b[0m` : text);
export const bold = paint("1");
export const dim = paint("2");
export const green = paint("32");
export const yellow = paint("33");
export const red = paint("31");
export const cyan = paint("36");

const started = Date.now();

/** Seconds since the demo started, for the left margin. */
export function clock(): string {
  const s = Math.floor((Date.now() - started) / 1000);
  return dim(`[${String(Math.floor(s / 60)).padStart(2, "0")}:${String(s % 60).padStart(2, "0")}]`);
}

export function say(line = ""): void {
  process.stdout.write(`${line}\n`);
}

/** One explanation line. */
export function explain(line: string): void {
  say(`${clock()} ${line}`);
}

export function heading(title: string): void {
  say();
  say(bold(cyan(`━━ ${title} ${"━".repeat(Math.max(3, 88 - title.length))}`)));
}

export function indent(text: string, prefix = "    "): string {
  return text
    .replace(/\s+$/, "")
    .split("\n")
    .map((l) => `${prefix}${l}`)
    .join("\n");
}

/** Quotes an argument the way a person would type it in a POSIX shell. */
export function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_./:=,@%+-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, "'\\''")}'`;
}

/** Cuts every line of `text` to `width` characters, marking the cut. */
export function clip(text: string, width: number): string {
  return text
    .split("\n")
    .map((l) => (l.length > width ? `${l.slice(0, width - 1)}…` : l))
    .join("\n");
}

/** A step did not converge, or a command failed: the demo stops with this message. */
export class DemoError extends Error {
  override readonly name = "DemoError";
}

export interface Kubectl {
  /** Runs kubectl and returns its output; throws DemoError when it fails. */
  run(args: string[], input?: string): Promise<string>;
  /** Runs kubectl, shows the command line and its output; `shown` replaces the arguments shown. */
  show(
    args: string[],
    options?: { input?: string; shown?: string; allowFailure?: boolean; maxWidth?: number },
  ): Promise<string>;
}

/**
 * The harness's kubectl with KUBECONFIG in its environment, so the command lines shown are the
 * ones a person would type. `path` is prepended to PATH (where the kubectl-tde plugin lives).
 */
export function kubectlRunner(bin: string, kubeconfig: string, path: string): Kubectl {
  const env = { ...process.env, KUBECONFIG: kubeconfig, PATH: `${path}:${process.env.PATH ?? ""}` };
  const exec = async (args: string[], input?: string) => {
    const child = execFileAsync(bin, args, { env, maxBuffer: 16 * 1024 * 1024, timeout: 60_000 });
    if (input !== undefined) child.child.stdin?.end(input);
    return child;
  };
  const failure = (args: string[], error: unknown) => {
    const e = error as { stderr?: string; message?: string };
    return new DemoError(`kubectl ${args.join(" ")} failed: ${(e.stderr || e.message || "").trim()}`);
  };
  return {
    async run(args, input) {
      try {
        return (await exec(args, input)).stdout;
      } catch (error) {
        throw failure(args, error);
      }
    },
    async show(args, options = {}) {
      say(`${clock()} ${bold("$")} ${bold(`kubectl ${options.shown ?? args.map(shellQuote).join(" ")}`)}`);
      try {
        const { stdout, stderr } = await exec(args, options.input);
        const text = `${stdout}${stderr}`;
        if (text.trim()) say(indent(options.maxWidth ? clip(text, options.maxWidth) : text));
        return text;
      } catch (error) {
        const e = error as { stdout?: string; stderr?: string };
        if (!options.allowFailure) throw failure(args, error);
        const text = `${e.stdout ?? ""}${e.stderr ?? ""}`;
        say(indent(text));
        return text;
      }
    },
  };
}

/**
 * Polls `check` until it returns true. Anything else it returns (or throws) is the latest
 * observation, quoted when the deadline passes. `alive` is checked first on every round, so a
 * crashed operator fails the step at once instead of at its deadline.
 */
export async function waitUntil(
  what: string,
  timeoutMs: number,
  check: () => Promise<true | string>,
  options: { intervalMs?: number; alive?: () => void } = {},
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "nothing observed yet";
  for (;;) {
    options.alive?.();
    try {
      const result = await check();
      if (result === true) return;
      last = result;
    } catch (error) {
      if (error instanceof DemoError) throw error;
      last = (error as Error).message;
    }
    if (Date.now() >= deadline) {
      throw new DemoError(
        `timed out after ${Math.round(timeoutMs / 1000)}s waiting for ${what}\n  last seen: ${last}`,
      );
    }
    await sleep(options.intervalMs ?? 250);
  }
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export function short(thumbprint: string | undefined): string {
  return thumbprint ? thumbprint.slice(0, 12) : "-";
}
