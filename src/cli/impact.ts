/**
 * `kubectl tde impact KEYPROTECTOR`: every server and database that would be hurt if this key
 * became unusable, and how it uses it. A reference is by name in the resource's own namespace
 * (R31); the same key material elsewhere is found by thumbprint (R3). Pure.
 */
import type { EncryptedDatabase, EncryptedServer, KeyProtector } from "../api/index.js";
import type { Column } from "./format.js";

/** The key looked for: a KeyProtector's namespace, name and (once probed) thumbprint. */
export interface ImpactTarget {
  namespace: string;
  name: string;
  thumbprint?: string;
}

export interface ImpactRow {
  kind: "EncryptedServer" | "EncryptedDatabase";
  /** a primary's secondary in another cluster (R19), as its status.remoteSecondaries reports it */
  cluster?: string;
  namespace: string;
  name: string;
  state: string;
  /** how it uses the key, most serious first, e.g. "protector", "inherited from server shop" */
  uses: string[];
}

export function targetsOf(keyProtectors: readonly KeyProtector[], name: string): ImpactTarget[] {
  return keyProtectors
    .filter((kp) => kp.metadata.name === name)
    .map((kp) => {
      const t: ImpactTarget = { namespace: kp.metadata.namespace ?? "", name };
      if (kp.status?.thumbprint) t.thumbprint = kp.status.thumbprint;
      return t;
    });
}

function serverUses(server: EncryptedServer, target: ImpactTarget): string[] {
  const uses: string[] = [];
  const sameNamespace = server.metadata.namespace === target.namespace;
  const status = server.status?.protector;
  const requested = server.spec.protector?.keyProtectorRef?.name;
  if (sameNamespace && status?.keyProtectorName === target.name) uses.push("protector");
  else if (target.thumbprint && status?.thumbprint === target.thumbprint)
    uses.push("protector (same key material)");
  if (sameNamespace && requested === target.name && status?.keyProtectorName !== target.name) {
    uses.push("protector (requested)");
  }
  return uses;
}

function databaseUses(
  db: EncryptedDatabase,
  target: ImpactTarget,
  serverOf: (db: EncryptedDatabase) => EncryptedServer | undefined,
): string[] {
  const uses: string[] = [];
  const sameNamespace = db.metadata.namespace === target.namespace;
  const effective = db.status?.effectiveProtector;
  const own = db.spec.encryptionProtector?.keyProtectorRef?.name;
  const matches = (name: string | undefined, thumbprint: string | undefined) =>
    (sameNamespace && name === target.name) ||
    (target.thumbprint !== undefined && thumbprint === target.thumbprint);

  if (effective && matches(effective.keyProtectorName, effective.thumbprint)) {
    const how = effective.source === "Server" ? `inherited from server ${db.spec.serverRef.name}` : "own";
    const sameMaterial = !(sameNamespace && effective.keyProtectorName === target.name);
    uses.push(`protector (${how}${sameMaterial ? ", same key material" : ""})`);
  } else if (sameNamespace && own === target.name) {
    uses.push("protector (requested)");
  } else if (!effective && !db.spec.encryptionProtector) {
    const server = serverOf(db);
    if (server && serverUses(server, target).length > 0) {
      uses.push(`protector (inherited from server ${db.spec.serverRef.name})`);
    }
  }
  if (sameNamespace && db.spec.keys?.some((k) => k.keyProtectorRef.name === target.name)) {
    uses.push("additional key");
  }
  const rotation = db.status?.rotation;
  if (rotation && matches(rotation.toKeyProtectorName, rotation.toThumbprint)) uses.push("rotation target");

  const history = db.status?.keyList ?? [];
  const inHistory = history.filter((e) => matches(e.keyProtectorName, e.thumbprint));
  const current = inHistory.filter((e) => e.until === undefined);
  if (current.some((e) => e.role === "additional") && !uses.includes("additional key")) {
    uses.push("additional key (key list)");
  }
  const past = inHistory.filter((e) => e.until !== undefined);
  if (past.length > 0 && current.length === 0) {
    const last = past
      .map((e) => e.until as string)
      .sort()
      .at(-1);
    uses.push(`key history until ${last} (restores to before then need it)`);
  }
  return uses;
}

