import {
  type Condition,
  type ConditionInput,
  ConditionType,
  type EncryptedDatabase,
  type EncryptedServer,
  findCondition,
  Reason,
} from "../api/index.js";
import type { State } from "../watchdog/access-decision.js";
import type { Kube } from "./resources.js";

/**
 * R23: a copy (a restored database, a geo-secondary, a server made from another with spec.source)
 * starts Inaccessible until it is revalidated with its own identity. Whether a resource is a copy
 * is decided by what it IS (its spec), never by whether it already has a state: a restore that
 * first waited for its server recorded Provisioning, and it is still a copy that was never proven.
 */

/** What a resource is a copy of, read from its spec. */
export interface Copy {
  /** how it was made */
  kind: "Restore" | "Secondary" | "ServerRestore" | "ServerReplica";
  /** the source ("namespace/name"): the restore source, the primary, the source server */
  of: string;
  /** who it is, for messages: "database", "server" */
  noun: "database" | "server";
}

/** A database is a copy when it is a restore (spec.restore) or a geo-secondary (R19, R24). */
export function databaseCopy(db: Kube<EncryptedDatabase>): Copy | undefined {
  const ns = db.metadata.namespace ?? "";
  if (db.spec.restore)
    return {
      kind: "Restore",
      of: `${db.spec.restore.sourceRef.namespace ?? ns}/${db.spec.restore.sourceRef.name}`,
      noun: "database",
    };
  const r = db.spec.replication;
  if (r?.role === "Secondary" && r.primaryRef)
    return {
      kind: "Secondary",
      of: `${r.primaryRef.namespace ?? ns}/${r.primaryRef.name}`,
      noun: "database",
    };
  return undefined;
}

/** A server is a copy when it was made from another (spec.source, immutable). */
export function serverCopy(server: Kube<EncryptedServer>): Copy | undefined {
  const source = server.spec.source;
  if (!source) return undefined;
  const ns = server.metadata.namespace ?? "";
  return {
    kind: source.kind === "Restore" ? "ServerRestore" : "ServerReplica",
    of: `${source.sourceRef.namespace ?? ns}/${source.sourceRef.name}`,
    noun: "server",
  };
}

/**
 * A copy is proven once a revalidation succeeded: only a successful unwrap with its own keys and a
 * matching KCV sets Revalidated=True (a failed one sets it False, and the resource is then
 * Inaccessible already). Copies revalidated before this rule existed carry it too.
 */
export function copyProven(conditions: readonly Condition[] | undefined): boolean {
  return findCondition(conditions, ConditionType.Revalidated)?.status === "True";
}

export interface CopyStart {
  /** what holds the copy Inaccessible (the access decision's heldInaccessible) */
  held: { reason: string; message: string };
  /** the Revalidated condition the copy shows while it waits: what brings it back */
  waiting: ConditionInput;
}

const HOW = {
  Restore: "a restore of",
  Secondary: "a geo-secondary of",
  ServerRestore: "a restored copy of",
  ServerReplica: "a replica of",
} as const;

/**
 * R23: the hold on a copy that was never revalidated, whatever state it recorded before
 * (none, Provisioning while it waited for its server, key or source, or even Available). None for
 * a resource that is not a copy, for a proven copy, and for a copy already Inaccessible or
 * Revalidating: its way out is the ordinary revalidation (R11), which a hold would block.
 */
export function copyStart(
  copy: Copy | undefined,
  prev: { state?: string | undefined; conditions?: readonly Condition[] | undefined },
  revalidation: "Automatic" | "Manual" | undefined,
): CopyStart | undefined {
  if (!copy || copyProven(prev.conditions)) return undefined;
  const state = prev.state as State | undefined;
  if (state === "Inaccessible" || state === "Revalidating") return undefined;
  const what = `${HOW[copy.kind]} ${copy.of}`;
  const back =
    revalidation === "Automatic"
      ? "it is revalidated as soon as its key answers a probe"
      : copy.noun === "server"
        ? "change spec.revalidationToken (kubectl tde revalidate) once its key is accessible"
        : "change its server's spec.revalidationToken (kubectl tde revalidate SERVER) once its key is accessible";
  return {
    held: {
      reason: Reason.WaitingForRevalidation,
      message: `this ${copy.noun} is ${what} and starts Inaccessible until it is revalidated with its own keys (R23)`,
    },
    waiting: {
      type: ConditionType.Revalidated,
      status: "False",
      reason: Reason.WaitingForRevalidation,
      message: `this ${copy.noun} is ${what} and has not been revalidated yet: ${back}`,
    },
  };
}

/** What Ready says while Inaccessible: a copy still waiting for its first revalidation says so (R23). */
export function inaccessibleMessage(conditions: readonly Condition[] | undefined, otherwise: string): string {
  return findCondition(conditions, ConditionType.Revalidated)?.reason === Reason.WaitingForRevalidation
    ? `a copy starts Inaccessible until it is revalidated (R23): ${otherwise}`
    : otherwise;
}
