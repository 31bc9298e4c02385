/**
 * The kubectl-tde command line: which command, its arguments and flags. Pure: no I/O, so every
 * mistake a person can make is a unit test.
 */
import { parseArgs } from "node:util";
import { type LocalKeyFlags, type LocalKeyRequest, parseLocalKey } from "./local-key.js";

export const OUTPUT_FORMATS = ["table", "json", "yaml"] as const;
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

export const COMMANDS = [
  "status",
  "keys",
  "rotate",
  "revalidate",
  "revert",
  "impact",
  "local-key",
  "help",
] as const;
export type CommandName = (typeof COMMANDS)[number];

export interface CommonOptions {
  /** -n; absent: the kubeconfig context's namespace, else "default" */
  namespace?: string;
  /** -A: every namespace (status, impact) */
  allNamespaces: boolean;
  kubeconfig?: string;
  context?: string;
  output: OutputFormat;
}

export type Command =
  | { name: "help"; topic?: string }
  | { name: "version" }
  | ({ name: "status" } & CommonOptions)
  | ({ name: "keys"; database: string; filter: KeyFilter } & CommonOptions)
  | ({ name: "rotate"; target: string; to: string } & CommonOptions)
  | ({ name: "revalidate"; server: string } & CommonOptions)
  | ({ name: "revert"; database: string } & CommonOptions)
  | ({ name: "impact"; keyProtector: string } & CommonOptions)
  | ({ name: "local-key"; request: LocalKeyRequest } & CommonOptions);

/** Which entries of a key history to show (R18). */
export type KeyFilter = { kind: "all" } | { kind: "current" } | { kind: "at"; at: Date };

export class UsageError extends Error {
  override readonly name = "UsageError";
}

export const USAGE = `kubectl tde: inspect and steer tde.dev resources (KeyProtector, EncryptedServer, EncryptedDatabase)

Usage:
  kubectl tde status                            every resource of ours: state, protector, key access, ready
  kubectl tde keys DATABASE [--filter current | --at TIME]
                                                a database's key history (R18): all, current, or in use at TIME
  kubectl tde rotate SERVER|DATABASE --to KEYPROTECTOR
                                                make KEYPROTECTOR the protector (the operator re-wraps online)
  kubectl tde revalidate SERVER                 ask the operator to revalidate an Inaccessible server (R11)
  kubectl tde revert DATABASE                   drop the database's own protector and inherit the server's (R15)
  kubectl tde impact KEYPROTECTOR               every server and database whose protector or keys use it
  kubectl tde local-key list [NAME]             Local KEKs (R7) in the namespace (-A: all), or one key's versions
  kubectl tde local-key create NAME [--size BITS] [--expires TIME] [--not-before TIME] [--disabled]
  kubectl tde local-key rotate NAME [--size BITS] [--expires TIME]   a new current version
  kubectl tde local-key import NAME --from-file KEY.pem [--expires TIME]   a new key, or a new version
  kubectl tde local-key disable|enable NAME [--key-version V]        the current version, or V
  kubectl tde local-key delete NAME             soft-delete (recoverable); recover NAME undoes it
                                                disable and delete refuse, naming who would become
                                                Inaccessible, unless --force

A SERVER or DATABASE may be written kind/name (esrv/NAME, edb/NAME) when a name is used by both.

Flags:
  -n, --namespace NS     namespace (default: the kubeconfig context's, else "default")
  -A, --all-namespaces   every namespace (status, impact)
      --kubeconfig PATH  kubeconfig file (default: $KUBECONFIG, then ~/.kube/config, then in-cluster)
      --context NAME     kubeconfig context
  -o, --output FORMAT    table (default), json or yaml
  -h, --help             this help
`;

