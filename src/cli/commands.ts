/**
 * The commands against the API server, through the runtime's KubeClient port: each reads what it
 * needs, decides with the pure functions beside it, writes at most one patch and returns the text
 * to print. Errors a person can act on are CliError with a sentence.
 */

import { readFileSync } from "node:fs";
import {
  ENCRYPTED_DATABASE_RESOURCE,
  ENCRYPTED_SERVER_RESOURCE,
  type EncryptedDatabase,
  type EncryptedServer,
  KEY_PROTECTOR_RESOURCE,
  type KeyProtector,
} from "../api/index.js";
import { ApiError, isNotFound, type KubeClient, PatchType, type ResourceKind } from "../runtime/index.js";
import type { Command, CommonOptions } from "./args.js";
import {
  parseTarget,
  revalidatePatch,
  revertPatch,
  revertRefusal,
  rotatePatch,
  type TargetKind,
} from "./changes.js";
import { render } from "./format.js";
import { findImpact, type ImpactTarget, impactColumns, targetsOf } from "./impact.js";
import { describeFilter, keyColumns, selectKeys, sortKeys } from "./keys.js";
import {
  listKeys,
  keyColumns as localKeyColumns,
  refusal,
  vaultOver,
  versionColumns,
  versionRow,
  versionRows,
  wouldLoseAccess,
} from "./local-key.js";
import { statusColumns, statusRows } from "./status.js";

export class CliError extends Error {
  override readonly name = "CliError";
}

export const FIELD_MANAGER = "kubectl-tde";

export interface CliContext {
  client: KubeClient;
  /** the namespace when neither -n nor -A was given (the kubeconfig context's) */
  defaultNamespace: string;
  now?: () => Date;
}

type Scoped = CommonOptions & { name: Command["name"] };

const RESOURCES: Record<TargetKind, ResourceKind> = {
  EncryptedServer: ENCRYPTED_SERVER_RESOURCE,
  EncryptedDatabase: ENCRYPTED_DATABASE_RESOURCE,
};
const NOUN: Record<TargetKind | "KeyProtector", string> = {
  KeyProtector: "keyprotector",
  EncryptedServer: "encryptedserver",
  EncryptedDatabase: "encrypteddatabase",
};

function namespaceOf(ctx: CliContext, options: Scoped): string {
  return options.namespace ?? ctx.defaultNamespace;
}

async function listAll<T>(ctx: CliContext, kind: ResourceKind, namespace: string | undefined): Promise<T[]> {
  const items: T[] = [];
  let cont: string | undefined;
  do {
    const page = await ctx.client.list(kind, namespace, { limit: 500, ...(cont ? { continue: cont } : {}) });
    items.push(...(page.items as T[]));
    cont = page.metadata.continue || undefined;
  } while (cont);
  return items;
}

async function getOrExplain<T>(
  ctx: CliContext,
  kind: TargetKind | "KeyProtector",
  namespace: string,
  name: string,
): Promise<T> {
  const resource = kind === "KeyProtector" ? KEY_PROTECTOR_RESOURCE : RESOURCES[kind];
  try {
    return (await ctx.client.get(resource, namespace, name)) as T;
  } catch (err) {
    if (isNotFound(err)) throw new CliError(`${NOUN[kind]} "${name}" not found in namespace ${namespace}`);
    throw err;
  }
}

async function patchSpec<T>(
  ctx: CliContext,
  kind: TargetKind,
  namespace: string,
  name: string,
  patch: object,
): Promise<T> {
  try {
    return (await ctx.client.patch(RESOURCES[kind], namespace, name, patch, {
      type: PatchType.Merge,
      fieldManager: FIELD_MANAGER,
    })) as T;
  } catch (err) {
    if (err instanceof ApiError && (err.statusCode === 422 || err.statusCode === 400)) {
      throw new CliError(`the API server refused the change to ${NOUN[kind]} ${name}: ${err.message}`);
    }
    throw err;
  }
}

