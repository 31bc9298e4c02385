/**
 * Command-line parsing for `tde-agent`. Pure: argv and an environment map in, a typed command
 * out, or a UsageError whose message says what to write instead.
 */
import { parseArgs } from "node:util";
import {
  AZURE_SETTING_FLAGS,
  AZURE_SETTINGS_USAGE,
  type AzureSettings,
  parseAzureSettings,
} from "../kms/azure-settings.js";
import { KEY_FILE_FORMATS, type KeyFileFormat, MARIADB_MAX_KEY_ID } from "./key-file.js";

/** How the agent authenticates to Azure Key Vault; mirrors KeyProtector.spec.identity types. */
export type AgentIdentityType = "Default" | "WorkloadIdentity" | "ManagedIdentity";
export const AGENT_IDENTITY_TYPES: readonly AgentIdentityType[] = [
  "Default",
  "WorkloadIdentity",
  "ManagedIdentity",
];

export interface UnwrapCommand {
  command: "unwrap";
  /** the mounted Secret directory, a Secret manifest (JSON or YAML) or the envelope document itself */
  envelope: string;
  /** where the key file goes; must be on a memory-backed file system unless allowDisk */
  out: string;
  format: KeyFileFormat;
  /** MariaDB key ids the DEK is written under (mariadb format only); default [1] */
  keyIDs: number[];
  /** kubeconfig for the Local provider; undefined: in-cluster, then the default kubeconfig */
  kubeconfig: string | undefined;
  identity: { type: AgentIdentityType; clientID?: string; tenantID?: string };
  allowDisk: boolean;
  /** upper bound for the whole unwrap, in milliseconds */
  timeoutMs: number;
  /** how to reach a vault beyond the public cloud's defaults (a private CA, an emulator, a sovereign cloud) */
  azureSettings: AzureSettings;
}

export type AgentCommand = UnwrapCommand | { command: "help" } | { command: "version" };

/** A mistake on the command line: exit code 64 with this message and the usage text. */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

export const USAGE = `tde-agent: writes a database's data-encryption key where its engine expects it

Usage:
  tde-agent unwrap --envelope PATH --out FILE --format raw|hex|mariadb [options]

  --envelope PATH     the envelope Secret as mounted: its volume directory, a Secret manifest
                      (JSON or YAML), or the envelope.json document itself
  --out FILE          the key file to write (mode 0400); on a memory-backed file system
                      (tmpfs, e.g. an emptyDir with medium: Memory)
  --format FORMAT     raw: the 32 key bytes; hex: 64 hex characters;
                      mariadb: file_key_management lines "<id>;<64 hex>"
  --key-id N          mariadb only: the key id to write (repeat for several ids; default 1)
  --kubeconfig FILE   for keys of the Local provider (default: in-cluster, then $KUBECONFIG)
  --identity TYPE     Azure: Default | WorkloadIdentity | ManagedIdentity (default: Default)
  --client-id ID      Azure: the managed identity's or application's client id
  --tenant-id ID      Azure: the tenant of a workload identity
  --allow-disk        allow a key file on a disk-backed file system (not for production)
  --timeout DURATION  give up after this long, e.g. 30s or 2m (default 60s)
  -h, --help          show this text
  --version           show the version

Azure Key Vault:
${AZURE_SETTINGS_USAGE}

Environment: TDE_AGENT_KUBECONFIG, AZURE_CLIENT_ID and AZURE_TENANT_ID stand in for the flags of
the same meaning; flags win.

Exit codes: 0 written; 64 usage; 65 envelope unreadable or key check failed;
69 key unreachable (revoked, disabled, deleted, no permission, vault down); 73 cannot write the
key file where asked; 1 anything else.`;

const TIMEOUT_PATTERN = /^([0-9]+)(ms|s|m)$/;

function parseTimeout(text: string): number {
  const match = TIMEOUT_PATTERN.exec(text);
  if (!match) throw new UsageError(`--timeout must be a number with ms, s or m, e.g. "30s", got "${text}"`);
  const n = Number(match[1]);
  const unit = match[2];
  const ms = unit === "ms" ? n : unit === "s" ? n * 1000 : n * 60_000;
  if (ms <= 0) throw new UsageError("--timeout must be longer than zero");
  return ms;
}

