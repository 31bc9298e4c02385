import { type EncryptedDatabase, Reason } from "../api/index.js";
import { findWrapByThumbprint, isOwnerBindingError, type OwnerBindingError } from "../crypto/index.js";
import type { ControllerContext } from "./context.js";
import type { EnvelopeSecret, OwnerCheck } from "./dek-operations.js";
import { resolveKek } from "./kek-resolution.js";
import type { CurrentKey } from "./key-history.js";
import type { Kube } from "./resources.js";

type Database = Kube<EncryptedDatabase>;

/**
 * R20, R21: the thumbprints a secondary must hold: every key of its primary's current key list,
 * and the key its primary is about to switch to.
 */
export function requiredFromPrimary(primary: Pick<Database, "status">): Set<string> {
  const required = new Set(
    (primary.status?.keyList ?? []).filter((e) => e.until === undefined).map((e) => e.thumbprint),
  );
  if (primary.status?.rotation?.toThumbprint) required.add(primary.status.rotation.toThumbprint);
  return required;
}

/** R20: the KeyListSynced condition of a secondary, naming the missing thumbprints and what to do. */
export function keyListSynced(
  namespace: string,
  primaryName: string,
  missing: readonly string[],
): { status: "True" | "False"; reason: string; message: string } {
  return missing.length > 0
    ? {
        status: "False",
        reason: Reason.MissingThumbprints,
        message: `no KeyProtector in namespace ${namespace} holds the key material of ${missing.join(", ")}, which the primary ${primaryName} uses: import it into this region's vault and add a KeyProtector for it`,
      }
    : {
        status: "True",
        reason: Reason.KeyListSynced,
        message: `holds every key of ${primaryName}'s current key list`,
      };
}

export interface ExtraKeys {
  envelope: EnvelopeSecret;
  /** the additional keys of the key list (R18) */
  extra: CurrentKey[];
  /** why a key of spec.keys holds no wrap yet */
  problems: string[];
  /** for a secondary: the thumbprints of its primary that no KeyProtector here can take (R20) */
  missing?: string[];
  /** the envelope is not this database's (R31) */
  foreign?: OwnerBindingError;
}

/**
 * R20, R21, R24: the extra keys (spec.keys) and, for a secondary, every key its primary requires,
 * each holding a proven retained wrap: added where a KeyProtector of the namespace can take it.
 */
export async function syncExtraKeys(
  ctx: ControllerContext,
  db: Database,
  start: EnvelopeSecret,
  use: { candidates: Parameters<ControllerContext["dek"]["addWrap"]>[1]; check: OwnerCheck },
  primary: Database | undefined,
): Promise<ExtraKeys> {
  const namespace = db.metadata.namespace ?? "";
  const out: ExtraKeys = { envelope: start, extra: [], problems: [] };
  const addRetained = async (name: string): Promise<string | undefined> => {
    const r = resolveKek(
      ctx.keyProtectors.store,
      namespace,
      { type: "CustomerManaged", keyProtectorName: name },
      ctx.smk,
    );
    if (!r.ok) return r.message;
    if (!findWrapByThumbprint(out.envelope.envelope, r.kek.thumbprint)) {
      if (!r.ready || !r.access.accessible) return `KeyProtector ${name} cannot take a wrap yet`;
      try {
        out.envelope = await ctx.dek.addWrap(out.envelope, use.candidates, r.kek, "retained", use.check);
      } catch (error) {
        if (!isOwnerBindingError(error)) throw error;
        out.foreign ??= error;
        return `the envelope is not this database's: ${error.message}`;
      }
      ctx.envelopes.writeThrough(out.envelope.secret);
    }
    const w = findWrapByThumbprint(out.envelope.envelope, r.kek.thumbprint);
    if (w && w.role !== "protector" && !out.extra.some((e) => e.thumbprint === w.thumbprint))
      out.extra.push({
        keyID: w.keyID,
        thumbprint: w.thumbprint,
        role: "additional",
        keyProtectorName: name,
      });
    return undefined;
  };
  for (const ref of db.spec.keys ?? []) {
    const problem = await addRetained(ref.keyProtectorRef.name);
    if (problem) out.problems.push(problem);
  }
  if (!primary) return out;
  const required = requiredFromPrimary(primary);
  const missing: string[] = [];
  for (const thumbprint of required) {
    if (findWrapByThumbprint(out.envelope.envelope, thumbprint)) continue;
    const holder = ctx.keyProtectors.store
      .list(namespace)
      .find((kp) => kp.status?.thumbprint === thumbprint && kp.metadata.name);
    if (!holder || (await addRetained(holder.metadata.name ?? ""))) missing.push(thumbprint);
  }
  for (const w of out.envelope.envelope.wraps) {
    if (
      required.has(w.thumbprint) &&
      w.role !== "protector" &&
      !out.extra.some((e) => e.thumbprint === w.thumbprint)
    )
      out.extra.push({ keyID: w.keyID, thumbprint: w.thumbprint, role: "additional" });
  }
  out.missing = missing;
  return out;
}
