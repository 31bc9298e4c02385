/**
 * `kubectl tde local-key create | rotate | disable | enable | import | list | delete | recover`:
 * people operate Local KEKs (R7) with a vault's semantics. The pure parts (which action, its
 * flags, what a change would hurt, the rows) are here; the run goes through the local vault over
 * the CLI's KubeClient. Refuses what would lose a DEK: disabling a version DEKs are wrapped by, or
 * deleting a key that protects DEKs, needs --force and names the dependants that become
 * Inaccessible (the `impact` decision).
 */
import type { EncryptedDatabase, EncryptedServer, KeyProtector } from "../api/index.js";
import { shortThumbprint } from "../api/index.js";
import { LOCAL_KEY_SECRET_TYPE, localKeyID, parseStoredKey } from "../kms/local-key-format.js";
import { LocalKeyStore } from "../kms/local-key-store.js";
import { secretsOverKubeClient } from "../kms/local-secrets.js";
import { describeStoredKey, type LocalKeyInfo, LocalVault } from "../kms/local-vault.js";
import type { KeyDescription } from "../kms/provider.js";
import type { KubeClient, KubeObject, ResourceKind } from "../runtime/index.js";
import { UsageError } from "./args.js";
import { type Column, shortTime } from "./format.js";
import { findImpact, type ImpactRow, targetsOf } from "./impact.js";

export const LOCAL_KEY_ACTIONS = [
  "create",
  "rotate",
  "disable",
  "enable",
  "import",
  "list",
  "delete",
  "recover",
] as const;
export type LocalKeyAction = (typeof LOCAL_KEY_ACTIONS)[number];

/** What `local-key` was asked, once its flags are checked. */
export interface LocalKeyRequest {
  action: LocalKeyAction;
  /** the key (its Secret's name); absent only for `list` */
  key?: string;
  size?: number;
  expiresOn?: Date;
  notBefore?: Date;
  /** create or import disabled */
  disabled?: boolean;
  /** disable or enable: one version (default: the current one) */
  version?: string;
  force?: boolean;
  /** import: the PEM file */
  fromFile?: string;
}

export interface LocalKeyFlags {
  size?: string | undefined;
  expires?: string | undefined;
  "not-before"?: string | undefined;
  disabled?: boolean | undefined;
  "key-version"?: string | undefined;
  force?: boolean | undefined;
  "from-file"?: string | undefined;
}

const FLAG_ACTIONS: Record<keyof LocalKeyFlags, LocalKeyAction[]> = {
  size: ["create", "rotate"],
  expires: ["create", "rotate", "import"],
  "not-before": ["create", "rotate", "import"],
  disabled: ["create", "import"],
  "key-version": ["disable", "enable"],
  force: ["disable", "delete"],
  "from-file": ["import"],
};

/** `local-key ACTION [NAME]` and its flags. Pure; throws UsageError with a sentence. */
export function parseLocalKey(args: readonly string[], flags: LocalKeyFlags): LocalKeyRequest {
  const [action, ...rest] = args;
  if (action === undefined || !(LOCAL_KEY_ACTIONS as readonly string[]).includes(action)) {
    throw new UsageError(
      `local-key needs an action: ${LOCAL_KEY_ACTIONS.join(", ")}${action === undefined ? "" : ` (not "${action}")`}`,
    );
  }
  const act = action as LocalKeyAction;
  for (const [flag, actions] of Object.entries(FLAG_ACTIONS) as [keyof LocalKeyFlags, LocalKeyAction[]][]) {
    if (flags[flag] !== undefined && !actions.includes(act))
      throw new UsageError(`--${flag} is only for local-key ${actions.join(", ")}`);
  }
  if (rest.length > 1)
    throw new UsageError(`local-key ${act} takes one key name, got ${rest.length}: ${rest.join(" ")}`);
  const key = rest[0];
  if (key === undefined && act !== "list")
    throw new UsageError(`local-key ${act} needs the key's name: kubectl tde local-key ${act} NAME`);
  if (key !== undefined && !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(key))
    throw new UsageError(`"${key}" is not a Secret name: lowercase letters, digits, '-' and '.'`);
  const request: LocalKeyRequest = { action: act, ...(key === undefined ? {} : { key }) };
  if (flags.size !== undefined) {
    const size = Number(flags.size);
    if (!Number.isInteger(size) || size < 2048 || size > 8192)
      throw new UsageError(
        `--size must be an RSA key size in bits from 2048 to 8192, e.g. 3072, not "${flags.size}"`,
      );
    request.size = size;
  }
  if (flags.expires !== undefined) request.expiresOn = timeFlag("--expires", flags.expires);
  if (flags["not-before"] !== undefined) request.notBefore = timeFlag("--not-before", flags["not-before"]);
  if (flags.disabled) request.disabled = true;
  if (flags["key-version"] !== undefined) request.version = flags["key-version"];
  if (flags.force) request.force = true;
  if (act === "import") {
    if (!flags["from-file"])
      throw new UsageError(
        "local-key import needs --from-file PATH: a PEM RSA private key (PKCS#8 or PKCS#1)",
      );
    request.fromFile = flags["from-file"];
  }
  return request;
}

