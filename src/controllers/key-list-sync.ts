import { type EncryptedDatabase, type KeyProtector, Reason, shortThumbprint } from "../api/index.js";
import { findWrapByThumbprint, isOwnerBindingError, type OwnerBindingError } from "../crypto/index.js";
import type { Store } from "../runtime/index.js";
import { adviceFor } from "../watchdog/access-decision.js";
import type { ControllerContext } from "./context.js";
import type { EnvelopeSecret, OwnerCheck } from "./dek-operations.js";
import { type KekResolution, resolveKek } from "./kek-resolution.js";
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

/** Why a KeyProtector cannot take a wrap: the condition at fault, its reason, what it says. */
export interface Unusable {
  condition: "Accessible" | "RequirementsMet" | "Ready";
  reason: string;
  detail: string;
}

/**
 * Why a resolved KeyProtector cannot take a wrap now, or undefined when it can (it meets its
 * requirements, R5, and its key answered its last probe, R10). Its own conditions name the cause.
 */
export function unusableBecause(r: KekResolution): Unusable | undefined {
  if (!r.ok) return { condition: "Ready", reason: r.reason, detail: r.message };
  if (!r.access.accessible)
    return {
      condition: "Accessible",
      reason: r.access.unknown?.reason ?? r.access.reason ?? "KeyInaccessible",
      detail: r.access.unknown?.message ?? r.access.detail ?? "",
    };
  if (!r.ready)
    return {
      condition: "RequirementsMet",
      reason: Reason.KeyProtectorNotReady,
      detail: r.notReadyMessage ?? "",
    };
  return undefined;
}

/** "its Accessible condition says KeyDisabled: <what the KeyProtector says>. <what to do>" */
export function unusableMessage(u: Unusable): string {
  const advice =
    u.condition === "Accessible"
      ? adviceFor(u.reason, u.detail)
      : u.condition === "RequirementsMet"
        ? "Use a key that meets the KeyProtector's requirements, or relax spec.requirements"
        : "Create the KeyProtector, or wait for it to resolve its key";
  // the condition's first clause is what the vault or the KeyProtector found; the rest is general advice
  const found = u.detail.split(";")[0]?.trim().replace(/\.$/, "");
  const detail = found ? ` (${found})` : "";
  return `its ${u.condition} condition says ${u.reason}${detail}. ${advice}`;
}

/** A thumbprint a database must hold and does not, with the KeyProtectors of its namespace that hold it but cannot take a wrap. */
export interface MissingKey {
  thumbprint: string;
  holders: { name: string; why: Unusable }[];
}

/**
 * R20 R21: the KeyProtectors of a namespace holding a key (by thumbprint, R3), the usable ones
 * first: a disabled KeyProtector never hides a usable one holding the same key material.
 */
export function keyHolders(
  keyProtectors: Store<Kube<KeyProtector>>,
  namespace: string,
  thumbprint: string,
  smk: ControllerContext["smk"],
): { name: string; resolution: KekResolution; why: Unusable | undefined }[] {
  return keyProtectors
    .list(namespace)
    .filter((kp) => kp.status?.thumbprint === thumbprint && kp.metadata.name)
    .map((kp) => {
      const name = kp.metadata.name ?? "";
      const resolution = resolveKek(
        keyProtectors,
        namespace,
        { type: "CustomerManaged", keyProtectorName: name },
        smk,
      );
      return { name, resolution, why: unusableBecause(resolution) };
    })
    .sort(
      (a, b) => Number(a.why !== undefined) - Number(b.why !== undefined) || a.name.localeCompare(b.name),
    );
}

/** What a database missing a key is told: no KeyProtector holds it, or which one does and why it cannot take a wrap. */
export function missingKeyMessage(namespace: string, m: MissingKey): string {
  const key = shortThumbprint(m.thumbprint);
  if (m.holders.length === 0)
    return `no KeyProtector in namespace ${namespace} holds the key ${m.thumbprint}: import the same key material into this region's vault and add a KeyProtector for it`;
  return m.holders
    .map(
      (h) =>
        `KeyProtector ${h.name} in namespace ${namespace} holds the key ${key} but cannot take a wrap under it: ${unusableMessage(h.why)}`,
    )
    .join("; ");
}

/**
 * R20: the KeyListSynced condition of a secondary, naming the missing thumbprints, why each one
 * is missing (no KeyProtector holds it, or the one that does is disabled, expired, not permitted…)
 * and what to do.
 */
export function keyListSynced(
  namespace: string,
  primaryName: string,
  missing: readonly string[],
  causes: readonly MissingKey[] = [],
): { status: "True" | "False"; reason: string; message: string } {
  if (missing.length === 0)
    return {
      status: "True",
      reason: Reason.KeyListSynced,
      message: `holds every key of ${primaryName}'s current key list`,
    };
  const of = (t: string): MissingKey =>
    causes.find((c) => c.thumbprint === t) ?? { thumbprint: t, holders: [] };
  const all = missing.map(of);
  return {
    status: "False",
    // every one held, by a KeyProtector that cannot take it yet: the KeyProtector is at fault, not the key material
    reason: all.every((m) => m.holders.length > 0) ? Reason.KeyProtectorNotReady : Reason.MissingThumbprints,
    message: `the primary ${primaryName} uses keys this database does not hold yet: ${all.map((m) => missingKeyMessage(namespace, m)).join("; ")}`,
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
  /** why each missing thumbprint is missing */
  causes?: MissingKey[];
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
      const why = unusableBecause(r);
      if (why) return `KeyProtector ${name} cannot take a wrap yet: ${unusableMessage(why)}`;
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
  const causes: MissingKey[] = [];
  for (const thumbprint of required) {
    if (findWrapByThumbprint(out.envelope.envelope, thumbprint)) continue;
    const holders = keyHolders(ctx.keyProtectors.store, namespace, thumbprint, ctx.smk);
    const usable = holders.find((h) => h.why === undefined);
    if (usable && !(await addRetained(usable.name))) continue;
    missing.push(thumbprint);
    causes.push({
      thumbprint,
      holders: holders.flatMap((h) => (h.why ? [{ name: h.name, why: h.why }] : [])),
    });
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
  out.causes = causes;
  return out;
}