/**
 * Every server and database using one of the targets. `servers` and `databases` are those in
 * scope: one namespace, or all with -A.
 */
export function findImpact(
  targets: readonly ImpactTarget[],
  servers: readonly EncryptedServer[],
  databases: readonly EncryptedDatabase[],
): ImpactRow[] {
  const byKey = new Map(servers.map((s) => [`${s.metadata.namespace}/${s.metadata.name}`, s]));
  const serverOf = (db: EncryptedDatabase) => byKey.get(`${db.metadata.namespace}/${db.spec.serverRef.name}`);
  const rows: ImpactRow[] = [];
  const add = (row: ImpactRow) => {
    const existing = rows.find(
      (r) =>
        r.kind === row.kind &&
        r.cluster === row.cluster &&
        r.namespace === row.namespace &&
        r.name === row.name,
    );
    if (!existing) {
      rows.push(row);
      return;
    }
    const merged = [...existing.uses, ...row.uses.filter((u) => !existing.uses.includes(u))];
    // A direct use (by name) says more than the same use found through another namespace's key.
    existing.uses = merged.filter((u) => {
      const direct = u.replace(" (same key material)", "").replace(", same key material)", ")");
      return direct === u || !merged.includes(direct);
    });
  };
  for (const target of targets) {
    for (const server of servers) {
      const uses = serverUses(server, target);
      if (uses.length > 0)
        add({ kind: "EncryptedServer", ...where(server), state: server.status?.state ?? "Pending", uses });
    }
    for (const db of databases) {
      const uses = databaseUses(db, target, serverOf);
      if (uses.length > 0)
        add({ kind: "EncryptedDatabase", ...where(db), state: db.status?.state ?? "Pending", uses });
      for (const row of remoteSecondaryUses(db, target)) add(row);
    }
  }
  // this cluster's rows first, then each other cluster's
  return rows.sort(
    (a, b) =>
      (a.cluster ?? "").localeCompare(b.cluster ?? "") ||
      a.namespace.localeCompare(b.namespace) ||
      kindOrder(a) - kindOrder(b) ||
      a.name.localeCompare(b.name),
  );
}

/**
 * R3 R21: a primary's secondaries in other clusters whose protector holds the same key material
 * (by thumbprint): the primary's next rotation waits for them, and they lose the key with it.
 */
function remoteSecondaryUses(db: EncryptedDatabase, target: ImpactTarget): ImpactRow[] {
  if (!target.thumbprint) return [];
  return (db.status?.remoteSecondaries ?? [])
    .filter((s) => s.protectorThumbprint === target.thumbprint)
    .map((s) => ({
      kind: "EncryptedDatabase",
      cluster: s.cluster,
      namespace: s.namespace,
      name: s.name,
      state: s.state,
      uses: [`protector (same key material, secondary of ${db.metadata.namespace}/${db.metadata.name})`],
    }));
}

function where(o: { metadata: { namespace?: string; name?: string } }) {
  return { namespace: o.metadata.namespace ?? "", name: o.metadata.name ?? "" };
}

/** The table's columns; CLUSTER only when a row is in another cluster. */
export function impactColumns(rows: readonly ImpactRow[] = []): Column<ImpactRow>[] {
  const cluster: Column<ImpactRow>[] = rows.some((r) => r.cluster)
    ? [{ header: "CLUSTER", cell: (r) => r.cluster ?? "" }]
    : [];
  return [
    { header: "KIND", cell: (r) => (r.kind === "EncryptedServer" ? "esrv" : "edb") },
    ...cluster,
    { header: "NAMESPACE", cell: (r) => r.namespace },
    { header: "NAME", cell: (r) => r.name },
    { header: "STATE", cell: (r) => r.state },
    { header: "USES", cell: (r) => r.uses.join("; ") },
  ];
}

const kindOrder = (r: ImpactRow) => (r.kind === "EncryptedServer" ? 0 : 1);
