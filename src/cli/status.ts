/**
 * `kubectl tde status`: one row per KeyProtector, EncryptedServer and EncryptedDatabase, with
 * state, protector, thumbprint, key access and readiness. Pure: it reads objects, it lists none.
 */

import { parseDuration } from "../api/duration.js";
import {
  type Condition,
  ConditionType,
  DEFAULTS,
  type EncryptedDatabase,
  type EncryptedServer,
  findCondition,
  type KeyProtector,
  shortThumbprint,
} from "../api/index.js";
import { evaluateGrace, formatRemaining } from "../watchdog/grace.js";
import type { Column } from "./format.js";

export interface StatusRow {
  kind: "KeyProtector" | "EncryptedServer" | "EncryptedDatabase";
  /** a secondary in another cluster (R19), as its primary's operator last read it; absent: this cluster */
  cluster?: string;
  namespace: string;
  name: string;
  /** status.state; for a KeyProtector, Accessible or NotAccessible from its Accessible condition */
  state: string;
  /** e.g. "Local invoices-kek", "Server/CustomerManaged shop-key", "Database/ServiceManaged" */
  protector: string;
  thumbprint: string;
  /** "True", or "False (KeyDisabled)" */
  keyAccess: string;
  ready: string;
  /** the Ready condition's message when it is not True: what to do */
  message: string;
}

function conditionCell(c: Condition | undefined): string {
  if (!c) return "Unknown";
  return c.status === "True" ? "True" : `${c.status} (${c.reason})`;
}

function readyOf(conditions: Condition[] | undefined, generation: number | undefined) {
  const ready = findCondition(conditions, ConditionType.Ready);
  if (!ready) return { ready: "Unknown", message: "" };
  const stale =
    ready.observedGeneration !== undefined &&
    generation !== undefined &&
    ready.observedGeneration < generation;
  return {
    ready: stale ? `${ready.status} (stale)` : ready.status,
    message: ready.status === "True" ? "" : ready.message,
  };
}

export function keyProtectorRow(kp: KeyProtector): StatusRow {
  const conditions = kp.status?.conditions;
  const accessible = findCondition(conditions, ConditionType.Accessible);
  const where =
    kp.spec.provider === "AzureKeyVault" && kp.spec.azureKeyVault
      ? `${kp.spec.azureKeyVault.vaultURL.replace(/^https:\/\//, "").replace(/\/$/, "")}/${kp.spec.azureKeyVault.keyName}`
      : (kp.spec.local?.secretRef.name ?? "");
  return {
    kind: "KeyProtector",
    namespace: kp.metadata.namespace ?? "",
    name: kp.metadata.name ?? "",
    state: !accessible ? "Unknown" : accessible.status === "True" ? "Accessible" : "NotAccessible",
    protector: `${kp.spec.provider} ${where}`.trim(),
    thumbprint:
      kp.status?.thumbprintShort ?? (kp.status?.thumbprint ? shortThumbprint(kp.status.thumbprint) : ""),
    keyAccess: conditionCell(accessible),
    ...readyOf(conditions, kp.metadata.generation),
  };
}

/**
 * R10: the KeyAccessible cell of a server whose key access is lost and whose grace period still
 * runs, with the time left; the condition itself names only the fixed deadline (so it is not
 * rewritten at every probe), and the countdown is worked out here, against `now`.
 */
function keyAccessCell(server: EncryptedServer, now: Date): string {
  const c = findCondition(server.status?.conditions, ConditionType.KeyAccessible);
  const cell = conditionCell(c);
  const lost = server.status?.keyAccessLostSince;
  if (c?.status !== "False" || !lost || server.status?.state === "Inaccessible") return cell;
  let graceMs: number;
  try {
    graceMs = parseDuration(server.spec.keyAccessGracePeriod ?? DEFAULTS.keyAccessGracePeriod);
  } catch {
    return cell;
  }
  const verdict = evaluateGrace(new Date(lost), graceMs, now);
  return `False (${c.reason}, Inaccessible in ${formatRemaining(verdict.remainingMs)})`;
}

export function serverRow(server: EncryptedServer, now: Date = new Date()): StatusRow {
  const conditions = server.status?.conditions;
  const p = server.status?.protector;
  const type = p?.type ?? server.spec.protector?.type ?? "ServiceManaged";
  const kp = p?.keyProtectorName ?? server.spec.protector?.keyProtectorRef?.name;
  return {
    kind: "EncryptedServer",
    namespace: server.metadata.namespace ?? "",
    name: server.metadata.name ?? "",
    state: server.status?.state ?? "Pending",
    protector: `Server/${type}${kp ? ` ${kp}` : ""}`,
    thumbprint: p?.thumbprintShort ?? "",
    keyAccess: keyAccessCell(server, now),
    ...readyOf(conditions, server.metadata.generation),
  };
}

