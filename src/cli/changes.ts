/**
 * The spec changes kubectl-tde asks for: rotate, revalidate, revert. Each is a JSON merge patch
 * of the spec; the operator does the work (R11, R14, R16) and reports on conditions. Pure.
 */
import type { EncryptedDatabase, EncryptedServer } from "../api/index.js";
import { chooseProtector, type ProtectorChoice } from "../controllers/protector-choice.js";
import { UsageError } from "./args.js";

export type TargetKind = "EncryptedServer" | "EncryptedDatabase";

/** `esrv/NAME`, `encryptedserver/NAME`, `edb/NAME`... or a bare NAME (kind undefined). */
export function parseTarget(text: string): { kind?: TargetKind; name: string } {
  const slash = text.indexOf("/");
  if (slash < 0) return { name: text };
  const prefix = text
    .slice(0, slash)
    .toLowerCase()
    .replace(/\.tde\.dev$/, "");
  const name = text.slice(slash + 1);
  const kinds: Record<string, TargetKind> = {
    esrv: "EncryptedServer",
    server: "EncryptedServer",
    encryptedserver: "EncryptedServer",
    encryptedservers: "EncryptedServer",
    edb: "EncryptedDatabase",
    database: "EncryptedDatabase",
    db: "EncryptedDatabase",
    encrypteddatabase: "EncryptedDatabase",
    encrypteddatabases: "EncryptedDatabase",
  };
  const kind = kinds[prefix];
  if (!kind || !name) {
    throw new UsageError(`"${text}" is not a server or database: write NAME, esrv/NAME or edb/NAME`);
  }
  return { kind, name };
}

/** Make a KeyProtector (in the same namespace, R31) the server's or database's protector. */
export function rotatePatch(kind: TargetKind, keyProtector: string): object {
  const protector = { type: "CustomerManaged", keyProtectorRef: { name: keyProtector } };
  return kind === "EncryptedServer" ? { spec: { protector } } : { spec: { encryptionProtector: protector } };
}

/** Any new revalidationToken asks for a revalidation (R11); a timestamp is new and says when. */
export function revalidatePatch(now: Date): object {
  return { spec: { revalidationToken: now.toISOString() } };
}

/** Removing encryptionProtector makes the database inherit the server's (R13). */
export function revertPatch(): object {
  return { spec: { encryptionProtector: null } };
}

/**
 * Whether reverting the database to the server's protector is allowed (R15): the same decision
 * the operator makes, so the plugin can say no before asking. Undefined: allowed.
 */
export function revertRefusal(db: EncryptedDatabase, server: EncryptedServer): string | undefined {
  if (!db.spec.encryptionProtector) {
    return `encrypteddatabase ${db.metadata.name} has no protector of its own: it already inherits server ${server.metadata.name}'s`;
  }
  const effective = db.status?.effectiveProtector;
  const current: ProtectorChoice = effective
    ? {
        source: effective.source,
        type: effective.type,
        ...(effective.keyProtectorName ? { keyProtectorName: effective.keyProtectorName } : {}),
      }
    : {
        source: "Database",
        type: db.spec.encryptionProtector.type,
        ...(db.spec.encryptionProtector.keyProtectorRef
          ? { keyProtectorName: db.spec.encryptionProtector.keyProtectorRef.name }
          : {}),
      };
  const serverProtector = server.spec.protector ?? { type: "ServiceManaged" as const };
  const decision = chooseProtector(
    {
      type: serverProtector.type ?? "ServiceManaged",
      ...(serverProtector.keyProtectorRef ? { keyProtectorRef: serverProtector.keyProtectorRef } : {}),
    },
    undefined,
    { ...current, source: "Database" },
  );
  return decision.refusal ? `${decision.refusal.reason}: ${decision.refusal.message}` : undefined;
}