/** Finds NAME (or kind/NAME) among servers and databases; a bare name used by both is ambiguous. */
async function resolveTarget(
  ctx: CliContext,
  namespace: string,
  text: string,
  only?: TargetKind,
): Promise<{ kind: TargetKind; object: EncryptedServer | EncryptedDatabase }> {
  const parsed = parseTarget(text);
  if (parsed.kind && only && parsed.kind !== only) {
    throw new CliError(`"${text}" is a ${NOUN[parsed.kind]}; this command takes a ${NOUN[only]}`);
  }
  const kinds: TargetKind[] = parsed.kind
    ? [parsed.kind]
    : only
      ? [only]
      : ["EncryptedServer", "EncryptedDatabase"];
  const found: { kind: TargetKind; object: EncryptedServer | EncryptedDatabase }[] = [];
  for (const kind of kinds) {
    try {
      found.push({
        kind,
        object: (await ctx.client.get(RESOURCES[kind], namespace, parsed.name)) as unknown as EncryptedServer,
      });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }
  if (found.length === 0) {
    throw new CliError(
      `${kinds.map((k) => NOUN[k]).join(" or ")} "${parsed.name}" not found in namespace ${namespace}`,
    );
  }
  if (found.length > 1) {
    throw new CliError(
      `both an encryptedserver and an encrypteddatabase are named "${parsed.name}" in namespace ${namespace}: write esrv/${parsed.name} or edb/${parsed.name}`,
    );
  }
  return found[0] as { kind: TargetKind; object: EncryptedServer | EncryptedDatabase };
}

export async function status(ctx: CliContext, options: Scoped): Promise<string> {
  const ns = options.allNamespaces ? undefined : namespaceOf(ctx, options);
  const [kps, servers, dbs] = await Promise.all([
    listAll<KeyProtector>(ctx, KEY_PROTECTOR_RESOURCE, ns),
    listAll<EncryptedServer>(ctx, ENCRYPTED_SERVER_RESOURCE, ns),
    listAll<EncryptedDatabase>(ctx, ENCRYPTED_DATABASE_RESOURCE, ns),
  ]);
  const rows = statusRows(kps, servers, dbs);
  const empty = ns ? `No tde.dev resources found in namespace ${ns}.\n` : "No tde.dev resources found.\n";
  return render(options.output, statusColumns(rows), rows, rows, empty);
}

export async function keys(ctx: CliContext, options: Extract<Command, { name: "keys" }>): Promise<string> {
  const ns = namespaceOf(ctx, options);
  const { name } = parseTarget(options.database);
  const db = await getOrExplain<EncryptedDatabase>(ctx, "EncryptedDatabase", ns, name);
  const selected = sortKeys(selectKeys(db.status?.keyList ?? [], options.filter));
  const empty = `encrypteddatabase ${name} has no keys ${describeFilter(options.filter)}${db.status?.keyList ? "" : " (the operator has not reported its key list yet)"}.\n`;
  return render(options.output, keyColumns(), selected, selected, empty);
}

export async function rotate(
  ctx: CliContext,
  options: Extract<Command, { name: "rotate" }>,
): Promise<string> {
  const ns = namespaceOf(ctx, options);
  const target = await resolveTarget(ctx, ns, options.target);
  const kp = await getOrExplain<KeyProtector>(ctx, "KeyProtector", ns, options.to);
  if (target.kind === "EncryptedDatabase") {
    const db = target.object as EncryptedDatabase;
    if (db.spec.keys?.some((k) => k.keyProtectorRef.name === options.to)) {
      throw new CliError(
        `keyprotector ${options.to} is listed in spec.keys of encrypteddatabase ${db.metadata.name}: remove it from spec.keys first (a protector is never an additional key)`,
      );
    }
  }
  const updated = await patchSpec<EncryptedServer | EncryptedDatabase>(
    ctx,
    target.kind,
    ns,
    target.object.metadata.name ?? "",
    rotatePatch(target.kind, options.to),
  );
  const thumb = kp.status?.thumbprintShort ? ` (thumbprint ${kp.status.thumbprintShort})` : "";
  return changed(
    options,
    updated,
    `${NOUN[target.kind]}/${updated.metadata.name} protector set to keyprotector ${options.to}${thumb}; ` +
      `the operator re-wraps the DEK online (R16): follow it with "kubectl tde status -n ${ns}"\n`,
  );
}

export async function revalidate(
  ctx: CliContext,
  options: Extract<Command, { name: "revalidate" }>,
): Promise<string> {
  const ns = namespaceOf(ctx, options);
  const target = await resolveTarget(ctx, ns, options.server, "EncryptedServer");
  const now = (ctx.now ?? (() => new Date()))();
  const updated = await patchSpec<EncryptedServer>(
    ctx,
    "EncryptedServer",
    ns,
    target.object.metadata.name ?? "",
    revalidatePatch(now),
  );
  return changed(
    options,
    updated,
    `encryptedserver/${updated.metadata.name} revalidation requested (revalidationToken ${updated.spec.revalidationToken}); ` +
      `it becomes Available once the operator unwraps the DEK and checks its KCV (R11)\n`,
  );
}

export async function revert(
  ctx: CliContext,
  options: Extract<Command, { name: "revert" }>,
): Promise<string> {
  const ns = namespaceOf(ctx, options);
  const { object } = await resolveTarget(ctx, ns, options.database, "EncryptedDatabase");
  const db = object as EncryptedDatabase;
  const server = await getOrExplain<EncryptedServer>(ctx, "EncryptedServer", ns, db.spec.serverRef.name);
  const refusal = revertRefusal(db, server);
  if (refusal) throw new CliError(`not reverted: ${refusal}`);
  const updated = await patchSpec<EncryptedDatabase>(
    ctx,
    "EncryptedDatabase",
    ns,
    db.metadata.name ?? "",
    revertPatch(),
  );
  return changed(
    options,
    updated,
    `encrypteddatabase/${updated.metadata.name} reverted to the server's protector (encryptedserver ${server.metadata.name}); ` +
      "the operator re-wraps the DEK\n",
  );
}

export async function impact(
  ctx: CliContext,
  options: Extract<Command, { name: "impact" }>,
): Promise<string> {
  const ns = options.allNamespaces ? undefined : namespaceOf(ctx, options);
  const [kps, servers, dbs] = await Promise.all([
    listAll<KeyProtector>(ctx, KEY_PROTECTOR_RESOURCE, ns),
    listAll<EncryptedServer>(ctx, ENCRYPTED_SERVER_RESOURCE, ns),
    listAll<EncryptedDatabase>(ctx, ENCRYPTED_DATABASE_RESOURCE, ns),
  ]);
  let targets: ImpactTarget[] = targetsOf(kps, options.keyProtector);
  let note = "";
  if (targets.length === 0) {
    if (!ns) throw new CliError(`keyprotector "${options.keyProtector}" not found in any namespace`);
    // Still show what names it: a dangling reference is worth knowing about.
    targets = [{ namespace: ns, name: options.keyProtector }];
    note = `keyprotector "${options.keyProtector}" not found in namespace ${ns}; resources that name it:\n`;
  }
  const rows = findImpact(targets, servers, dbs);
  const where = ns ? `in namespace ${ns}` : "in any namespace";
  const empty = `${note}nothing ${where} uses keyprotector ${options.keyProtector}.\n`;
  const data = { keyProtector: options.keyProtector, targets, dependants: rows };
  const text = render(options.output, impactColumns(rows), rows, data, empty);
  return options.output === "table" && rows.length > 0 ? note + text : text;
}

/** `kubectl tde local-key ...` (R7): the local vault's operations, refusing what would lose a DEK. */
export async function localKey(
  ctx: CliContext,
  options: Extract<Command, { name: "local-key" }>,
): Promise<string> {
  const req = options.request;
  const vault = vaultOver(ctx.client);
  if (req.action === "list") {
    const ns = options.allNamespaces ? undefined : namespaceOf(ctx, options);
    if (req.key) {
      const info = await vault.show(namespaceOf(ctx, options), req.key);
      const rows = versionRows(info);
      return render(options.output, versionColumns(), rows, { ...info, versions: rows });
    }
    const kps = await listAll<KeyProtector>(ctx, KEY_PROTECTOR_RESOURCE, ns);
    const rows = await listKeys(ctx.client, ns, kps);
    const empty = ns ? `No local keys found in namespace ${ns}.\n` : "No local keys found.\n";
    return render(options.output, localKeyColumns(), rows, rows, empty);
  }
  const ns = namespaceOf(ctx, options);
  const key = req.key ?? "";
  const where = `local key ${ns}/${key}`;
  const dates = {
    ...(req.expiresOn ? { expiresOn: req.expiresOn } : {}),
    ...(req.notBefore ? { notBefore: req.notBefore } : {}),
  };
  const created = async (d: Awaited<ReturnType<typeof vault.createKey>>, message: string) => {
    const row = versionRow(ns, key, d, true);
    return options.output === "table"
      ? `${message}\n${render("table", versionColumns(), [row])}`
      : render(options.output, [], [], row);
  };
  const after = async (message: string) => {
    if (options.output === "table") return `${message}\n`;
    const info = await vault.show(ns, key);
    return render(options.output, [], [], { ...info, versions: versionRows(info) });
  };
  switch (req.action) {
    case "create": {
      const d = await vault.createKey(ns, key, {
        ...(req.size ? { size: req.size } : {}),
        ...dates,
        ...(req.disabled ? { enabled: false } : {}),
      });
      return created(
        d,
        `${where} created (version ${d.version}); name it in a KeyProtector's spec.local.secretRef`,
      );
    }
    case "rotate": {
      const d = await vault.rotateKey(ns, key, { ...(req.size ? { size: req.size } : {}), ...dates });
      return created(
        d,
        `${where} rotated: version ${d.version} is current; KeyProtectors on it re-wrap their dependants' DEKs (R6, R16)`,
      );
    }
    case "import": {
      let pem: string;
      try {
        pem = readFileSync(req.fromFile ?? "", "utf8");
      } catch (error) {
        throw new CliError(
          `cannot read --from-file ${req.fromFile}: ${(error as NodeJS.ErrnoException).code ?? "error"}`,
        );
      }
      const d = await vault.importKey(ns, key, pem, {
        ...dates,
        ...(req.disabled ? { enabled: false } : {}),
      });
      return created(
        d,
        `${where}: imported as version ${d.version} (thumbprint ${d.thumbprint.slice(0, 12)})`,
      );
    }
    case "enable":
      await vault.setEnabled(ns, key, true, req.version);
      return after(`${where}: ${req.version ? `version ${req.version}` : "the current version"} enabled`);
    case "disable": {
      const info = await vault.show(ns, key);
      const version = req.version ?? info.versions[0]?.version;
      if (!info.versions.some((v) => v.version === version))
        throw new CliError(
          `${where} has no version ${req.version}: see kubectl tde local-key list ${key} -n ${ns}`,
        );
      if (!req.force)
        await refuseIfLost(
          ctx,
          ns,
          key,
          `disabling version ${version} of ${where}`,
          version,
          info.versions[0]?.version,
        );
      await vault.setEnabled(ns, key, false, version);
      return after(
        `${where}: version ${version} disabled; what it protects loses key access (R10). Undo: kubectl tde local-key enable ${key} -n ${ns}${req.version ? ` --key-version ${version}` : ""}`,
      );
    }
    case "delete":
      if (!req.force) await refuseIfLost(ctx, ns, key, `deleting ${where}`);
      await vault.deleteKey(ns, key);
      return after(
        `${where} deleted (soft: recoverable, like a vault with purge protection). Undo: kubectl tde local-key recover ${key} -n ${ns}`,
      );
    case "recover":
      await vault.recoverKey(ns, key);
      return after(`${where} recovered with all its versions`);
  }
}

/** Throws the refusal when the change would make dependants Inaccessible (the `impact` decision). */
async function refuseIfLost(
  ctx: CliContext,
  ns: string,
  key: string,
  what: string,
  version?: string,
  currentVersion?: string,
): Promise<void> {
  const [kps, servers, dbs] = await Promise.all([
    listAll<KeyProtector>(ctx, KEY_PROTECTOR_RESOURCE, ns),
    listAll<EncryptedServer>(ctx, ENCRYPTED_SERVER_RESOURCE, ns),
    listAll<EncryptedDatabase>(ctx, ENCRYPTED_DATABASE_RESOURCE, ns),
  ]);
  const affected = wouldLoseAccess(
    { namespace: ns, key, ...(version ? { version } : {}), ...(currentVersion ? { currentVersion } : {}) },
    kps,
    servers,
    dbs,
  );
  if (affected.length > 0) throw new CliError(refusal(what, affected));
}

function changed(options: CommonOptions, object: unknown, message: string): string {
  return options.output === "table" ? message : render(options.output, [], [], object);
}

/** Runs one parsed command. */
export function run(
  ctx: CliContext,
  command: Exclude<Command, { name: "help" | "version" }>,
): Promise<string> {
  switch (command.name) {
    case "status":
      return status(ctx, command);
    case "keys":
      return keys(ctx, command);
    case "rotate":
      return rotate(ctx, command);
    case "revalidate":
      return revalidate(ctx, command);
    case "revert":
      return revert(ctx, command);
    case "impact":
      return impact(ctx, command);
    case "local-key":
      return localKey(ctx, command);
  }
}
