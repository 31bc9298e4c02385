#!/usr/bin/env node
/**
 * kubectl-tde: the kubectl plugin for tde.dev resources (R30). On PATH as `kubectl-tde`, it runs
 * as `kubectl tde ...`; from a checkout, `npx tsx src/cli/main.ts ...`.
 */
import { realpathSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { KubeConfig } from "@kubernetes/client-node";
import { ApiError, HttpKubeClient } from "../runtime/index.js";
import { parseCommandLine, USAGE, UsageError } from "./args.js";
import { CliError, run } from "./commands.js";

export const VERSION = "0.1.0";

export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
}

/** Loads --kubeconfig, else $KUBECONFIG or ~/.kube/config, else the in-cluster config. */
export function loadKubeConfig(path: string | undefined, context: string | undefined): KubeConfig {
  const kc = new KubeConfig();
  if (path) kc.loadFromFile(path);
  else kc.loadFromDefault();
  if (context) {
    if (!kc.getContextObject(context)) throw new CliError(`context "${context}" not found in the kubeconfig`);
    kc.setCurrentContext(context);
  }
  if (!kc.getCurrentCluster()) {
    throw new CliError("no cluster to talk to: set --kubeconfig, $KUBECONFIG or ~/.kube/config");
  }
  return kc;
}

/** The whole CLI; returns the exit code (0 done, 1 refused or failed, 2 usage). */
export async function main(argv: readonly string[], io: Io, kubeConfig?: KubeConfig): Promise<number> {
  try {
    const command = parseCommandLine(argv);
    if (command.name === "help") {
      io.out(USAGE);
      return 0;
    }
    if (command.name === "version") {
      io.out(`kubectl-tde ${VERSION}\n`);
      return 0;
    }
    const kc = kubeConfig ?? loadKubeConfig(command.kubeconfig, command.context);
    const defaultNamespace = kc.getContextObject(kc.getCurrentContext())?.namespace || "default";
    const client = new HttpKubeClient(kc, { requestTimeoutMs: 30_000 });
    io.out(await run({ client, defaultNamespace }, command));
    return 0;
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`error: ${err.message}\nRun "kubectl tde --help" for usage.\n`);
      return 2;
    }
    if (err instanceof CliError) {
      io.err(`error: ${err.message}\n`);
      return 1;
    }
    if (err instanceof ApiError) {
      io.err(`error: the API server answered ${err.statusCode} ${err.reason}: ${err.message}\n`);
      return 1;
    }
    io.err(`error: ${(err as Error).message ?? String(err)}\n`);
    return 1;
  }
}

function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  const code = await main(process.argv.slice(2), {
    out: (t) => process.stdout.write(t),
    err: (t) => process.stderr.write(t),
  });
  process.exitCode = code;
}
