/**
 * `tde-agent unwrap`, end to end: check the destination, read the envelope, unwrap (protector
 * first, see unwrap.ts), check the KCV, render and write the key file, zero every key buffer.
 * Returns the exit code; every line it prints names keys by id only, never key bytes.
 */
import { zeroize } from "../crypto/index.js";
import { KeyAccessError } from "../kms/provider.js";
import { type AgentCommand, parseAgentArgs, type UnwrapCommand, USAGE, UsageError } from "./args.js";
import { EnvelopeSourceError, readEnvelope } from "./envelope-source.js";
import { renderKeyFile } from "./key-file.js";
import { providerUnwrapper } from "./providers.js";
import { AgentUnwrapError, adviceFor, unwrapDek, type WrapUnwrapper } from "./unwrap.js";
import { KeyFileWriteError, prepareDestination, removeStaleKeyFile, writeKeyFile } from "./write-key-file.js";

export const EXIT = {
  ok: 0,
  failure: 1,
  usage: 64,
  dataError: 65,
  unavailable: 69,
  cannotCreate: 73,
} as const;

export interface AgentIO {
  /** one line to standard error */
  err(line: string): void;
  /** one line to standard output */
  out(line: string): void;
  env: Record<string, string | undefined>;
}

export interface AgentDeps {
  /** replaces the real providers (tests) */
  unwrapper?: (command: UnwrapCommand) => WrapUnwrapper;
  /** where the mount table is read from (tests) */
  mountsFile?: string;
  version?: string;
}

const PREFIX = "tde-agent:";

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new KeyAccessError(
            "VaultUnreachable",
            `no answer from the key's vault within ${Math.round(ms / 1000)} s`,
          ),
        ),
      ms,
    );
    timer.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function unwrapCommand(command: UnwrapCommand, io: AgentIO, deps: AgentDeps): Promise<number> {
  const writeOptions = {
    allowDisk: command.allowDisk,
    ...(deps.mountsFile === undefined ? {} : { mountsFile: deps.mountsFile }),
  };
  const fail = async (code: number, message: string, advice?: string): Promise<number> => {
    // A key file from an earlier run must not outlive the access that produced it.
    const removed = await removeStaleKeyFile(command.out).catch(() => false);
    io.err(`${PREFIX} ${message}`);
    if (advice) io.err(`${PREFIX} what to do: ${advice}`);
    if (removed) io.err(`${PREFIX} removed the key file an earlier run left at ${command.out}`);
    io.err(`${PREFIX} no key file was written; the database must not start (R26)`);
    return code;
  };

  let fsType: string;
  try {
    ({ fsType } = await prepareDestination(command.out, writeOptions));
  } catch (error) {
    if (error instanceof KeyFileWriteError) return fail(EXIT.cannotCreate, error.message);
    throw error;
  }

  let envelope: Awaited<ReturnType<typeof readEnvelope>>;
  try {
    envelope = await readEnvelope(command.envelope);
  } catch (error) {
    if (error instanceof EnvelopeSourceError) return fail(EXIT.dataError, error.message);
    throw error;
  }

  const unwrapOne = (deps.unwrapper ?? ((c) => providerUnwrapper(c)))(command);
  let outcome: Awaited<ReturnType<typeof unwrapDek>>;
  try {
    outcome = await withTimeout(unwrapDek(envelope, unwrapOne), command.timeoutMs);
  } catch (error) {
    if (error instanceof AgentUnwrapError) {
      const code =
        error.reason === "KcvMismatch" || error.reason === "NoWraps" ? EXIT.dataError : EXIT.unavailable;
      return fail(code, error.message, adviceFor(error.reason));
    }
    if (error instanceof KeyAccessError) {
      return fail(
        EXIT.unavailable,
        `cannot unwrap DEK ${envelope.dekID}: ${error.reason}: ${error.message}`,
        adviceFor(error.reason),
      );
    }
    throw error;
  }

  const { dek, wrap } = outcome;
  let content: Buffer | undefined;
  try {
    content = renderKeyFile(dek, command.format, command.keyIDs);
    fsType = await writeKeyFile(command.out, content, writeOptions);
  } catch (error) {
    if (error instanceof KeyFileWriteError) return fail(EXIT.cannotCreate, error.message);
    throw error;
  } finally {
    zeroize(dek);
    zeroize(content);
  }
  if (wrap.role !== "protector") {
    io.err(
      `${PREFIX} warning: the protector's key was not found; used the retained key ${wrap.keyID}. ` +
        "Check the protector in its vault: once the retained wrap is dropped this pod will not start",
    );
  }
  const ids = command.format === "mariadb" ? ` (key id ${command.keyIDs.join(", ")})` : "";
  io.err(
    `${PREFIX} wrote the ${command.format} key file ${command.out}${ids}, mode 0400 on ${fsType}, ` +
      `for DEK ${envelope.dekID} (KCV checked), unwrapped with the ${wrap.role} key ${wrap.keyID}`,
  );
  return EXIT.ok;
}

/** Runs `tde-agent` with these arguments and returns its exit code. */
export async function runAgent(argv: readonly string[], io: AgentIO, deps: AgentDeps = {}): Promise<number> {
  let command: AgentCommand;
  try {
    command = parseAgentArgs(argv, io.env);
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`${PREFIX} ${error.message}`);
      io.err('Run "tde-agent --help" for usage.');
      return EXIT.usage;
    }
    throw error;
  }
  switch (command.command) {
    case "help":
      io.out(USAGE);
      return EXIT.ok;
    case "version":
      io.out(deps.version ?? "unknown");
      return EXIT.ok;
    case "unwrap":
      try {
        return await unwrapCommand(command, io, deps);
      } catch (error) {
        // Unexpected: still say what happened, without a stack of key material (there is none).
        io.err(`${PREFIX} unexpected failure: ${(error as Error).message ?? String(error)}`);
        await removeStaleKeyFile(command.out).catch(() => {});
        return EXIT.failure;
      }
  }
}