/** Parses argv (without node and the script). Throws UsageError with a sentence for a person. */
export function parseCommandLine(argv: readonly string[]): Command {
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(argv);
  } catch (err) {
    throw new UsageError((err as Error).message.replace(/^TypeError \[[A-Z_]+\]: /, ""));
  }
  const { values, positionals } = parsed;
  if (values.version) return { name: "version" };
  const [name, ...args] = positionals;
  if (values.help || name === undefined || name === "help") {
    return name === "help" && args[0] ? { name: "help", topic: args[0] } : { name: "help" };
  }
  if (!(COMMANDS as readonly string[]).includes(name)) {
    throw new UsageError(
      `unknown command "${name}": use one of ${COMMANDS.filter((c) => c !== "help").join(", ")}`,
    );
  }
  const output = values.output ?? "table";
  if (!(OUTPUT_FORMATS as readonly string[]).includes(output)) {
    throw new UsageError(`--output must be table, json or yaml, not "${output}"`);
  }
  const common: CommonOptions = {
    allNamespaces: values["all-namespaces"] ?? false,
    output: output as OutputFormat,
  };
  if (values.namespace !== undefined) common.namespace = values.namespace;
  if (values.kubeconfig !== undefined) common.kubeconfig = values.kubeconfig;
  if (values.context !== undefined) common.context = values.context;
  if (common.allNamespaces && common.namespace !== undefined) {
    throw new UsageError("use either -n/--namespace or -A/--all-namespaces, not both");
  }

  const one = (what: string): string => {
    if (args.length === 0)
      throw new UsageError(`${name} needs ${what}: kubectl tde ${name} ${what.toUpperCase()}`);
    if (args.length > 1)
      throw new UsageError(`${name} takes one ${what}, got ${args.length}: ${args.join(" ")}`);
    return args[0] as string;
  };
  const onlyIn = (flag: string, commands: CommandName[]) => {
    if (!commands.includes(name as CommandName))
      throw new UsageError(`${flag} is only for ${commands.join(", ")}`);
  };
  if (values.to !== undefined) onlyIn("--to", ["rotate"]);
  if (values.filter !== undefined || values.at !== undefined)
    onlyIn(values.at ? "--at" : "--filter", ["keys"]);
  if (common.allNamespaces) onlyIn("-A/--all-namespaces", ["status", "impact", "local-key"]);
  const localKeyFlags: LocalKeyFlags = {
    size: values.size,
    expires: values.expires,
    "not-before": values["not-before"],
    disabled: values.disabled,
    "key-version": values["key-version"],
    force: values.force,
    "from-file": values["from-file"],
  };
  const localKeyFlag = Object.entries(localKeyFlags).find(([, v]) => v !== undefined);
  if (localKeyFlag) onlyIn(`--${localKeyFlag[0]}`, ["local-key"]);

  switch (name as Exclude<CommandName, "help">) {
    case "status":
      if (args.length > 0) throw new UsageError(`status takes no arguments, got: ${args.join(" ")}`);
      return { name: "status", ...common };
    case "keys":
      return {
        name: "keys",
        database: one("database"),
        filter: keyFilter(values.filter, values.at),
        ...common,
      };
    case "rotate": {
      const target = one("server or database");
      if (!values.to) throw new UsageError("rotate needs --to KEYPROTECTOR: the KeyProtector to rotate to");
      return { name: "rotate", target, to: values.to, ...common };
    }
    case "revalidate":
      return { name: "revalidate", server: one("server"), ...common };
    case "revert":
      return { name: "revert", database: one("database"), ...common };
    case "impact":
      return { name: "impact", keyProtector: one("keyprotector"), ...common };
    case "local-key": {
      const request = parseLocalKey(args, localKeyFlags);
      if (common.allNamespaces && request.action !== "list")
        throw new UsageError("-A/--all-namespaces is only for local-key list");
      return { name: "local-key", request, ...common };
    }
  }
}

/** `--filter current`, `--filter all` or `--at TIME` (RFC 3339 or anything Date.parse reads). */
export function keyFilter(filter: string | undefined, at: string | undefined): KeyFilter {
  if (filter !== undefined && at !== undefined) {
    throw new UsageError("use either --filter current or --at TIME, not both");
  }
  if (at !== undefined) {
    const t = Date.parse(at);
    if (Number.isNaN(t)) {
      throw new UsageError(`--at must be a time such as 2025-01-31T12:00:00Z, not "${at}"`);
    }
    return { kind: "at", at: new Date(t) };
  }
  if (filter === undefined || filter === "all") return { kind: "all" };
  if (filter === "current") return { kind: "current" };
  throw new UsageError(
    `--filter must be current or all, not "${filter}" (for a point in time use --at TIME)`,
  );
}

function parse(argv: readonly string[]) {
  return parseArgs({
    args: [...argv],
    allowPositionals: true,
    strict: true,
    options: {
      namespace: { type: "string", short: "n" },
      "all-namespaces": { type: "boolean", short: "A" },
      kubeconfig: { type: "string" },
      context: { type: "string" },
      output: { type: "string", short: "o" },
      filter: { type: "string" },
      at: { type: "string" },
      to: { type: "string" },
      size: { type: "string" },
      expires: { type: "string" },
      "not-before": { type: "string" },
      disabled: { type: "boolean" },
      "key-version": { type: "string" },
      force: { type: "boolean" },
      "from-file": { type: "string" },
      help: { type: "boolean", short: "h" },
      version: { type: "boolean" },
    },
  });
}