function timeFlag(flag: string, text: string): Date {
  const t = Date.parse(text);
  if (Number.isNaN(t))
    throw new UsageError(`${flag} must be a time such as 2026-12-31T00:00:00Z, not "${text}"`);
  return new Date(t);
}

/** A version as printed and as JSON: what a vault shows, no key material. */
export interface VersionRow {
  key: string;
  namespace: string;
  version: string;
  current: boolean;
  enabled: boolean;
  size: number;
  created?: string;
  notBefore?: string;
  expires?: string;
  thumbprint: string;
  keyID: string;
}

/** A key as `list` prints it. */
export interface KeyRow {
  namespace: string;
  name: string;
  /** Active, Deleted, or Unreadable */
  state: string;
  deletedAt?: string;
  versions: number;
  current?: VersionRow;
  /** KeyProtectors that name it (in its namespace) */
  keyProtectors: string[];
}

export function versionRows(info: LocalKeyInfo): VersionRow[] {
  return info.versions.map((d, i) => versionRow(info.namespace, info.name, d, i === 0));
}

export function versionRow(namespace: string, key: string, d: KeyDescription, current: boolean): VersionRow {
  return {
    key,
    namespace,
    version: d.version,
    current,
    enabled: d.enabled,
    size: d.keySize,
    ...(d.createdOn ? { created: d.createdOn.toISOString() } : {}),
    ...(d.notBefore ? { notBefore: d.notBefore.toISOString() } : {}),
    ...(d.expiresOn ? { expires: d.expiresOn.toISOString() } : {}),
    thumbprint: d.thumbprint,
    keyID: d.keyID,
  };
}

export function versionColumns(): Column<VersionRow>[] {
  return [
    { header: "KEY", cell: (r) => r.key },
    { header: "VERSION", cell: (r) => r.version },
    { header: "CURRENT", cell: (r) => (r.current ? "yes" : "") },
    { header: "ENABLED", cell: (r) => String(r.enabled) },
    { header: "SIZE", cell: (r) => String(r.size) },
    { header: "CREATED", cell: (r) => shortTime(r.created) },
    { header: "NOT-BEFORE", cell: (r) => shortTime(r.notBefore) },
    { header: "EXPIRES", cell: (r) => shortTime(r.expires) },
    { header: "THUMBPRINT", cell: (r) => shortThumbprint(r.thumbprint) },
  ];
}

export function keyColumns(): Column<KeyRow>[] {
  return [
    { header: "NAMESPACE", cell: (r) => r.namespace },
    { header: "NAME", cell: (r) => r.name },
    { header: "STATE", cell: (r) => (r.deletedAt ? `Deleted ${shortTime(r.deletedAt)}` : r.state) },
    { header: "VERSIONS", cell: (r) => String(r.versions) },
    { header: "CURRENT", cell: (r) => r.current?.version ?? "" },
    { header: "ENABLED", cell: (r) => (r.current ? String(r.current.enabled) : "") },
    { header: "SIZE", cell: (r) => (r.current ? String(r.current.size) : "") },
    { header: "EXPIRES", cell: (r) => shortTime(r.current?.expires) },
    { header: "THUMBPRINT", cell: (r) => (r.current ? shortThumbprint(r.current.thumbprint) : "") },
    { header: "KEYPROTECTORS", cell: (r) => r.keyProtectors.join(",") },
  ];
}

/** The KeyProtectors (in the key's namespace, R31) that name the Local key. */
export function keyProtectorsOf(
  keyProtectors: readonly KeyProtector[],
  namespace: string,
  key: string,
): KeyProtector[] {
  return keyProtectors.filter(
    (kp) =>
      kp.metadata.namespace === namespace &&
      kp.spec.provider === "Local" &&
      kp.spec.local?.secretRef.name === key,
  );
}