function parseKeyID(text: string): number {
  if (!/^[0-9]+$/.test(text)) throw new UsageError(`--key-id must be a whole number, got "${text}"`);
  const n = Number(text);
  if (n < 1 || n > MARIADB_MAX_KEY_ID) {
    throw new UsageError(`--key-id must be between 1 and ${MARIADB_MAX_KEY_ID}, got ${text}`);
  }
  return n;
}

const nonEmpty = (value: string | undefined): string | undefined =>
  value === undefined || value.trim() === "" ? undefined : value;

/** Parses `tde-agent` arguments (without the node and script paths). */
export function parseAgentArgs(
  argv: readonly string[],
  env: Record<string, string | undefined> = {},
): AgentCommand {
  let parsed: ReturnType<typeof parseUnwrapFlags>;
  const [first, ...rest] = argv;
  if (first === undefined || first === "help" || first === "-h" || first === "--help")
    return { command: "help" };
  if (first === "version" || first === "--version") return { command: "version" };
  if (first !== "unwrap") {
    throw new UsageError(`unknown command "${first}": the only command is "unwrap"`);
  }
  try {
    parsed = parseUnwrapFlags(rest);
  } catch (error) {
    if (error instanceof UsageError) throw error;
    // node:util parseArgs errors name the flag; keep their text, drop their codes.
    throw new UsageError((error as Error).message);
  }
  const v = parsed.values;
  if (v.help) return { command: "help" };
  if (parsed.positionals.length > 0) {
    throw new UsageError(`unexpected argument "${parsed.positionals[0]}": every input is a --flag`);
  }
  const envelope = nonEmpty(v.envelope);
  const out = nonEmpty(v.out);
  const format = nonEmpty(v.format);
  const missing = [!envelope && "--envelope", !out && "--out", !format && "--format"].filter(Boolean);
  if (missing.length > 0) throw new UsageError(`missing ${missing.join(", ")}`);
  if (!KEY_FILE_FORMATS.includes(format as KeyFileFormat)) {
    throw new UsageError(`--format must be one of ${KEY_FILE_FORMATS.join(", ")}, got "${format}"`);
  }
  const keyIDTexts = v["key-id"] ?? [];
  if (keyIDTexts.length > 0 && format !== "mariadb") {
    throw new UsageError(
      `--key-id applies to --format mariadb only (the ${format} format holds one bare key)`,
    );
  }
  const keyIDs = keyIDTexts.length === 0 ? [1] : keyIDTexts.map(parseKeyID);
  if (new Set(keyIDs).size !== keyIDs.length) throw new UsageError("--key-id names the same id twice");

  const identityType = nonEmpty(v.identity) ?? "Default";
  if (!AGENT_IDENTITY_TYPES.includes(identityType as AgentIdentityType)) {
    throw new UsageError(
      `--identity must be one of ${AGENT_IDENTITY_TYPES.join(", ")}, got "${identityType}"`,
    );
  }
  let azureSettings: AzureSettings;
  try {
    azureSettings = parseAzureSettings(v, env);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const clientID = nonEmpty(v["client-id"]) ?? nonEmpty(env.AZURE_CLIENT_ID);
  const tenantID = nonEmpty(v["tenant-id"]) ?? nonEmpty(env.AZURE_TENANT_ID);

  return {
    command: "unwrap",
    envelope: envelope as string,
    out: out as string,
    format: format as KeyFileFormat,
    keyIDs,
    kubeconfig: nonEmpty(v.kubeconfig) ?? nonEmpty(env.TDE_AGENT_KUBECONFIG),
    identity: {
      type: identityType as AgentIdentityType,
      ...(clientID === undefined ? {} : { clientID }),
      ...(tenantID === undefined ? {} : { tenantID }),
    },
    allowDisk: v["allow-disk"] ?? false,
    timeoutMs: v.timeout === undefined ? 60_000 : parseTimeout(v.timeout),
    azureSettings,
  };
}

function parseUnwrapFlags(args: string[]) {
  return parseArgs({
    args,
    allowPositionals: true,
    strict: true,
    options: {
      envelope: { type: "string" },
      out: { type: "string" },
      format: { type: "string" },
      "key-id": { type: "string", multiple: true },
      kubeconfig: { type: "string" },
      identity: { type: "string" },
      "client-id": { type: "string" },
      "tenant-id": { type: "string" },
      "allow-disk": { type: "boolean" },
      timeout: { type: "string" },
      help: { type: "boolean", short: "h" },
      ...AZURE_SETTING_FLAGS,
    },
  });
}