export function databaseRow(db: EncryptedDatabase): StatusRow {
  const conditions = db.status?.conditions;
  const e = db.status?.effectiveProtector;
  const own = db.spec.encryptionProtector;
  const source = e?.source ?? (own ? "Database" : "Server");
  const type = e?.type ?? own?.type ?? "";
  const kp = e?.keyProtectorName ?? own?.keyProtectorRef?.name;
  return {
    kind: "EncryptedDatabase",
    namespace: db.metadata.namespace ?? "",
    name: db.metadata.name ?? "",
    state: db.status?.state ?? "Pending",
    protector: `${source}${type ? `/${type}` : ""}${kp ? ` ${kp}` : ""}`,
    thumbprint: e?.thumbprintShort ?? "",
    keyAccess: conditionCell(findCondition(conditions, ConditionType.KeyAccessible)),
    ...readyOf(conditions, db.metadata.generation),
  };
}

/**
 * R19-R22: the rows of a primary's secondaries in other clusters, from its status.remoteSecondaries:
 * the link (Linked, NotLinked, Promoted, Unreachable with why), the protector's thumbprint and,
 * under READY, whether it holds the primary's key list (KeyListSynced, R20).
 */
export function remoteSecondaryRows(db: EncryptedDatabase): StatusRow[] {
  const of = `${db.metadata.namespace ?? ""}/${db.metadata.name ?? ""}`;
  return (db.status?.remoteSecondaries ?? []).map((s) => ({
    kind: "EncryptedDatabase",
    cluster: s.cluster,
    namespace: s.namespace,
    name: s.name,
    state: s.reason ? `${s.state} (${s.reason})` : s.state,
    protector: `secondary of ${of}`,
    thumbprint: s.protectorThumbprint ? shortThumbprint(s.protectorThumbprint) : "",
    keyAccess: "",
    ready: s.keyListSynced ? `KeyListSynced=${s.keyListSynced}` : "Unknown",
    message: "",
  }));
}

const KIND_ORDER = { KeyProtector: 0, EncryptedServer: 1, EncryptedDatabase: 2 } as const;

/** Rows sorted by namespace, then kind (keys, servers, databases), then name; a primary's secondaries in other clusters right after it. */
export function statusRows(
  keyProtectors: readonly KeyProtector[],
  servers: readonly EncryptedServer[],
  databases: readonly EncryptedDatabase[],
  now: Date = new Date(),
): StatusRow[] {
  const local = [
    ...keyProtectors.map(keyProtectorRow),
    ...servers.map((s) => serverRow(s, now)),
    ...databases.map(databaseRow),
  ].sort(
    (a, b) =>
      a.namespace.localeCompare(b.namespace) ||
      KIND_ORDER[a.kind] - KIND_ORDER[b.kind] ||
      a.name.localeCompare(b.name),
  );
  const remote = new Map(databases.map((d) => [`${d.metadata.namespace}/${d.metadata.name}`, d]));
  return local.flatMap((row) => {
    const db = row.kind === "EncryptedDatabase" ? remote.get(`${row.namespace}/${row.name}`) : undefined;
    return db ? [row, ...remoteSecondaryRows(db)] : [row];
  });
}

const SHORT_KIND = { KeyProtector: "kp", EncryptedServer: "esrv", EncryptedDatabase: "edb" } as const;

/** The table's columns; CLUSTER only when a row is in another cluster. */
export function statusColumns(rows: readonly StatusRow[] = []): Column<StatusRow>[] {
  const cluster: Column<StatusRow>[] = rows.some((r) => r.cluster)
    ? [{ header: "CLUSTER", cell: (r) => r.cluster ?? "" }]
    : [];
  return [
    { header: "KIND", cell: (r) => SHORT_KIND[r.kind] },
    ...cluster,
    { header: "NAMESPACE", cell: (r) => r.namespace },
    { header: "NAME", cell: (r) => r.name },
    { header: "STATE", cell: (r) => r.state },
    { header: "PROTECTOR", cell: (r) => r.protector },
    { header: "THUMBPRINT", cell: (r) => r.thumbprint },
    { header: "KEY-ACCESS", cell: (r) => r.keyAccess },
    { header: "READY", cell: (r) => r.ready },
  ];
}