const wrappedBy = (
  row: ImpactRow,
  servers: readonly EncryptedServer[],
  dbs: readonly EncryptedDatabase[],
) => {
  const same = (o: { metadata: { namespace?: string; name?: string } }) =>
    o.metadata.namespace === row.namespace && o.metadata.name === row.name;
  return row.kind === "EncryptedServer"
    ? servers.find(same)?.status?.protector?.keyID
    : dbs.find(same)?.status?.effectiveProtector?.keyID;
};

/**
 * Who becomes Inaccessible if the key (delete) or one version of it (disable) stops answering:
 * every dependant whose protector is one of the key's KeyProtectors (`impact`'s "protector" uses).
 * Disabling the current version hurts all of them (R6: the current version is used, never an
 * older one); disabling an older version, those whose DEK is still wrapped by it. Pure.
 */
export function wouldLoseAccess(
  change: { namespace: string; key: string; version?: string; currentVersion?: string },
  keyProtectors: readonly KeyProtector[],
  servers: readonly EncryptedServer[],
  dbs: readonly EncryptedDatabase[],
): ImpactRow[] {
  const targets = keyProtectorsOf(keyProtectors, change.namespace, change.key).flatMap((kp) =>
    targetsOf([kp], kp.metadata.name ?? ""),
  );
  const protecting = findImpact(targets, servers, dbs)
    .filter((r) => r.namespace === change.namespace)
    .filter((r) => r.uses.some((u) => u.startsWith("protector")));
  if (change.version === undefined || change.version === change.currentVersion) return protecting;
  const keyID = localKeyID(change.namespace, change.key, change.version);
  return protecting.filter((r) => wrappedBy(r, servers, dbs) === keyID);
}

/** The refusal's sentence, naming each dependant and how it uses the key. */
export function refusal(what: string, affected: readonly ImpactRow[]): string {
  const names = affected
    .map((r) => `${r.kind === "EncryptedServer" ? "esrv" : "edb"}/${r.name} (${r.uses.join("; ")})`)
    .join(", ");
  return `refused: ${what} would make ${affected.length === 1 ? "this dependant" : `these ${affected.length} dependants`} lose key access and become Inaccessible once their grace period runs out: ${names}. Rotate them to another key first (kubectl tde rotate), or repeat with --force to do it anyway`;
}

const SECRETS: ResourceKind = { group: "", version: "v1", plural: "secrets", kind: "Secret" };

/** The local vault over the CLI's own client. */
export function vaultOver(client: KubeClient): LocalVault {
  return new LocalVault(new LocalKeyStore(secretsOverKubeClient(client)));
}

/** Every Local key in the namespace (or all), with the KeyProtectors naming it. */
export async function listKeys(
  client: KubeClient,
  namespace: string | undefined,
  keyProtectors: readonly KeyProtector[],
): Promise<KeyRow[]> {
  const rows: KeyRow[] = [];
  let cont: string | undefined;
  do {
    const page = await client.list<KubeObject>(SECRETS, namespace, {
      fieldSelector: `type=${LOCAL_KEY_SECRET_TYPE}`,
      limit: 500,
      ...(cont ? { continue: cont } : {}),
    });
    for (const secret of page.items) rows.push(keyRow(secret, keyProtectors));
    cont = page.metadata.continue || undefined;
  } while (cont);
  return rows.sort((a, b) => a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name));
}

function keyRow(secret: KubeObject, keyProtectors: readonly KeyProtector[]): KeyRow {
  const namespace = secret.metadata?.namespace ?? "";
  const name = secret.metadata?.name ?? "";
  const kps = keyProtectorsOf(keyProtectors, namespace, name).map((kp) => kp.metadata.name ?? "");
  try {
    const info = describeStoredKey(namespace, name, parseStoredKey(secret, namespace, name));
    const [current] = versionRows(info);
    return {
      namespace,
      name,
      state: "Active",
      ...(info.deletedAt ? { deletedAt: info.deletedAt, state: "Deleted" } : {}),
      versions: info.versions.length,
      ...(current ? { current } : {}),
      keyProtectors: kps,
    };
  } catch {
    return { namespace, name, state: "Unreadable", versions: 0, keyProtectors: kps };
  }
}
